// Package restic reads restic repositories, which vigil restore-tests but
// never writes: a foreign vault of `kind: restic`.
//
// restic has no Go library (its code is internal), so this package drives
// a restic binary (0.17 or later, for --json summaries; 0.18.1 is what the
// tests run) and parses its --json output. Read-only is enforced here, not
// left to the caller:
//
//   - only commands that read are ever run (snapshots, ls, restore, dump,
//     check, cat config and cat tree, version), from a fixed list;
//   - every one of them gets --no-lock, so a repository on a read-only
//     mount or behind a read-only key works, and vigil never leaves a
//     lock in someone else's repository, even when it is killed;
//   - restic's local cache goes into vigil's own data folder (or is off),
//     never into the repository.
package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Config says where a restic repository is and how to open it.
type Config struct {
	// Repository is what restic's -r takes: a folder, s3:…, sftp:…, rest:….
	Repository string
	Password   string
	// Binary is the restic program; "restic" (found on PATH) when empty.
	Binary string
	// CacheDir holds restic's local cache of the repository's metadata;
	// with none, restic runs with --no-cache.
	CacheDir string
	// Env is added to the minimal environment restic runs with, as
	// NAME=value: the S3 keys (AWS_ACCESS_KEY_ID, …) for an s3: repository.
	Env []string
}

// Repo is an opened restic repository.
type Repo struct {
	cfg Config
}

// ErrWrongPassword is wrapped by Open's error when restic refuses the
// password (restic's exit code 12).
var ErrWrongPassword = errors.New("wrong password")

// ErrNoRepository is wrapped by Open's error when there is no restic
// repository at the location (restic's exit code 10).
var ErrNoRepository = errors.New("no restic repository")

// readOnlyCommands are the only restic commands this package runs.
var readOnlyCommands = []string{"snapshots", "ls", "restore", "dump", "check", "cat", "version"}

// Open checks that the restic binary runs and that the repository opens
// with the password, reading its config. Nothing is written.
func Open(ctx context.Context, cfg Config) (*Repo, error) {
	if cfg.Binary == "" {
		cfg.Binary = "restic"
	}

	if cfg.Repository == "" {
		return nil, errors.New("open restic repository: no repository given: set its location (a folder, s3:…, sftp:…)")
	}

	if _, err := exec.LookPath(cfg.Binary); err != nil {
		return nil, fmt.Errorf("open restic repository %s: restic program %q not found (%w): install restic 0.18.1 "+
			"(go install github.com/restic/restic/cmd/restic@v0.18.1) or name it in the vault's config", cfg.Repository, cfg.Binary, err)
	}

	r := &Repo{cfg: cfg}

	if _, err := r.run(ctx, "cat", "config"); err != nil {
		return nil, fmt.Errorf("open restic repository %s: %w", cfg.Repository, err)
	}

	return r, nil
}

// Snapshot is one restic snapshot, as `restic snapshots --json` gives it.
type Snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags"`
	// Summary is written by restic 0.17 and later; nil for older snapshots.
	Summary *struct {
		BackupStart time.Time `json:"backup_start"`
		BackupEnd   time.Time `json:"backup_end"`
		Files       int64     `json:"total_files_processed"`
		Bytes       int64     `json:"total_bytes_processed"`
	} `json:"summary"`
}

// Files and Bytes are what the snapshot's backup processed, 0 when the
// snapshot has no summary.
func (s Snapshot) Files() int64 {
	if s.Summary == nil {
		return 0
	}

	return s.Summary.Files
}

func (s Snapshot) Bytes() int64 {
	if s.Summary == nil {
		return 0
	}

	return s.Summary.Bytes
}

// Snapshots lists the repository's snapshots, oldest first.
func (r *Repo) Snapshots(ctx context.Context) ([]Snapshot, error) {
	out, err := r.run(ctx, "snapshots")
	if err != nil {
		return nil, fmt.Errorf("list snapshots of restic repository %s: %w", r.cfg.Repository, err)
	}

	var snaps []Snapshot
	if err := json.Unmarshal(out, &snaps); err != nil {
		return nil, fmt.Errorf("list snapshots of restic repository %s: restic printed what is not its JSON (%w): is %s restic 0.17 or later?",
			r.cfg.Repository, err, r.cfg.Binary)
	}

	slices.SortStableFunc(snaps, func(a, b Snapshot) int { return a.Time.Compare(b.Time) })

	return snaps, nil
}

// Node is one entry of a snapshot, as `restic ls --json` gives it.
type Node struct {
	Name string `json:"name"`
	Type string `json:"type"` // file, dir, symlink, dev, chardev, fifo, socket, irregular
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Mode is Go's os.FileMode, as restic keeps it: type bits high
	// (os.ModeDir is 1<<31, so a 0755 folder is 2147484141) and setuid,
	// setgid and sticky as os.ModeSetuid, … rather than 0o4000, ….
	Mode  uint32    `json:"mode"`
	MTime time.Time `json:"mtime"`
	// LinkTarget is a symlink's target. restic ls --json does not print
	// it, so List leaves it empty; it is in the folder's tree (restic cat
	// tree), where Compare reads it.
	LinkTarget string `json:"linktarget"`
}

// List returns every entry of the snapshot id, in restic's order.
func (r *Repo) List(ctx context.Context, id string) ([]Node, error) {
	out, err := r.run(ctx, "ls", id)
	if err != nil {
		return nil, fmt.Errorf("list snapshot %s of restic repository %s: %w", id, r.cfg.Repository, err)
	}

	return parseNodes(id, out)
}

// parseNodes reads the node lines of restic ls --json, skipping the
// snapshot line that comes first.
func parseNodes(id string, out []byte) ([]Node, error) {
	var nodes []Node

	for line := range bytes.Lines(out) {
		var n struct {
			Node
			StructType string `json:"struct_type"`
		}

		if err := json.Unmarshal(line, &n); err != nil {
			return nil, fmt.Errorf("list snapshot %s: restic printed what is not its JSON: %w", id, err)
		}

		if n.StructType == "node" {
			nodes = append(nodes, n.Node)
		}
	}

	return nodes, nil
}

// Root returns the folder inside snapshot s that holds what was backed up
// from its one path: restic keeps a folder given as an absolute path at
// that path and one given relative to where restic ran at the relative
// path, so the folder is the longest tail of s.Paths[0] that the snapshot
// has as a folder.
func (r *Repo) Root(ctx context.Context, s Snapshot) (string, error) {
	if len(s.Paths) != 1 {
		return "", fmt.Errorf("snapshot %s of restic repository %s backs up %d paths (%s): vigil restore-tests a snapshot of one folder; "+
			"name the folder to test in the resource's source path", s.ShortID, r.cfg.Repository, len(s.Paths), strings.Join(s.Paths, ", "))
	}

	var tails []string

	for tail := path.Clean("/" + s.Paths[0]); tail != "/"; {
		tails = append(tails, tail)

		// drop the first element: /tmp/rt/src → /rt/src
		i := strings.IndexByte(tail[1:], '/')
		if i < 0 {
			break
		}

		tail = tail[1+i:]
	}

	// restic ls with folders lists only them and what is directly in
	// them, which is much less than the whole snapshot: the longest tail
	// listed is the folder. Should it list nothing, the whole listing
	// says.
	out, err := r.run(ctx, append([]string{"ls", s.ID}, tails...)...)
	if err != nil {
		return "", fmt.Errorf("list snapshot %s of restic repository %s: %w", s.ID, r.cfg.Repository, err)
	}

	nodes, err := parseNodes(s.ID, out)
	if err != nil {
		return "", err
	}

	dirs := make(map[string]bool)
	for _, n := range nodes {
		if n.Type == "dir" {
			dirs[n.Path] = true
		}

		dirs[path.Dir(n.Path)] = true
	}

	if len(dirs) == 0 {
		if nodes, err = r.List(ctx, s.ID); err != nil {
			return "", err
		}

		for _, n := range nodes {
			if n.Type == "dir" {
				dirs[n.Path] = true
			}
		}
	}

	for _, tail := range tails {
		if dirs[tail] {
			return tail, nil
		}
	}

	return "", fmt.Errorf("snapshot %s of restic repository %s has no folder for its path %s", s.ShortID, r.cfg.Repository, s.Paths[0])
}

// RestoreResult is restic's summary of a restore. Files counts every
// entry restic restored, folders below the restored one included.
type RestoreResult struct {
	Files int64 `json:"files_restored"`
	Bytes int64 `json:"bytes_restored"`
	// Verified is set when restic read every restored file back and found
	// its content to be the snapshot's (RestoreOptions.Verify). restic's
	// JSON summary says nothing of the verification, so it is known only
	// from restic finishing without an error.
	Verified bool `json:"-"`
}

// RestoreOptions are the choices of a restore.
type RestoreOptions struct {
	// Verify has restic (0.18) read every restored file back after the
	// restore and check each of its blobs against the snapshot's hashes
	// (restic's --verify), so that what is on disk, not only what came
	// out of the repository, is proved to be the snapshot's content.
	Verify bool
}

// Restore restores folder dir of snapshot id (a path inside the snapshot,
// as Root returns it; "/" for all) into target, which must not exist yet
// or be empty. restic verifies every blob's hash as it reads it, so a
// damaged pack fails the restore; the error names each file restic could
// not restore, by its path below dir ("/data/app.db: decrypting blob …"),
// and with Verify each file whose read-back differs, by its path in target.
func (r *Repo) Restore(ctx context.Context, id, dir, target string, opts RestoreOptions) (RestoreResult, error) {
	args := []string{"restore", id + ":" + dir, "--target", target}
	if opts.Verify {
		args = append(args, "--verify")
	}

	out, err := r.run(ctx, args...)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore %s:%s of restic repository %s: %w "+
			"(restic check --read-data on the repository tells whether its packs are damaged)",
			id, dir, r.cfg.Repository, err)
	}

	var res RestoreResult

	for line := range bytes.Lines(out) {
		var m struct {
			MessageType string `json:"message_type"`
			RestoreResult
		}

		if json.Unmarshal(line, &m) == nil && m.MessageType == "summary" {
			res = m.RestoreResult
		}
	}

	res.Verified = opts.Verify

	return res, nil
}

// CompareResult is what Compare found: the snapshot's entries below the
// compared folder (the folder itself not counted), the bytes of its
// files, and each difference of the copy from them.
type CompareResult struct {
	Files, Dirs, Symlinks, Bytes int64
	// Mismatches name a path relative to the copy and what differs, in
	// path order, at most maxMismatches of them and then "and N more".
	Mismatches []string
}

// maxMismatches caps CompareResult.Mismatches: a copy that differs
// everywhere is shown by its first differences, not by all of them.
const maxMismatches = 20

// Compare compares folder dir, a restore of snapshot id's folder root,
// with the snapshot's record of that folder: every entry below root must
// be in dir with the same type, a file with the same size and
// modification time (a later one was written after the restore), every entry
// but a symlink with the same permission bits (mode & 0o7777), a symlink
// with the same target; and dir must hold nothing the snapshot lacks.
// dir is walked without following symlinks. Nothing is written to dir.
//
// Content is not hashed again here: Restore with Verify has restic read
// each restored file back and check it against the snapshot's blob
// hashes, which proves content; Compare proves the rest of the tree.
// Symlinks' permission bits are not compared: Linux has none of its own
// for a symlink (always 0777) and restic cannot restore them.
func (r *Repo) Compare(ctx context.Context, id, root, dir string) (CompareResult, error) {
	l, err := r.Listing(ctx, id, root)
	if err != nil {
		return CompareResult{}, err
	}

	return l.Compare(dir)
}

// Listing is what Compare compares a copy with: the entries below a
// snapshot's folder, with their link targets. Reading it is a restic run
// of its own, which a restore test does while restic restores.
type Listing struct {
	repo, id, root string
	nodes          []Node
}

// Listing reads the entries below folder root of snapshot id.
func (r *Repo) Listing(ctx context.Context, id, root string) (Listing, error) {
	root = path.Clean("/" + root)
	fail := func(err error) (Listing, error) {
		return Listing{}, fmt.Errorf("list snapshot %s:%s of restic repository %s: %w", id, root, r.cfg.Repository, err)
	}

	out, err := r.run(ctx, "ls", id+":"+root)
	if err != nil {
		return fail(err)
	}

	nodes, err := parseNodes(id, out)
	if err != nil {
		return fail(err)
	}

	if err := r.linkTargets(ctx, id, root, nodes); err != nil {
		return fail(err)
	}

	return Listing{repo: r.cfg.Repository, id: id, root: root, nodes: nodes}, nil
}

// Compare compares folder dir with the listing, as Repo.Compare does.
func (l Listing) Compare(dir string) (CompareResult, error) {
	id, root, nodes := l.id, l.root, l.nodes
	fail := func(err error) (CompareResult, error) {
		return CompareResult{}, fmt.Errorf("compare %s with snapshot %s:%s of restic repository %s: %w", dir, id, root, l.repo, err)
	}

	snap := ShortID(id)
	want := make(map[string]Node, len(nodes))

	var (
		res  CompareResult
		diff []mismatch
	)

	for _, n := range nodes {
		rel := strings.TrimPrefix(n.Path, "/")
		want[rel] = n

		switch n.Type {
		case "file":
			res.Files++
			res.Bytes += n.Size
		case "dir":
			res.Dirs++
		case "symlink":
			res.Symlinks++
		}
	}

	// below a folder that is missing or is no folder in the copy, every
	// entry is missing too: one mismatch for the folder says it
	gone := map[string]int{}
	rels := slices.Sorted(maps.Keys(want))

	for _, rel := range rels {
		if g, ok := goneBelow(gone, rel); ok {
			gone[g]++
			continue
		}

		n := want[rel]

		info, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(rel)))
		if errors.Is(err, fs.ErrNotExist) {
			diff = append(diff, mismatch{rel, "missing"})
			if n.Type == "dir" {
				gone[rel] = 0
			}

			continue
		}

		if err != nil {
			return fail(fmt.Errorf("the copy cannot be read (%w): check that vigil may read it", err))
		}

		diff = append(diff, compareNode(rel, n, info, filepath.Join(dir, filepath.FromSlash(rel)), snap)...)
		if n.Type == "dir" && !info.IsDir() {
			gone[rel] = 0
		}
	}

	for i := range diff {
		if k := gone[diff[i].path]; k > 0 {
			diff[i].what += fmt.Sprintf(", and the %s below it", entries(k))
		}
	}

	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err //nolint:wrapcheck // nil for the copy's own folder
		}

		rel = filepath.ToSlash(rel)

		n, ok := want[rel]
		if !ok {
			diff = append(diff, mismatch{rel, "extra, not in snapshot " + snap})
		}

		// an extra folder is one mismatch, not one for each entry in it,
		// and a folder in place of a file was reported as that
		if d.IsDir() && (!ok || n.Type != "dir") {
			return filepath.SkipDir
		}

		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("the copy cannot be read (%w): check that it exists and that vigil may read it", err))
	}

	slices.SortStableFunc(diff, func(a, b mismatch) int { return strings.Compare(a.path, b.path) })

	for i, m := range diff {
		if i == maxMismatches {
			res.Mismatches = append(res.Mismatches, fmt.Sprintf("and %d more", len(diff)-maxMismatches))
			break
		}

		res.Mismatches = append(res.Mismatches, m.path+": "+m.what)
	}

	return res, nil
}

// mismatch is one difference of a copy from its snapshot, at path
// (relative to the copy).
type mismatch struct {
	path, what string
}

// compareNode compares the copy's entry at p (info from Lstat) with the
// snapshot's node n.
func compareNode(rel string, n Node, info fs.FileInfo, p, snap string) []mismatch {
	got := nodeType(info.Mode())
	if got != n.Type {
		return []mismatch{{rel, fmt.Sprintf("%s in the copy, %s in snapshot %s", typeWords(got), typeWords(n.Type), snap)}}
	}

	var diff []mismatch

	if n.Type == "file" && info.Size() != n.Size {
		diff = append(diff, mismatch{rel, fmt.Sprintf("size %d in the copy, %d in snapshot %s", info.Size(), n.Size, snap)})
	}
	// restic restores a file's time; a later one means it was written
	// after the restore
	if n.Type == "file" && !info.ModTime().Equal(n.MTime) {
		diff = append(diff, mismatch{rel, fmt.Sprintf("modified %s in the copy, %s in snapshot %s",
			info.ModTime().UTC().Format(time.RFC3339Nano), n.MTime.UTC().Format(time.RFC3339Nano), snap)})
	}

	if n.Type != "symlink" {
		if g, w := permBits(info.Mode()), permBits(fs.FileMode(n.Mode)); g != w {
			diff = append(diff, mismatch{rel, fmt.Sprintf("mode %04o in the copy, %04o in snapshot %s", g, w, snap)})
		}
	}

	if n.Type == "symlink" {
		target, err := os.Readlink(p)
		if err != nil {
			diff = append(diff, mismatch{rel, fmt.Sprintf("symlink cannot be read in the copy (%v)", err)})
		} else if target != n.LinkTarget {
			diff = append(diff, mismatch{rel, fmt.Sprintf("points to %q in the copy, to %q in snapshot %s", target, n.LinkTarget, snap)})
		}
	}

	return diff
}

// goneBelow returns the folder of gone that rel is below, if any.
func goneBelow(gone map[string]int, rel string) (string, bool) {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if _, ok := gone[d]; ok {
			return d, true
		}
	}

	return "", false
}

// linkTargets fills in the targets of nodes' symlinks from the trees of
// the folders holding them, one restic cat tree for each such folder:
// restic ls --json leaves the target out.
func (r *Repo) linkTargets(ctx context.Context, id, root string, nodes []Node) error {
	byDir := map[string][]int{}

	for i, n := range nodes {
		if n.Type == "symlink" {
			d := path.Dir(n.Path)
			byDir[d] = append(byDir[d], i)
		}
	}

	for _, d := range slices.Sorted(maps.Keys(byDir)) {
		out, err := r.run(ctx, "cat", "tree", id+":"+path.Join(root, d))
		if err != nil {
			return err
		}

		var tree struct {
			Nodes []Node `json:"nodes"`
		}
		if err := json.Unmarshal(out, &tree); err != nil {
			return fmt.Errorf("restic printed what is not a tree's JSON for folder %s: %w", path.Join(root, d), err)
		}

		targets := map[string]string{}
		for _, t := range tree.Nodes {
			targets[t.Name] = t.LinkTarget
		}

		for _, i := range byDir[d] {
			nodes[i].LinkTarget = targets[nodes[i].Name]
		}
	}

	return nil
}

// nodeType is restic's name for the type of a file of mode m.
func nodeType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "chardev"
	case m&fs.ModeDevice != 0:
		return "dev"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	default:
		return "irregular"
	}
}

// typeWords says restic's type name t as a mismatch says it.
func typeWords(t string) string {
	switch t {
	case "file":
		return "a file"
	case "dir":
		return "a folder"
	case "symlink":
		return "a symlink"
	case "chardev":
		return "a character device"
	case "dev":
		return "a device"
	case "fifo":
		return "a named pipe"
	case "socket":
		return "a socket"
	default:
		return "a " + t
	}
}

// permBits is m's permission bits as Unix numbers them (0o7777): Go keeps
// setuid, setgid and sticky as high bits of its own.
func permBits(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}

	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}

	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}

	return bits
}

// entries says "1 entry", "2 entries".
func entries(k int) string {
	if k == 1 {
		return "1 entry"
	}

	return fmt.Sprintf("%d entries", k)
}

// ShortID is restic's short form of snapshot id, as its own messages
// name snapshots.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}

	return id
}

// Check runs restic's check, reading back subset of the pack files
// (restic's --read-data-subset: "10%", "1/5", "500M"; "" reads none, only
// the structure), and returns an error naming what is damaged.
func (r *Repo) Check(ctx context.Context, subset string) error {
	args := []string{"check"}
	if subset != "" {
		args = append(args, "--read-data-subset="+subset)
	}

	if _, err := r.run(ctx, args...); err != nil {
		return fmt.Errorf("check restic repository %s: %w", r.cfg.Repository, err)
	}

	return nil
}

// run runs one read-only restic command with --json and --no-lock and
// returns its standard output. A failure carries restic's own message.
func (r *Repo) run(ctx context.Context, args ...string) ([]byte, error) {
	if len(args) == 0 || !slices.Contains(readOnlyCommands, args[0]) {
		return nil, fmt.Errorf("restic command %q is not one that only reads: refused", strings.Join(args, " "))
	}

	full := append([]string{"--repo=" + r.cfg.Repository, "--json", "--no-lock", "--quiet"}, args...)
	if r.cfg.CacheDir != "" {
		full = append(full, "--cache-dir", r.cfg.CacheDir)
	} else {
		full = append(full, "--no-cache")
	}

	cmd := exec.CommandContext(ctx, r.cfg.Binary, full...) //nolint:gosec // the binary is the configured restic
	cmd.Env = r.env()
	cmd.WaitDelay = 5 * time.Second
	// restic dies with vigil: a restore left running by a killed vigil
	// would go on writing into a copy that the next start deletes. The
	// signal follows the thread that started restic, so this goroutine
	// keeps that thread until restic has ended.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}

	if ctx.Err() != nil {
		return nil, ctx.Err() //nolint:wrapcheck
	}

	return nil, resticError(err, stdout.Bytes(), stderr.Bytes())
}

// env is the environment restic runs with: no more of vigil's than it
// needs, so no other secret of vigil's reaches it.
func (r *Repo) env() []string {
	env := []string{"RESTIC_PASSWORD=" + r.cfg.Password}

	for _, name := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}

	return append(env, r.cfg.Env...)
}

// resticError words a failed restic run: its exit code's meaning where
// restic documents one, and the messages it printed.
func resticError(err error, stdout, stderr []byte) error {
	var msgs []string

	// with --json, restic reports its fatal error as a JSON line
	for _, out := range [][]byte{stderr, stdout} {
		for line := range bytes.Lines(out) {
			var m struct {
				MessageType string `json:"message_type"`
				Message     string `json:"message"`
				Error       struct {
					Message string `json:"message"`
				} `json:"error"`
				During string `json:"during"`
				Item   string `json:"item"`
			}

			switch {
			case json.Unmarshal(line, &m) != nil:
				if s := strings.TrimSpace(string(line)); s != "" {
					msgs = append(msgs, s)
				}
			case m.Message != "":
				msgs = append(msgs, strings.TrimSpace(m.Message))
			case m.Error.Message != "" && m.Item != "":
				msgs = append(msgs, m.Item+": "+strings.TrimSpace(m.Error.Message))
			case m.Error.Message != "":
				msgs = append(msgs, strings.TrimSpace(m.Error.Message))
			}
		}
	}

	text := strings.Join(msgs, "; ")
	if text == "" {
		text = err.Error()
	}

	var exit *exec.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case 10:
			return fmt.Errorf("%w: %s: check the vault's repository location", ErrNoRepository, text)
		case 12:
			return fmt.Errorf("%w: %s: check the vault's password_env or password_file", ErrWrongPassword, text)
		}
	}

	return fmt.Errorf("restic failed: %s", text)
}
