package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
)

// PathError is a path that a snapshot cannot be read at: one that is not
// a path inside a snapshot at all, or (Missing) one the snapshot does not
// hold. Its message says which, and what a path is.
type PathError struct {
	Path    string
	Missing bool
	// Folder is, for a missing path, the deepest folder on its way that
	// the snapshot holds ("" for the root): where to look instead.
	Folder string
	Msg    string
}

func (e *PathError) Error() string { return e.Msg }

// pathRule says what a path inside a snapshot is, for the errors that
// refuse one.
const pathRule = `a path inside a recovery point is relative to its root, with "/" between names, such as "sub/dir/file" ("" or "." for the root; no leading "/", no "..")`

// SplitPath checks p, a path inside a snapshot, and returns its names
// from the root down (none for the root). Empty and "." names are
// skipped, so "sub/", "./sub" and "sub" are one path. An absolute path, a
// ".." or a NUL byte is refused: a path never leads out of the snapshot,
// and what a restore of it writes stays below its target.
func SplitPath(p string) ([]string, error) {
	switch {
	case strings.ContainsRune(p, 0):
		return nil, &PathError{Path: p, Msg: fmt.Sprintf("path %q holds a NUL byte: %s", p, pathRule)}
	case strings.HasPrefix(p, "/"):
		return nil, &PathError{Path: p, Msg: fmt.Sprintf("path %q is absolute: %s", p, pathRule)}
	}
	var names []string
	for _, n := range strings.Split(p, "/") {
		switch n {
		case "", ".":
			continue
		case "..":
			return nil, &PathError{Path: p, Msg: fmt.Sprintf("path %q holds \"..\": %s", p, pathRule)}
		}
		names = append(names, n)
	}
	return names, nil
}

// CleanPath is p as SplitPath reads it, written the one way vigil records
// it ("" for the root).
func CleanPath(p string) (string, error) {
	names, err := SplitPath(p)
	return strings.Join(names, "/"), err
}

// Entry types, as Entry.Type names them.
const (
	EntryFile    = "file"
	EntryDir     = "dir"
	EntrySymlink = "symlink"
)

// Entry is one file, folder or symbolic link of a snapshot.
type Entry struct {
	// Path is the entry's path from the snapshot's root ("" for the root).
	Path string
	Name string
	// Type is EntryFile, EntryDir, EntrySymlink, or kopia's name of
	// another type.
	Type string
	// Mode holds the permission bits and the type bits, as os.FileMode.
	Mode os.FileMode
	// Size is a file's size; for a folder, the total size of the files
	// below it, when the snapshot recorded it.
	Size    int64
	ModTime time.Time
	// LinkTarget is a symbolic link's target.
	LinkTarget string

	oid object.ID
}

// Files returns the entry at p in snapshot snapshotID and, when it is a
// folder, the entries it holds sorted by name (recursive: everything below
// it, each folder followed by what it holds). An entry at a path that is
// not a folder is returned alone, as ls does with a file.
//
// A bad or missing path is a *PathError. The times are those the backup
// read, folders' too (kopia's reader shows a folder's newest time below
// it instead).
func (v *Vault) Files(ctx context.Context, snapshotID, p string, recursive bool) (Entry, []Entry, error) {
	at, list, err := v.files(ctx, snapshotID, p, recursive)
	var pe *PathError
	if errors.As(err, &pe) {
		return Entry{}, nil, err // it says all a person needs
	}
	if err != nil {
		return Entry{}, nil, fmt.Errorf("list %q in snapshot %s of vault %q: %w", p, snapshotID, v.cfg.Name, err)
	}
	return at, list, nil
}

func (v *Vault) files(ctx context.Context, snapshotID, p string, recursive bool) (Entry, []Entry, error) {
	names, err := SplitPath(p)
	if err != nil {
		return Entry{}, nil, err
	}
	release, err := v.shared(ctx)
	if err != nil {
		return Entry{}, nil, err
	}
	defer release()

	root, err := v.snapshotRoot(ctx, snapshotID)
	if err != nil {
		return Entry{}, nil, err
	}
	de, err := find(ctx, v.rep, root, names)
	if err != nil {
		return Entry{}, nil, err
	}
	dir := strings.Join(names, "/")
	at, err := entryOf(ctx, v.rep, dir, de)
	if err != nil {
		return Entry{}, nil, err
	}
	if de.Type != snapshot.EntryTypeDirectory {
		return at, nil, nil
	}
	var out []Entry
	err = walkListing(ctx, v.rep, dir, de, recursive, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return at, out, err
}

// OpenPath opens the file at p in snapshot snapshotID for reading, and
// returns it with its entry. Nothing is read ahead: what the reader
// yields comes from the vault as it is read. The vault stays in use
// (maintenance waits) until the reader is closed. A folder, a link or a
// missing path is a *PathError.
func (v *Vault) OpenPath(ctx context.Context, snapshotID, p string) (io.ReadCloser, Entry, error) {
	rc, e, err := v.openPath(ctx, snapshotID, p)
	var pe *PathError
	if errors.As(err, &pe) {
		return nil, Entry{}, err // it says all a person needs
	}
	if err != nil {
		return nil, Entry{}, fmt.Errorf("read %q from snapshot %s of vault %q: %w", p, snapshotID, v.cfg.Name, err)
	}
	return rc, e, nil
}

func (v *Vault) openPath(ctx context.Context, snapshotID, p string) (io.ReadCloser, Entry, error) {
	names, err := SplitPath(p)
	if err != nil {
		return nil, Entry{}, err
	}
	release, err := v.shared(ctx)
	if err != nil {
		return nil, Entry{}, err
	}
	ok := false
	defer func() {
		if !ok {
			release()
		}
	}()

	root, err := v.snapshotRoot(ctx, snapshotID)
	if err != nil {
		return nil, Entry{}, err
	}
	de, err := find(ctx, v.rep, root, names)
	if err != nil {
		return nil, Entry{}, err
	}
	clean := strings.Join(names, "/")
	if de.Type != snapshot.EntryTypeFile {
		what := "the root folder"
		if clean != "" {
			what = fmt.Sprintf("%q", clean)
		}
		return nil, Entry{}, &PathError{Path: clean, Msg: fmt.Sprintf("%s is a %s, not a file: only a file's content can be read out; list a folder with 'vigil recovery-points ls'", what, entryTypeName(de.Type))}
	}
	e, err := entryOf(ctx, v.rep, clean, de)
	if err != nil {
		return nil, Entry{}, err
	}
	r, err := v.rep.OpenObject(ctx, de.ObjectID)
	if err != nil {
		return nil, Entry{}, fmt.Errorf("open %s: %w", clean, err)
	}
	ok = true
	return &releasingReader{Reader: r, close: func() error {
		defer release()
		return r.Close() //nolint:wrapcheck
	}}, e, nil
}

// snapshotRoot is the root entry of a complete snapshot, which must be a
// folder.
func (v *Vault) snapshotRoot(ctx context.Context, snapshotID string) (*snapshot.DirEntry, error) {
	man, err := v.loadSnapshot(ctx, snapshotID)
	if err != nil {
		return nil, err
	}
	if man.IncompleteReason != "" {
		return nil, fmt.Errorf("snapshot is incomplete (%s) and cannot be read; pick a complete one", man.IncompleteReason)
	}
	if man.RootEntry.Type != snapshot.EntryTypeDirectory {
		return nil, errors.New("snapshot is of a single file, not a folder; read it with the kopia CLI")
	}
	return man.RootEntry, nil
}

// find follows names down from the folder root.
func find(ctx context.Context, rep repo.Repository, root *snapshot.DirEntry, names []string) (*snapshot.DirEntry, error) {
	cur := root
	for i, n := range names {
		here := strings.Join(names[:i], "/")
		if cur.Type != snapshot.EntryTypeDirectory {
			return nil, &PathError{Path: strings.Join(names, "/"), Missing: true, Folder: strings.Join(names[:i-1], "/"),
				Msg: fmt.Sprintf("no %q: %q is a %s, not a folder", strings.Join(names, "/"), here, entryTypeName(cur.Type))}
		}
		list, err := sortedListing(ctx, rep, cur.ObjectID)
		if err != nil {
			return nil, fmt.Errorf("read folder %q: %w", here, err)
		}
		var next *snapshot.DirEntry
		for _, de := range list {
			if de.Name == n {
				next = de
				break
			}
		}
		if next == nil {
			in := "the root folder"
			if here != "" {
				in = fmt.Sprintf("folder %q", here)
			}
			return nil, &PathError{Path: strings.Join(names, "/"), Missing: true, Folder: here,
				Msg: fmt.Sprintf("no %q: %s holds no entry named %q", strings.Join(names, "/"), in, n)}
		}
		cur = next
	}
	return cur, nil
}

// sortedListing is readListing sorted by name: as ls shows a folder, and
// as Diff walks two of them side by side.
func sortedListing(ctx context.Context, rep repo.Repository, oid object.ID) ([]*snapshot.DirEntry, error) {
	list, err := readListing(ctx, rep, oid)
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// walkListing calls fn for each entry of folder dir (at path p), and of
// its subfolders when recursive, each folder before what it holds.
func walkListing(ctx context.Context, rep repo.Repository, p string, dir *snapshot.DirEntry, recursive bool, fn func(Entry) error) error {
	list, err := sortedListing(ctx, rep, dir.ObjectID)
	if err != nil {
		return fmt.Errorf("read folder %q: %w", p, err)
	}
	for _, de := range list {
		if err := ctx.Err(); err != nil {
			return err //nolint:wrapcheck
		}
		child := path.Join(p, de.Name)
		e, err := entryOf(ctx, rep, child, de)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		if recursive && de.Type == snapshot.EntryTypeDirectory {
			if err := walkListing(ctx, rep, child, de, true, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func entryOf(ctx context.Context, rep repo.Repository, p string, de *snapshot.DirEntry) (Entry, error) {
	e := Entry{Path: p, Name: path.Base(p), Type: string(de.Type), Size: de.FileSize, ModTime: de.ModTime.ToTime(), oid: de.ObjectID}
	if p == "" {
		e.Name = ""
	}
	e.Mode = os.FileMode(de.Permissions) & modeBits
	switch de.Type {
	case snapshot.EntryTypeDirectory:
		e.Type, e.Mode = EntryDir, e.Mode|os.ModeDir
		if de.DirSummary != nil {
			e.Size = de.DirSummary.TotalFileSize
		}
	case snapshot.EntryTypeFile:
		e.Type = EntryFile
	case snapshot.EntryTypeSymlink:
		e.Type, e.Mode = EntrySymlink, e.Mode|os.ModeSymlink
		r, err := rep.OpenObject(ctx, de.ObjectID)
		if err != nil {
			return Entry{}, fmt.Errorf("read link %q: %w", p, err)
		}
		b, err := io.ReadAll(io.LimitReader(r, maxLinkTarget))
		r.Close() //nolint:errcheck
		if err != nil {
			return Entry{}, fmt.Errorf("read link %q: %w", p, err)
		}
		e.LinkTarget = string(b)
	}
	return e, nil
}

// Changes between two snapshots, as Change.Kind names them.
const (
	ChangeAdded   = "added"
	ChangeRemoved = "removed"
	ChangeChanged = "changed"
)

// Change is one difference between two snapshots.
type Change struct {
	Path string
	// Kind is ChangeAdded, ChangeRemoved or ChangeChanged.
	Kind string
	// Type is the entry's type (in the newer snapshot when both have it).
	Type string
	// What lists what changed: "type", "contents", "link target",
	// "mode", "time".
	What []string
	// Size is the entry's size, in the newer snapshot when both have it.
	Size int64
}

// Diff lists what differs from snapshot a to snapshot b, both in this
// vault: the files, folders and links added, removed and changed, by
// path. What is below an added or removed folder is listed too. A file
// is changed when its contents (compared by their stored object, so
// nothing is read but the folder listings), mode or time differ; a folder
// only when its mode differs, since its time changes with what it holds.
// Subtrees stored as one object in both are the same and not read.
func (v *Vault) Diff(ctx context.Context, a, b string) ([]Change, error) {
	out, err := v.diff(ctx, a, b)
	if err != nil {
		return nil, fmt.Errorf("compare snapshots %s and %s of vault %q: %w", a, b, v.cfg.Name, err)
	}
	return out, nil
}

func (v *Vault) diff(ctx context.Context, a, b string) ([]Change, error) {
	release, err := v.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	ra, err := v.snapshotRoot(ctx, a)
	if err != nil {
		return nil, err
	}
	rb, err := v.snapshotRoot(ctx, b)
	if err != nil {
		return nil, err
	}
	var out []Change
	err = diffDirs(ctx, v.rep, "", ra, rb, func(c Change) { out = append(out, c) })
	return out, err
}

func diffDirs(ctx context.Context, rep repo.Repository, p string, a, b *snapshot.DirEntry, emit func(Change)) error {
	if a.ObjectID == b.ObjectID {
		return nil
	}
	la, err := sortedListing(ctx, rep, a.ObjectID)
	if err != nil {
		return fmt.Errorf("read folder %q: %w", p, err)
	}
	lb, err := sortedListing(ctx, rep, b.ObjectID)
	if err != nil {
		return fmt.Errorf("read folder %q: %w", p, err)
	}
	// all names on both sides, in order
	i, j := 0, 0
	for i < len(la) || j < len(lb) {
		if err := ctx.Err(); err != nil {
			return err //nolint:wrapcheck
		}
		var x, y *snapshot.DirEntry
		switch {
		case j >= len(lb) || (i < len(la) && la[i].Name < lb[j].Name):
			x = la[i]
			i++
		case i >= len(la) || lb[j].Name < la[i].Name:
			y = lb[j]
			j++
		default:
			x, y = la[i], lb[j]
			i++
			j++
		}
		switch {
		case y == nil:
			if err := emitAll(ctx, rep, path.Join(p, x.Name), x, ChangeRemoved, emit); err != nil {
				return err
			}
		case x == nil:
			if err := emitAll(ctx, rep, path.Join(p, y.Name), y, ChangeAdded, emit); err != nil {
				return err
			}
		default:
			if err := diffEntries(ctx, rep, path.Join(p, x.Name), x, y, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

func diffEntries(ctx context.Context, rep repo.Repository, p string, x, y *snapshot.DirEntry, emit func(Change)) error {
	c := Change{Path: p, Kind: ChangeChanged, Type: entryKind(y.Type), Size: sizeOf(y)}
	if x.Type != y.Type {
		c.What = []string{"type"}
		emit(c)
		return nil
	}
	if x.ObjectID != y.ObjectID && y.Type != snapshot.EntryTypeDirectory {
		if y.Type == snapshot.EntryTypeSymlink {
			c.What = append(c.What, "link target")
		} else {
			c.What = append(c.What, "contents")
		}
	}
	if x.Permissions != y.Permissions && y.Type != snapshot.EntryTypeSymlink {
		c.What = append(c.What, "mode")
	}
	if !x.ModTime.Equal(y.ModTime) && y.Type == snapshot.EntryTypeFile {
		c.What = append(c.What, "time")
	}
	if len(c.What) > 0 {
		emit(c)
	}
	if y.Type == snapshot.EntryTypeDirectory {
		return diffDirs(ctx, rep, p, x, y, emit)
	}
	return nil
}

// emitAll reports de, and what is below it when it is a folder, as kind.
func emitAll(ctx context.Context, rep repo.Repository, p string, de *snapshot.DirEntry, kind string, emit func(Change)) error {
	emit(Change{Path: p, Kind: kind, Type: entryKind(de.Type), Size: sizeOf(de)})
	if de.Type != snapshot.EntryTypeDirectory {
		return nil
	}
	list, err := sortedListing(ctx, rep, de.ObjectID)
	if err != nil {
		return fmt.Errorf("read folder %q: %w", p, err)
	}
	for _, child := range list {
		if err := emitAll(ctx, rep, path.Join(p, child.Name), child, kind, emit); err != nil {
			return err
		}
	}
	return nil
}

func entryKind(t snapshot.EntryType) string {
	switch t {
	case snapshot.EntryTypeDirectory:
		return EntryDir
	case snapshot.EntryTypeFile:
		return EntryFile
	case snapshot.EntryTypeSymlink:
		return EntrySymlink
	}
	return string(t)
}

func sizeOf(de *snapshot.DirEntry) int64 {
	if de.Type == snapshot.EntryTypeDirectory && de.DirSummary != nil {
		return de.DirSummary.TotalFileSize
	}
	return de.FileSize
}

// onlyPath is a folder of the snapshot seen holding only the entry on the
// way to what a partial restore brings back. Its object id and time are
// the stored folder's (storedDir).
type onlyPath struct {
	fs.Directory

	child fs.Entry
}

var _ object.HasObjectID = (*onlyPath)(nil)

func (d *onlyPath) ObjectID() object.ID {
	if h, ok := d.Directory.(object.HasObjectID); ok {
		return h.ObjectID()
	}
	return object.EmptyID
}

func (d *onlyPath) Child(_ context.Context, name string) (fs.Entry, error) {
	if name == d.child.Name() {
		return d.child, nil
	}
	return nil, fs.ErrEntryNotFound
}

func (d *onlyPath) Iterate(context.Context) (fs.DirectoryIterator, error) {
	return fs.StaticIterator([]fs.Entry{d.child}, nil), nil
}

// pathTree is the snapshot's root folder as a restore of only the entry
// at names sees it, with the totals that restore's progress counts to.
func pathTree(ctx context.Context, rep repo.Repository, man *snapshot.Manifest, names []string) (fs.Directory, Progress, error) {
	root, err := storedRoot(rep, man, nil)
	if err != nil {
		return nil, Progress{}, err
	}
	var dir fs.Directory = root
	de, err := find(ctx, rep, man.RootEntry, names)
	if err != nil {
		return nil, Progress{}, err
	}
	var total Progress
	if de.Type == snapshot.EntryTypeDirectory && de.DirSummary != nil {
		total.TotalBytes, total.TotalFiles = de.DirSummary.TotalFileSize, de.DirSummary.TotalFileCount
	} else if de.Type == snapshot.EntryTypeFile {
		total.TotalBytes, total.TotalFiles = de.FileSize, 1
	}
	// Each folder on the way is wrapped around the next entry, from the
	// chosen one up.
	chain := []fs.Directory{dir}
	for _, n := range names[:len(names)-1] {
		child, err := chain[len(chain)-1].Child(ctx, n)
		if err != nil {
			return nil, Progress{}, fmt.Errorf("open folder %q: %w", n, err)
		}
		d, ok := child.(fs.Directory)
		if !ok {
			return nil, Progress{}, fmt.Errorf("%q is not a folder", n)
		}
		chain = append(chain, d)
	}
	entry, err := chain[len(chain)-1].Child(ctx, names[len(names)-1])
	if err != nil {
		return nil, Progress{}, fmt.Errorf("open %q: %w", strings.Join(names, "/"), err)
	}
	for k := len(chain) - 1; k >= 0; k-- {
		entry = &onlyPath{Directory: chain[k], child: entry}
	}
	return entry.(fs.Directory), total, nil //nolint:forcetypeassert
}
