package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	kopiafs "github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
)

// CompareResult says what Compare checked and what differed.
type CompareResult struct {
	// Files, Dirs and Symlinks count the snapshot's entries; Dirs counts
	// the root folder too.
	Files, Dirs, Symlinks int64
	// Compared counts the files whose contents were compared, Bytes the
	// bytes compared. Digested counts those of them checked against the
	// digests their restore took (CompareDigests): read from the folder
	// and hashed. The others were read back from the vault and compared
	// byte by byte with the restored file; VaultBytes counts the bytes of
	// content read from the vault for them.
	Compared   int64
	Bytes      int64
	Digested   int64
	VaultBytes int64
	// Mismatches lists the differences, each naming a path relative to the
	// compared folder ("." for the folder itself): "missing: a/b.txt",
	// "extra: z", "type differs: …", "size differs: …", "mode differs: …",
	// "time differs: …", "link target differs: …", "content differs: x.bin
	// (from byte 4096)", "cannot read: …". At most maxCompareMismatches are
	// listed, followed by "… and N more". Empty when the trees are equal.
	Mismatches []string
}

// maxCompareMismatches bounds CompareResult.Mismatches: past a few, the
// copy is plainly wrong and more lines only bury the first ones.
const maxCompareMismatches = 20

// directoryStreamType marks a kopia folder listing.
const directoryStreamType = "kopia:directory"

// Compare checks that the tree under dir equals snapshot snapID: every
// folder, file and symlink of the snapshot exists in dir with the same type,
// size, permission bits, modification time and symlink target, nothing else
// is in dir, and, for a random sample of samplePercent (0 to 100) percent of
// the files, the same content, read back from the vault and compared byte by
// byte with the restored file. 100 compares every file; any percentage
// compares at least one file when there is one. Owners are not compared:
// only a restore running as root sets them.
//
// Differences are collected in the result's Mismatches. The error is for
// failing to compare at all: the snapshot is missing or incomplete, the vault
// cannot be read, dir is not a folder, or ctx ends.
//
// dir is read without following symbolic links, and the vault is only read.
// Contents are compared several files at once, as Restore writes them.
func (v *Vault) Compare(ctx context.Context, snapID, dir string, samplePercent float64) (CompareResult, error) {
	res, err := v.compare(ctx, snapID, dir, samplePercent, nil)
	if err != nil {
		return CompareResult{}, fmt.Errorf("compare %s with snapshot %s of vault %q: %w", dir, snapID, v.cfg.Name, err)
	}

	return res, nil
}

func (v *Vault) compare(ctx context.Context, snapID, dir string, samplePercent float64, digests *Digests) (CompareResult, error) {
	if math.IsNaN(samplePercent) || samplePercent < 0 || samplePercent > 100 {
		return CompareResult{}, fmt.Errorf("percentage of files to compare must be between 0 and 100, not %v", samplePercent)
	}

	if dir == "" {
		return CompareResult{}, errors.New("no folder given")
	}

	release, err := v.shared(ctx)
	if err != nil {
		return CompareResult{}, err
	}
	defer release()

	// Comparing every file reads every pack of the snapshot: read each
	// whole once (see packCache). A sample reads only some of each pack's
	// files, where a whole read would fetch more bytes than it needs.
	if samplePercent == 100 {
		var dropPacks func()
		ctx, dropPacks = withPackCache(ctx, v.cfg.Tuning.PackCacheBytes)
		defer dropPacks()
	}

	man, err := v.loadSnapshot(ctx, snapID)
	if err != nil {
		return CompareResult{}, err
	}

	if man.IncompleteReason != "" {
		return CompareResult{}, fmt.Errorf("snapshot is incomplete (%s); compare a complete one", man.IncompleteReason)
	}

	if man.RootEntry.Type != snapshot.EntryTypeDirectory {
		return CompareResult{}, errors.New("snapshot is of a single file, not a folder")
	}

	fi, err := os.Lstat(dir)
	if err != nil {
		return CompareResult{}, fmt.Errorf("check folder: %w", err)
	}

	if !fi.IsDir() {
		return CompareResult{}, fmt.Errorf("%s is not a folder (it is a %s)", dir, fileTypeName(fi.Mode()))
	}

	c := &comparison{rep: v.rep, dir: dir, digests: digests}

	c.res.Dirs++
	c.compareMetadata(".", man.RootEntry, fi.Mode(), fi.ModTime())

	top, err := openRestoredDir(unix.AT_FDCWD, dir)
	if err != nil {
		c.mismatch("cannot read: . (%v)", err)
	}

	workers := parallelism(v.cfg.Tuning.RestoreParallelism, defaultRestoreParallelism)
	if samplePercent >= 100 {
		// Every file is compared: each is compared as soon as the walk
		// finds it, while the walk goes on.
		c.early = c.startContents(ctx, workers)
	}

	if err := c.walk(ctx, ".", man.RootEntry.ObjectID, top); err != nil {
		if c.early != nil {
			c.early.wait() //nolint:errcheck // the walk's error is the one to report
		}

		return CompareResult{}, err
	}

	if err := c.compareContents(ctx, samplePercent, workers); err != nil {
		return CompareResult{}, err
	}

	if err := ctx.Err(); err != nil {
		return CompareResult{}, fmt.Errorf("compare cancelled: %w", err)
	}

	c.res.Mismatches = c.mismatches
	if c.more > 0 {
		c.res.Mismatches = append(c.res.Mismatches, fmt.Sprintf("… and %d more", c.more))
	}

	return c.res, nil
}

// comparison is one run of Compare. The tree walk runs on one goroutine;
// contents are compared afterwards.
type comparison struct {
	rep     repo.Repository
	dir     string
	digests *Digests // nil: every content is read from the vault

	res        CompareResult
	mismatches []string
	more       int

	// files are the regular files present in dir with the snapshot's size,
	// the ones whose contents can be compared; unless early is set, which
	// compares each as the walk finds it.
	files []fileToCompare
	early *contentCheck

	dirents []byte // the walk's buffer for reading folders
}

type fileToCompare struct {
	path string // slash-separated, relative to dir
	oid  object.ID
	size int64 // as the snapshot records it
	// dir, when set, is the restored folder that holds the file, as
	// name, retained until the file is compared; otherwise the file is
	// opened by its path.
	dir  *restoredDir
	name string
}

// direntBuf is the walk's buffer for reading folders; the walk is one
// goroutine.
func (c *comparison) direntBuf() []byte {
	if c.dirents == nil {
		c.dirents = make([]byte, 32<<10)
	}

	return c.dirents
}

func (c *comparison) mismatch(format string, args ...any) {
	if len(c.mismatches) >= maxCompareMismatches {
		c.more++
		return
	}

	c.mismatches = append(c.mismatches, fmt.Sprintf(format, args...))
}

// local returns the restored path of rel.
func (c *comparison) local(rel string) string {
	return filepath.Join(c.dir, filepath.FromSlash(rel))
}

// walk compares the folder rel, stored as object oid, with its restored
// copy dir, and goes down into its subfolders; it releases dir. With dir
// nil the restored folder is missing or not a folder, which is already
// reported: the snapshot's entries below it are only counted.
func (c *comparison) walk(ctx context.Context, rel string, oid object.ID, dir *restoredDir) error {
	defer dir.release()

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("compare cancelled: %w", err)
	}

	entries, err := c.readListing(ctx, oid)
	if err != nil {
		return fmt.Errorf("read folder %s in snapshot: %w", rel, err)
	}

	var (
		restored []string
		byName   map[string]int
		matched  []bool
	)

	// here is the restored folder while its entries can be compared
	here := dir

	if here != nil {
		restored, err = here.names(c.direntBuf())
		if err != nil {
			c.mismatch("cannot read: %s (%v)", rel, err)
			here = nil
		}

		byName = make(map[string]int, len(restored))
		for i, name := range restored {
			byName[name] = i
		}

		matched = make([]bool, len(restored))
	}

	for _, e := range entries {
		// path.Join would clean a name such as ".." away; such a name
		// cannot match any restored entry either, so it is reported missing
		// and nothing outside dir is ever looked at.
		p := rel + "/" + e.Name
		if rel == "." {
			p = e.Name
		}

		switch e.Type {
		case snapshot.EntryTypeDirectory:
			c.res.Dirs++
		case snapshot.EntryTypeFile:
			c.res.Files++
		case snapshot.EntryTypeSymlink:
			c.res.Symlinks++
		default:
			c.mismatch("unknown type: %s (type %q in the snapshot)", p, e.Type)
			continue
		}

		var sub *restoredDir

		if here != nil {
			if i, ok := byName[e.Name]; ok {
				matched[i] = true

				sub, err = c.compareEntry(ctx, p, e, here)
				if err != nil {
					return err
				}
			} else {
				c.mismatch("missing: %s", p)
			}
		}

		if e.Type == snapshot.EntryTypeDirectory {
			if err := c.walk(ctx, p, e.ObjectID, sub); err != nil {
				return err
			}
		}
	}

	// in the order of their names, as ls lists them
	var extra []string

	for i, name := range restored {
		if !matched[i] {
			extra = append(extra, name)
		}
	}

	slices.Sort(extra)

	for _, name := range extra {
		c.mismatch("extra: %s", path.Join(rel, name))
	}

	return nil
}

// compareEntry compares one snapshot entry with the restored entry of the
// same name in dir. For a folder there with the same type, it returns the
// restored folder, open, for the walk to go down into.
func (c *comparison) compareEntry(ctx context.Context, p string, e *snapshot.DirEntry, dir *restoredDir) (*restoredDir, error) {
	// AT_SYMLINK_NOFOLLOW: a link is described, not followed.
	var st unix.Stat_t

	err := ignoringEINTR(func() error { return unix.Fstatat(dir.fd, e.Name, &st, unix.AT_SYMLINK_NOFOLLOW) })
	if errors.Is(err, unix.ENOENT) {
		c.mismatch("missing: %s", p)
		return nil, nil
	} else if err != nil {
		c.mismatch("cannot read: %s (%v)", p, err)
		return nil, nil
	}

	if !c.compareMetadata(p, e, statMode(&st), time.Unix(st.Mtim.Sec, st.Mtim.Nsec)) {
		return nil, nil
	}

	switch e.Type {
	case snapshot.EntryTypeFile:
		if st.Size != e.FileSize {
			c.mismatch("size differs: %s (snapshot %d bytes, restored %d)", p, e.FileSize, st.Size)
		} else {
			f := fileToCompare{path: p, oid: e.ObjectID, size: e.FileSize}
			if c.early != nil {
				f.dir, f.name = dir, e.Name
				c.early.add(f)
			} else {
				// opened by path once sampled: a folder is not kept
				// open until then
				c.files = append(c.files, f)
			}
		}
	case snapshot.EntryTypeSymlink:
		want, err := c.linkTarget(ctx, p, e.ObjectID)
		if err != nil {
			return nil, fmt.Errorf("read link %s in snapshot: %w", p, err)
		}

		got, err := dir.readlink(e.Name)
		if err != nil {
			c.mismatch("cannot read: %s (%v)", p, err)
		} else if got != string(want) {
			c.mismatch("link target differs: %s (snapshot %q, restored %q)", p, want, got)
		}
	case snapshot.EntryTypeDirectory:
		sub, err := dir.openDir(e.Name)
		if err != nil {
			c.mismatch("cannot read: %s (%v)", p, err)
			return nil, nil
		}

		return sub, nil
	}

	return nil, nil
}

// compareMetadata compares type, permission bits and modification time, and
// reports whether the types match.
func (c *comparison) compareMetadata(p string, e *snapshot.DirEntry, mode os.FileMode, mtime time.Time) bool {
	want, got := entryTypeName(e.Type), fileTypeName(mode)
	if want != got {
		c.mismatch("type differs: %s (snapshot %s, restored %s)", p, want, got)
		return false
	}

	// Linux gives every link the same permissions and cannot change them.
	if e.Type != snapshot.EntryTypeSymlink {
		wantMode, gotMode := os.FileMode(e.Permissions)&kopiafs.ModBits, mode&kopiafs.ModBits //nolint:gosec
		if wantMode != gotMode {
			c.mismatch("mode differs: %s (snapshot %s, restored %s)", p, octalMode(wantMode), octalMode(gotMode))
		}
	}

	if wantTime, gotTime := e.ModTime.ToTime(), mtime; !wantTime.Equal(gotTime) {
		c.mismatch("time differs: %s (snapshot %s, restored %s)", p, wantTime.UTC().Format(time.RFC3339Nano), gotTime.UTC().Format(time.RFC3339Nano))
	}

	return true
}

// readListing reads a folder's entries as stored. Kopia's file system view
// would replace each subfolder's time with the newest time in its subtree;
// the stored listing has the folder's own.
func (c *comparison) readListing(ctx context.Context, oid object.ID) ([]*snapshot.DirEntry, error) {
	if entries, ok := c.digests.listing(oid); ok {
		return entries, nil // as the restore read it from the vault
	}

	return readListing(ctx, c.rep, oid)
}

// maxLinkTarget bounds a link target read from the vault; Linux allows 4 KiB.
const maxLinkTarget = 64 << 10

// linkTarget is the target of link p, stored as oid: as the restore read
// it, or read from the vault.
func (c *comparison) linkTarget(ctx context.Context, p string, oid object.ID) ([]byte, error) {
	if target, ok := c.digests.link(p); ok {
		return []byte(target), nil
	}

	return c.readAll(ctx, oid)
}

func (c *comparison) readAll(ctx context.Context, oid object.ID) ([]byte, error) {
	r, err := c.rep.OpenObject(ctx, oid)
	if err != nil {
		return nil, fmt.Errorf("open object %v: %w", oid, err)
	}
	defer r.Close() //nolint:errcheck

	b, err := io.ReadAll(io.LimitReader(r, maxLinkTarget))
	if err != nil {
		return nil, fmt.Errorf("read object %v: %w", oid, err)
	}

	return b, nil
}

// compareContents compares the contents of a random samplePercent of the
// comparable files, at least one, workers at a time. With every file to
// compare, the walk has handed them over already (c.early).
func (c *comparison) compareContents(ctx context.Context, samplePercent float64, workers int) error {
	if c.early != nil {
		return c.endContents(ctx, c.early)
	}

	n := len(c.files)
	if n == 0 {
		return nil
	}

	k := min(n, max(1, int(math.Ceil(float64(n)*samplePercent/100))))

	sample := c.files
	if k < n {
		// in the order of the walk, so mismatches are reported in it
		picked := rand.Perm(n)[:k]
		slices.Sort(picked)

		sample = make([]fileToCompare, k)
		for i, j := range picked {
			sample[i] = c.files[j]
		}
	}

	cc := c.startContents(ctx, workers)
	for _, f := range sample {
		if !cc.add(f) {
			break
		}
	}

	return c.endContents(ctx, cc)
}

// endContents waits for the contents cc compares, and reports what it
// found.
func (c *comparison) endContents(ctx context.Context, cc *contentCheck) error {
	if err := cc.wait(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("compare cancelled: %w", ctxErr)
		}

		return err
	}

	c.res.Compared, c.res.Bytes = cc.compared.Load(), cc.bytes.Load()
	c.res.Digested, c.res.VaultBytes = cc.digested.Load(), cc.vaultBytes.Load()

	cc.mu.Lock()
	found := cc.found
	cc.mu.Unlock()

	// in the order the files were handed over: the walk's
	slices.SortFunc(found, func(a, b foundDiff) int { return a.i - b.i })

	for _, d := range found {
		c.mismatch("%s", d.diff)
	}

	return nil
}

// compareFile compares one file's content in the vault with the restored
// file, and returns the bytes compared and the difference found, if any.
func (c *comparison) compareFile(ctx context.Context, f fileToCompare) (int64, string, error) {
	r, err := c.rep.OpenObject(ctx, f.oid)
	if err != nil {
		return 0, "", fmt.Errorf("open %s in snapshot: %w", f.path, err)
	}
	defer r.Close() //nolint:errcheck

	fd, err := c.openRestored(f)
	if err != nil {
		return 0, fmt.Sprintf("cannot read: %s (%v)", f.path, err), nil
	}
	defer unix.Close(fd) //nolint:errcheck

	local := fdReader(fd)

	want := copyBuffers.Get().(*[]byte) //nolint:forcetypeassert
	defer copyBuffers.Put(want)

	got := copyBuffers.Get().(*[]byte) //nolint:forcetypeassert
	defer copyBuffers.Put(got)

	var offset int64

	for {
		if err := ctx.Err(); err != nil {
			return offset, "", err //nolint:wrapcheck
		}

		n, err := io.ReadFull(r, *want)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return offset, "", fmt.Errorf("read %s in snapshot: %w", f.path, err)
		}

		// Reading a full buffer from the restored file, even when the
		// vault's content ended, shows a restored file that is longer.
		m, err := io.ReadFull(local, *got)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return offset, fmt.Sprintf("cannot read: %s (%v)", f.path, unwrapPathError(err)), nil
		}

		if i := firstDifference((*want)[:n], (*got)[:m]); i >= 0 {
			return offset + int64(i), fmt.Sprintf("content differs: %s (from byte %d)", f.path, offset+int64(i)), nil
		}

		offset += int64(n)

		if n < len(*want) {
			return offset, "", nil
		}
	}
}

// firstDifference returns the index of the first byte where a and b differ,
// counting the end of the shorter as a difference, or -1 when they are
// equal.
func firstDifference(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}

	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}

	return n
}

func entryTypeName(t snapshot.EntryType) string {
	switch t {
	case snapshot.EntryTypeDirectory:
		return "folder"
	case snapshot.EntryTypeFile:
		return "file"
	case snapshot.EntryTypeSymlink:
		return "symlink"
	}

	return "unknown"
}

func fileTypeName(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "folder"
	case m.IsRegular():
		return "file"
	case m&os.ModeSymlink != 0:
		return "symlink"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}

	return "special file"
}

// octalMode writes permission bits the way chmod takes them, such as 0644
// or 4755.
func octalMode(m os.FileMode) string {
	bits := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		bits |= 0o4000
	}

	if m&os.ModeSetgid != 0 {
		bits |= 0o2000
	}

	if m&os.ModeSticky != 0 {
		bits |= 0o1000
	}

	return fmt.Sprintf("%04o", bits)
}

// unwrapPathError drops the path an *os.PathError repeats, since every
// mismatch names its path already.
func unwrapPathError(err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}

	return err
}
