package vault

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/restore"
)

// modeBits are the permission bits a restore sets; the rest of os.FileMode
// describes the type of the entry.
const modeBits = os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky

// confinedOutput is a restore.Output that writes only beneath its root.
// Kopia's FilesystemOutput joins entry names onto the target path, so an
// entry named "../x", or a name like "link/x" below a symbolic link "link",
// would be written outside the target.
//
// Two layers keep it inside. Every entry name must be a plain name, so each
// path kopia hands over is a chain of plain names. And every operation goes
// through an os.Root on the target, or on a folder opened through it, which
// refuses to follow any symbolic link out of the target.
type confinedOutput struct {
	rep       repo.Repository
	rootEntry fs.Entry // the snapshot's root folder, restored as the target itself
	root      *os.Root
	top       folder // root, for files created directly in the target
	dirs      *dirHandles
	setOwners bool
	syncFiles bool
	digests   *Digests // nil unless the restore takes digests
	// ownUID and ownGID are whom a new file belongs to, when that is
	// known (ownKnown): a file that should belong to them needs no chown.
	ownUID, ownGID uint32
	ownKnown       bool
	// defaultACL is whether the target has, or may have, a default ACL,
	// which decides new files' modes instead of the umask (createMode).
	defaultACL bool

	bytes, files atomic.Int64
}

var _ restore.Output = (*confinedOutput)(nil)

func newConfinedOutput(rep repo.Repository, rootEntry fs.Entry, target string, syncFiles bool) (*confinedOutput, error) {
	root, err := os.OpenRoot(target)
	if err != nil {
		return nil, fmt.Errorf("open target folder: %w", err)
	}

	top, err := openFolder(root)
	if err != nil {
		root.Close() //nolint:errcheck
		return nil, fmt.Errorf("open target folder: %w", err)
	}

	var st unix.Stat_t
	if err := unix.Fstat(top.fd, &st); err != nil {
		top.file.Close() //nolint:errcheck
		root.Close()     //nolint:errcheck

		return nil, fmt.Errorf("check target folder: %w", err)
	}

	return &confinedOutput{
		rep:       rep,
		rootEntry: rootEntry,
		root:      root,
		top:       top,
		dirs:      newDirHandles(root),
		// Only root may give files away to other users; anyone else gets
		// every file as their own, as with cp -a.
		setOwners: os.Geteuid() == 0,
		syncFiles: syncFiles,
		ownUID:    uint32(os.Geteuid()), //nolint:gosec
		ownGID:    uint32(os.Getegid()), //nolint:gosec
		// New files take the effective group, unless their folder has
		// the set-group-ID bit. The folders a restore creates get their
		// recorded modes only once complete, so only the target's own
		// bit, which its new subfolders inherit, matters.
		ownKnown:   st.Mode&unix.S_ISGID == 0,
		defaultACL: hasDefaultACL(top.fd),
	}, nil
}

// closeAll closes the target and every folder still open below it.
func (o *confinedOutput) closeAll() {
	o.dirs.closeAll()
	o.top.file.Close() //nolint:errcheck
	o.root.Close()     //nolint:errcheck
}

// Parallelizable implements restore.Output.
func (o *confinedOutput) Parallelizable() bool { return true }

// Close implements restore.Output.
func (o *confinedOutput) Close(context.Context) error { return nil }

// rootName is how os.Root names its own folder.
const rootName = "."

// checkedPath validates the entry's name and returns the path to use below
// the target. kopia builds relativePath as path.Join(parent, entry name), so
// once each name is a plain name the path is a chain of plain names. Only the
// snapshot's root has an empty path; an entry named "." or "" would too, and
// is refused.
func (o *confinedOutput) checkedPath(relativePath string, e fs.Entry) (string, error) {
	if relativePath == "" && e == o.rootEntry {
		return rootName, nil
	}

	name := e.Name()
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("snapshot entry %q in %q is not a plain file name; refusing to restore a snapshot that could write outside its target", name, path.Dir(relativePath))
	}

	if relativePath == "" || path.Base(relativePath) != name || strings.HasPrefix(relativePath, "/") || strings.HasPrefix(relativePath, "../") {
		return "", fmt.Errorf("snapshot entry path %q does not match its name %q; refusing to restore it", relativePath, name)
	}

	return relativePath, nil
}

// in runs fn with the folder that holds p, opened below the target, and p's
// name in that folder.
func (o *confinedOutput) in(p string, fn func(dir *folder, name string) error) error {
	parent := path.Dir(p)
	if p == rootName || parent == rootName {
		return fn(&o.top, path.Base(p))
	}

	h, err := o.dirs.get(parent)
	if err != nil {
		return fmt.Errorf("open folder %s: %w", parent, err)
	}
	defer o.dirs.release(h)

	return fn(&h.folder, path.Base(p))
}

// BeginDirectory implements restore.Output.
func (o *confinedOutput) BeginDirectory(_ context.Context, relativePath string, e fs.Directory) error {
	p, err := o.checkedPath(relativePath, e)
	if err != nil {
		return err
	}

	if p == rootName {
		return nil
	}

	return o.in(p, func(dir *folder, name string) error {
		// private until FinishDirectory, once its contents are in place
		if err := dir.root.Mkdir(name, 0o700); err != nil {
			return fmt.Errorf("create folder: %w", err)
		}

		return nil
	})
}

// FinishDirectory implements restore.Output.
func (o *confinedOutput) FinishDirectory(_ context.Context, relativePath string, e fs.Directory) error {
	p, err := o.checkedPath(relativePath, e)
	if err != nil {
		return err
	}

	o.dirs.forget(p)

	// The time the folder's parent records: the restore walks storedDir
	// folders, which keep it.
	mtime := e.ModTime()

	return o.in(p, func(dir *folder, name string) error {
		// chown clears the set-group-ID bit, so it goes before chmod
		if o.setOwners {
			if err := dir.root.Lchown(name, int(e.Owner().UserID), int(e.Owner().GroupID)); err != nil {
				return fmt.Errorf("set owner of %s: %w", p, err)
			}
		}

		if err := dir.root.Chmod(name, e.Mode()&modeBits); err != nil {
			return fmt.Errorf("set mode of %s: %w", p, err)
		}

		if err := dir.root.Chtimes(name, mtime, mtime); err != nil {
			return fmt.Errorf("set time of %s: %w", p, err)
		}

		return nil
	})
}

// WriteDirEntry implements restore.Output; it is only used for shallow
// restores, which vigil does not do.
func (o *confinedOutput) WriteDirEntry(context.Context, string, *snapshot.DirEntry, fs.Directory) error {
	return nil
}

// FileExists implements restore.Output; only used by incremental restores.
func (o *confinedOutput) FileExists(context.Context, string, fs.File) bool { return false }

// SymlinkExists implements restore.Output; only used by incremental restores.
func (o *confinedOutput) SymlinkExists(context.Context, string, fs.Symlink) bool { return false }

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// WriteFile implements restore.Output.
func (o *confinedOutput) WriteFile(ctx context.Context, relativePath string, e fs.File, _ restore.FileWriteProgress) error {
	p, err := o.checkedPath(relativePath, e)
	if err != nil {
		return err
	}

	// A file of several chunks is read ahead in parallel (chunkedFile).
	chunks, err := o.chunkedFile(ctx, e)
	if err != nil {
		return fmt.Errorf("open %s in snapshot: %w", p, err)
	}

	var src io.Reader

	if chunks == nil {
		r, err := e.Open(ctx)
		if err != nil {
			return fmt.Errorf("open %s in snapshot: %w", p, err)
		}
		defer r.Close() //nolint:errcheck

		src = o.digests.reader(p, r)
	}

	mode, needChmod := createMode(e.Mode(), o.defaultACL)

	err = o.in(p, func(dir *folder, name string) error {
		f, err := dir.create(name, mode)
		if err != nil {
			return fmt.Errorf("create file: %w", err)
		}

		if chunks != nil {
			src = chunks.reader(ctx, p)
		}

		if err := o.fillFile(f, src, e, needChmod); err != nil {
			f.Close() //nolint:errcheck
			return err
		}

		return f.Close() //nolint:wrapcheck
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}

	o.files.Add(1)

	return nil
}

func (o *confinedOutput) fillFile(f *restoredFile, r io.Reader, e fs.File, needChmod bool) error {
	buf := copyBuffers.Get().(*[]byte) //nolint:forcetypeassert
	defer copyBuffers.Put(buf)

	// Blocks of zeros are left as holes: a sparse file comes back sparse.
	// A chunked file's reader writes its chunks itself (io.WriterTo), from
	// the buffers the vault returns.
	sparse := &sparseWriter{f: f}
	if _, err := io.CopyBuffer(&countingWriter{w: sparse, n: &o.bytes}, r, *buf); err != nil {
		return err //nolint:wrapcheck
	}

	if err := sparse.Finish(); err != nil {
		return fmt.Errorf("set length: %w", err)
	}

	// chown clears the set-user-ID bits, so it goes before chmod
	if o.setOwners && !o.ownedAlready(e.Owner()) {
		if err := f.Chown(int(e.Owner().UserID), int(e.Owner().GroupID)); err != nil {
			return fmt.Errorf("set owner: %w", err)
		}

		needChmod = true
	}

	if needChmod {
		if err := f.Chmod(e.Mode() & modeBits); err != nil {
			return fmt.Errorf("set mode: %w", err)
		}
	}

	// Times last, on the open file: nothing after this writes to it, and
	// by descriptor it is one call where os.Root's Chtimes by name is two.
	if err := f.setTime(e.ModTime()); err != nil {
		return fmt.Errorf("set time: %w", err)
	}

	if o.syncFiles {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}

	return nil
}

// CreateSymlink implements restore.Output. The link is created as it was,
// pointing wherever it pointed; it is never followed.
func (o *confinedOutput) CreateSymlink(ctx context.Context, relativePath string, e fs.Symlink) error {
	p, err := o.checkedPath(relativePath, e)
	if err != nil {
		return err
	}

	linkTarget, err := e.Readlink(ctx)
	if err != nil {
		return fmt.Errorf("read link %s in snapshot: %w", p, err)
	}

	o.digests.keepLink(p, linkTarget)

	err = o.in(p, func(dir *folder, name string) error {
		if err := dir.root.Symlink(linkTarget, name); err != nil {
			return fmt.Errorf("create link: %w", err)
		}

		if o.setOwners {
			if err := dir.root.Lchown(name, int(e.Owner().UserID), int(e.Owner().GroupID)); err != nil {
				return fmt.Errorf("set owner: %w", err)
			}
		}

		return nil
	})
	if err != nil {
		return fmt.Errorf("restore link %s: %w", p, err)
	}

	if err := o.setLinkTime(p, e.ModTime()); err != nil {
		return fmt.Errorf("set time of link %s: %w", p, err)
	}

	return nil
}

// setLinkTime sets a link's own time. os.Root has no Lchtimes, so this opens
// the link's folder through the root and works relative to it.
func (o *confinedOutput) setLinkTime(p string, t time.Time) error {
	dir, err := o.root.Open(path.Dir(p))
	if err != nil {
		return err //nolint:wrapcheck
	}
	defer dir.Close() //nolint:errcheck

	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}

	return unix.UtimesNanoAt(int(dir.Fd()), path.Base(p), ts, unix.AT_SYMLINK_NOFOLLOW) //nolint:wrapcheck
}

// ownedAlready says whether a new file already has owner o.
func (o *confinedOutput) ownedAlready(owner fs.OwnerInfo) bool {
	return o.ownKnown && owner.UserID == o.ownUID && owner.GroupID == o.ownGID
}

// folder is a folder of the target open twice: as an os.Root, for
// operations that must resolve a name safely, and as a descriptor, to
// create files with one system call.
type folder struct {
	root *os.Root
	file *os.File
	fd   int
}

// openFolder opens r's own folder as a descriptor too.
func openFolder(r *os.Root) (folder, error) {
	f, err := r.Open(rootName)
	if err != nil {
		return folder{}, err //nolint:wrapcheck
	}

	return folder{root: r, file: f, fd: int(f.Fd())}, nil
}

// create makes the new file name in the folder, open for writing. name is
// a plain name (checkedPath), and O_EXCL with O_NOFOLLOW refuses whatever
// is already there, a link included: as confined as os.Root's OpenFile,
// in one system call rather than six (Go's OpenFile also tries to register
// a file with its poller, and gives up, for every file). O_EXCL: the
// target started empty, so an existing name means the snapshot lists it
// twice. mode is the new file's mode before the umask (createMode).
func (d *folder) create(name string, mode os.FileMode) (*restoredFile, error) {
	fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: name, Err: err}
	}

	return &restoredFile{fd: fd, name: name}, nil
}

func (d *folder) close() {
	d.file.Close() //nolint:errcheck
	d.root.Close() //nolint:errcheck
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))

	return n, err //nolint:wrapcheck
}

// maxOpenDirs bounds the folders a restore keeps open. Kopia writes the
// files of one folder one after another, so a few dozen cover every worker;
// the bound keeps a tree with a million folders under the process's limit
// on open files.
const maxOpenDirs = 64

// dirHandles keeps recently used folders of the target open, so that
// creating a file costs one system call on its folder rather than one per
// path component, which os.Root needs to resolve a path safely.
type dirHandles struct {
	top *os.Root

	mu sync.Mutex
	// +checklocks:mu
	open map[string]*dirHandle
	// +checklocks:mu
	recent list.List // of *dirHandle, most recently used first
}

type dirHandle struct {
	folder

	path  string
	users int           // guarded by dirHandles.mu
	elem  *list.Element // nil once dropped from dirHandles.open
}

func newDirHandles(top *os.Root) *dirHandles {
	return &dirHandles{top: top, open: map[string]*dirHandle{}}
}

// get returns the open folder p; release it with release.
func (d *dirHandles) get(p string) (*dirHandle, error) {
	if h := d.use(p); h != nil {
		return h, nil
	}

	r, err := d.openRoot(p)
	if err != nil {
		return nil, err //nolint:wrapcheck
	}

	f, err := openFolder(r)
	if err != nil {
		r.Close() //nolint:errcheck
		return nil, err
	}

	d.mu.Lock()
	defer d.mu.Unlock()

	if h, ok := d.open[p]; ok {
		// another worker opened it meanwhile
		f.close()
		h.users++
		d.recent.MoveToFront(h.elem)

		return h, nil
	}

	h := &dirHandle{folder: f, path: p, users: 1}
	h.elem = d.recent.PushFront(h)
	d.open[p] = h

	for e := d.recent.Back(); e != nil && len(d.open) > maxOpenDirs; {
		prev := e.Prev()
		d.dropLocked(e.Value.(*dirHandle)) //nolint:forcetypeassert
		e = prev
	}

	return h, nil
}

// openRoot opens folder p below the target. os.Root resolves a path one
// folder at a time, an openat each; from p's parent, when it is open (it
// usually is: the restore has just created p in it), p is one name away.
func (d *dirHandles) openRoot(p string) (*os.Root, error) {
	if parent := path.Dir(p); parent != rootName {
		if h := d.use(parent); h != nil {
			defer d.release(h)

			return h.root.OpenRoot(path.Base(p)) //nolint:wrapcheck
		}
	}

	return d.top.OpenRoot(p) //nolint:wrapcheck
}

func (d *dirHandles) use(p string) *dirHandle {
	d.mu.Lock()
	defer d.mu.Unlock()

	h, ok := d.open[p]
	if !ok {
		return nil
	}

	h.users++
	d.recent.MoveToFront(h.elem)

	return h
}

func (d *dirHandles) release(h *dirHandle) {
	d.mu.Lock()
	defer d.mu.Unlock()

	h.users--
	if h.users == 0 && h.elem == nil {
		h.close()
	}
}

// forget drops folder p, whose contents are complete.
func (d *dirHandles) forget(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()

	if h, ok := d.open[p]; ok {
		d.dropLocked(h)
	}
}

func (d *dirHandles) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()

	for _, h := range d.open {
		d.dropLocked(h)
	}
}

// dropLocked removes h from the open set; it is closed now, or by the last
// user to release it.
func (d *dirHandles) dropLocked(h *dirHandle) {
	d.recent.Remove(h.elem)
	h.elem = nil
	delete(d.open, h.path)

	if h.users == 0 {
		h.close()
	}
}
