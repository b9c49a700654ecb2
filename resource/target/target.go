// Package target is how a plain restore takes hold of the folder or file it
// restores into, so that it never writes where another restore writes and,
// when it fails, removes only what it created itself. A claim is a small
// file in vigil's data dir, created exclusively and named after the target:
// of concurrent restores into one target exactly one gets it. It records
// whether the restore created the target, so that vigil, even after a
// crash, tells a folder it made from one that was there before. It lasts
// as long as the job: released when the job ends, whatever the ending.
package target

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-backup/vigil"
)

// Kind is what a restore makes at its target.
type Kind string

const (
	// Folder is a new folder, or an empty one that exists.
	Folder Kind = "folder"
	// File is a new file (an SQLite database), which the restore creates
	// exclusively itself.
	File Kind = "file"
)

// Claims is the folder that holds the claims of one data dir's restores.
type Claims struct{ Dir string }

// record is a claim's content.
type record struct {
	Job  string `json:"job"`
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Created says the restore made the target folder itself.
	Created bool `json:"created"`
	// Parents are the folders above the target the restore made,
	// innermost first.
	Parents []string `json:"parents,omitempty"`
}

// Claim is one restore's hold on its target.
type Claim struct {
	file string
	rec  record
}

func (c Claims) file(path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(c.Dir, hex.EncodeToString(sum[:12])+".json")
}

func (c Claims) read(path string) (record, error) {
	b, err := os.ReadFile(c.file(path))
	if err != nil {
		return record{}, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return record{}, fmt.Errorf("read restore claim %s: %w", c.file(path), err)
	}
	return rec, nil
}

// Holder returns the id of the restore job that holds path, "" when none
// does.
func (c Claims) Holder(path string) (string, error) {
	rec, err := c.read(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return rec.Job, nil
}

// Unheld refuses path when a restore job holds it.
func (c Claims) Unheld(path string) error {
	job, err := c.Holder(path)
	if err != nil {
		return vigil.Invalidf("target_path %s cannot be checked: %v", path, err)
	}
	if job != "" {
		return c.held(path, job)
	}
	return nil
}

// held is the refusal of a target another job holds.
func (c Claims) held(path, job string) error {
	return vigil.Invalidf("target_path %s is being restored into by restore job %s: wait until it has ended (vigil jobs show %s), or choose another target_path; if that job has ended and the hold stayed, remove %s",
		path, job, job, c.file(path))
}

// Claim takes hold of path for restore job, which then restores a kind
// there. A folder must not exist (Claim creates it, and the folders above
// it) or be an empty folder; a file must not exist (Claim creates the
// folders above it; the restore creates the file exclusively). A symbolic
// link is refused, live or dangling. A target that another job holds is
// refused, touching nothing; a claim the same job already holds (it runs
// again after vigil stopped) is returned.
func (c Claims) Claim(job, path string, kind Kind) (*Claim, error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the folder of restore claims: %w", err)
	}
	cl := &Claim{file: c.file(path), rec: record{Job: job, Path: path, Kind: kind}}
	f, err := os.OpenFile(cl.file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		rec, rerr := c.read(path)
		switch {
		case rerr != nil:
			return nil, rerr
		case rec.Job != job:
			return nil, c.held(path, rec.Job)
		}
		cl.rec = rec
		return cl, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim target_path %s: %w", path, err)
	}
	// The claim names its job from the start: a vigil killed right after
	// this leaves a claim its job's clean-up recognises.
	b, _ := json.Marshal(cl.rec)
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(cl.file)
		return nil, fmt.Errorf("claim target_path %s: %w", path, err)
	}
	if err := cl.take(); err != nil {
		// Nothing of the target was made, or take removed it.
		os.Remove(cl.file)
		return nil, err
	}
	return cl, nil
}

// take makes the target (or its folders) once the claim is held, and
// records what it made.
func (cl *Claim) take() error {
	path := cl.rec.Path
	if err := Usable(path, cl.rec.Kind); err != nil {
		return err
	}
	// A failed restore beside this one may remove a parent folder it made
	// between this one's making it and using it: then again.
	for attempt := 0; ; attempt++ {
		parents, err := mkdirParents(filepath.Dir(path))
		cl.rec.Parents = append(parents, cl.rec.Parents...)
		if err != nil {
			cl.removeParents()
			return fmt.Errorf("create the folders above target_path %s: %w", path, err)
		}
		if cl.rec.Kind != Folder {
			break
		}
		err = os.Mkdir(path, 0o700)
		if err == nil {
			cl.rec.Created = true
			break
		}
		if errors.Is(err, os.ErrNotExist) && attempt < 3 {
			continue
		}
		if errors.Is(err, os.ErrExist) {
			// It appeared since Usable looked: look again.
			if err = Usable(path, Folder); err == nil {
				break
			}
			cl.removeParents()
			return err
		}
		cl.removeParents()
		return fmt.Errorf("create target_path %s: %w", path, err)
	}
	if err := cl.save(); err != nil {
		cl.undo()
		return err
	}
	return nil
}

func (cl *Claim) save() error {
	b, err := json.Marshal(cl.rec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cl.file, b, 0o600); err != nil {
		return fmt.Errorf("record the claim of target_path %s: %w", cl.rec.Path, err)
	}
	return nil
}

// Reclaim returns the claim job holds on path, nil when it holds none
// (it had not claimed it yet, or another job holds it).
func (c Claims) Reclaim(job, path string) (*Claim, error) {
	rec, err := c.read(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rec.Job != job {
		return nil, nil
	}
	return &Claim{file: c.file(path), rec: rec}, nil
}

// Created reports whether the restore made the target folder itself.
func (cl *Claim) Created() bool { return cl.rec.Created }

// Release ends the hold of a restore that completed: what it restored is
// the person's now.
func (cl *Claim) Release() error {
	if err := os.Remove(cl.file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release the claim of target_path %s: %w (remove that file by hand)", cl.rec.Path, err)
	}
	return nil
}

// Undo removes what a restore that did not complete wrote, then the
// claim: a folder it created goes as a whole, and an empty folder that
// was there before is emptied and kept. A file target is the restore's to
// drop (it knows whether it created it); the folders the claim made above
// the target go when they are empty. It returns, for the job's message,
// what could not be removed ("" when everything went).
func (cl *Claim) Undo() string {
	msg := cl.undo()
	if err := cl.Release(); err != nil {
		msg += fmt.Sprintf(" (%v)", err)
	}
	return msg
}

func (cl *Claim) undo() string {
	path := cl.rec.Path
	var err error
	switch {
	case cl.rec.Kind == Folder && cl.rec.Created:
		err = removeFolder(path)
	case cl.rec.Kind == Folder:
		err = emptyFolder(path)
	}
	if err != nil {
		return fmt.Sprintf(" (removing the partial restore at %s failed: %v; remove it by hand)", path, err)
	}
	cl.removeParents()
	return ""
}

// removeParents removes the folders the claim made above its target,
// those that are empty: another restore may be creating its own target
// beside this one.
func (cl *Claim) removeParents() {
	for _, p := range cl.rec.Parents {
		if os.Remove(p) != nil {
			return
		}
	}
}

// removeFolder removes the folder a restore created, never what a
// symbolic link put in its place points to.
func removeFolder(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is no longer the folder the restore created", path)
	}
	return os.RemoveAll(path)
}

// emptyFolder removes what a restore wrote into a folder that was empty
// when it took hold of it, and keeps the folder.
func emptyFolder(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is no longer the folder the restore took", path)
	}
	names, err := readNames(path)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, os.RemoveAll(filepath.Join(path, n)))
	}
	return errors.Join(errs...)
}

func readNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// mkdirParents creates dir and the folders above it that are missing, and
// returns those it created, innermost first.
func mkdirParents(dir string) ([]string, error) {
	var missing []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o700)
		if errors.Is(err, os.ErrExist) {
			continue // made by another restore meanwhile: not this one's
		}
		if err != nil {
			return reverse(made), err
		}
		made = append(made, missing[i])
	}
	return reverse(made), nil
}

func reverse(s []string) []string {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return s
}

// Usable refuses a target a restore must not write into: a symbolic link
// (live or dangling), anything that is not a folder, or a folder that is
// not empty; for a file, anything that exists. A target that does not
// exist is usable.
func Usable(path string, kind Kind) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return vigil.Invalidf("target_path %s cannot be checked: %v", path, err)
	case fi.Mode()&os.ModeSymlink != 0:
		return vigil.Invalidf("target_path %s is a symbolic link: a restore writes into a new or empty folder and never through a link; give the folder itself", path)
	case kind == File:
		return vigil.Invalidf("%s already exists: a restore creates a new database and never writes into one; choose another target_path", path)
	case !fi.IsDir():
		return vigil.Invalidf("target_path %s is a file: give a new or empty folder", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return vigil.Invalidf("target_path %s cannot be opened: %v", path, err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); !errors.Is(err, io.EOF) {
		return vigil.Invalidf("target_path %s is not empty: a restore creates a new resource; give a new or empty folder", path)
	}
	return nil
}

// Outside refuses a target inside one of vigil's own folders (own: the
// data dir with its catalog and restore tests' copies, the vaults'
// storage), except below allowed (the data dir's restores folder, where
// plain restores go by default). Symbolic links on the way are followed:
// a link to the data dir is inside it.
func Outside(path string, own []string, allowed string) error {
	r := resolve(path)
	if allowed != "" {
		if a := resolve(allowed); within(r, a) && r != a {
			return nil
		}
	}
	for _, dir := range own {
		if dir == "" {
			continue
		}
		if d := resolve(dir); within(r, d) {
			return vigil.Invalidf("target_path %s is inside %s, which is vigil's own (its catalog, vaults and restore tests' copies live there): restore somewhere else, or below %s", path, dir, allowed)
		}
	}
	return nil
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// resolve follows the symbolic links of the longest part of path that
// exists.
func resolve(path string) string {
	path = filepath.Clean(path)
	rest := ""
	for p := path; ; p = filepath.Dir(p) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		if filepath.Dir(p) == p {
			return path
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}
