package mount

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	kopiafs "github.com/kopia/kopia/fs"
)

// tree is what every node of one mount shares.
type tree struct {
	// ctx is the mount's context, never the request's: the kernel
	// interrupts a request whenever the reading thread gets a signal
	// (Go's runtime sends one for preemption many times a second), and a
	// read of the vault cut short by that would be an EIO the program
	// never recovers from. A request the kernel interrupted is answered
	// in full instead, which the kernel accepts.
	ctx context.Context
	// hold holds the vault for one request, so that maintenance (which
	// waits for every reader) never runs under a read.
	hold func(context.Context) (func(), error)
	log  func(format string, args ...any)
}

// errno is the answer for a failure of the vault: missing names are
// ENOENT, an interruption is retried by the kernel's caller, everything
// else is an I/O error, logged with what failed.
func (t *tree) errno(err error, what, name string) syscall.Errno {
	if errors.Is(err, kopiafs.ErrEntryNotFound) || errors.Is(err, os.ErrNotExist) {
		return syscall.ENOENT
	}
	t.log("instant copy: %s %q: %v", what, name, err)
	return syscall.EIO
}

// node is one entry of the snapshot.
type node struct {
	gofs.Inode
	t     *tree
	entry kopiafs.Entry
}

// dirNode is a folder; its listing is read once, on first use, and kept:
// the snapshot never changes, and Kopia's Child would decode the whole
// listing again for every name.
type dirNode struct {
	node
	mu       sync.Mutex
	children map[string]kopiafs.Entry // nil until read
	order    []kopiafs.Entry
}

type fileNode struct{ node }

type symlinkNode struct{ node }

var (
	_ gofs.NodeGetattrer  = (*node)(nil)
	_ gofs.NodeSetattrer  = (*node)(nil)
	_ gofs.NodeLookuper   = (*dirNode)(nil)
	_ gofs.NodeReaddirer  = (*dirNode)(nil)
	_ gofs.NodeOpener     = (*fileNode)(nil)
	_ gofs.NodeReadlinker = (*symlinkNode)(nil)
	_ gofs.FileReader     = (*fileHandle)(nil)
	_ gofs.FileReleaser   = (*fileHandle)(nil)
)

func newNode(t *tree, e kopiafs.Entry) (gofs.InodeEmbedder, uint32) {
	switch e.(type) {
	case kopiafs.Directory:
		return &dirNode{node: node{t: t, entry: e}}, fuse.S_IFDIR
	case kopiafs.Symlink:
		return &symlinkNode{node{t: t, entry: e}}, fuse.S_IFLNK
	default:
		return &fileNode{node{t: t, entry: e}}, fuse.S_IFREG
	}
}

// fileType is the S_IF… bits of an entry.
func fileType(e kopiafs.Entry) uint32 {
	switch e.(type) {
	case kopiafs.Directory:
		return fuse.S_IFDIR
	case kopiafs.Symlink:
		return fuse.S_IFLNK
	default:
		return fuse.S_IFREG
	}
}

// fill sets a's attributes from the snapshot's record of e.
func fill(a *fuse.Attr, e kopiafs.Entry) {
	m := e.Mode()
	a.Mode = fileType(e) | uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		a.Mode |= syscall.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		a.Mode |= syscall.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		a.Mode |= syscall.S_ISVTX
	}
	if _, isDir := e.(kopiafs.Directory); !isDir {
		a.Size = uint64(max(e.Size(), 0))
	}
	t := e.ModTime()
	sec, nsec := uint64(max(t.Unix(), 0)), uint32(t.Nanosecond())
	a.Mtime, a.Mtimensec = sec, nsec
	a.Atime, a.Atimensec = sec, nsec
	a.Ctime, a.Ctimensec = sec, nsec
	a.Nlink = 1
	a.Uid, a.Gid = e.Owner().UserID, e.Owner().GroupID
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 4096
}

func (n *node) Getattr(_ context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fill(&out.Attr, n.entry)
	return gofs.OK
}

// Setattr refuses every change: the recovery point is read-only (the
// overlay above copies a file up before it changes it).
func (n *node) Setattr(context.Context, gofs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// list reads the folder's listing once it is first needed. A failure is
// not kept: a vault that was unreachable may answer next time.
func (d *dirNode) list() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.children != nil {
		return nil
	}
	release, err := d.t.hold(d.t.ctx)
	if err != nil {
		return err
	}
	defer release()
	children := map[string]kopiafs.Entry{}
	var order []kopiafs.Entry
	err = kopiafs.IterateEntries(d.t.ctx, d.entry.(kopiafs.Directory), func(_ context.Context, e kopiafs.Entry) error {
		children[e.Name()] = e
		order = append(order, e)
		return nil
	})
	if err != nil {
		return err
	}
	d.children, d.order = children, order
	return nil
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if err := d.list(); err != nil {
		return nil, d.t.errno(err, "read folder", d.entry.Name())
	}
	e, ok := d.children[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	child, mode := newNode(d.t, e)
	fill(&out.Attr, e)
	return d.NewInode(ctx, child, gofs.StableAttr{Mode: mode}), gofs.OK
}

func (d *dirNode) Readdir(context.Context) (gofs.DirStream, syscall.Errno) {
	if err := d.list(); err != nil {
		return nil, d.t.errno(err, "read folder", d.entry.Name())
	}
	entries := make([]fuse.DirEntry, 0, len(d.order))
	for _, e := range d.order {
		entries = append(entries, fuse.DirEntry{Name: e.Name(), Mode: fileType(e)})
	}
	return gofs.NewListDirStream(entries), gofs.OK
}

func (s *symlinkNode) Readlink(context.Context) ([]byte, syscall.Errno) {
	release, err := s.t.hold(s.t.ctx)
	if err != nil {
		return nil, s.t.errno(err, "read symlink", s.entry.Name())
	}
	defer release()
	target, err := s.entry.(kopiafs.Symlink).Readlink(s.t.ctx)
	if err != nil {
		return nil, s.t.errno(err, "read symlink", s.entry.Name())
	}
	return []byte(target), gofs.OK
}

// Open opens a file for reading; opening it to write is EROFS. The kernel
// may keep what it read of the file in its page cache from one open to
// the next: the file never changes.
func (f *fileNode) Open(_ context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	file, ok := f.entry.(kopiafs.File)
	if !ok {
		return nil, 0, syscall.EACCES // a device or socket: kopia keeps no content
	}
	release, err := f.t.hold(f.t.ctx)
	if err != nil {
		return nil, 0, f.t.errno(err, "open", f.entry.Name())
	}
	defer release()
	r, err := file.Open(f.t.ctx)
	if err != nil {
		return nil, 0, f.t.errno(err, "open", f.entry.Name())
	}
	return &fileHandle{t: f.t, name: f.entry.Name(), r: r}, fuse.FOPEN_KEEP_CACHE, gofs.OK
}

// fileHandle is an open file: one Kopia reader, read at one offset at a
// time.
type fileHandle struct {
	t    *tree
	name string
	mu   sync.Mutex
	r    kopiafs.Reader
}

// Read fills dest in full unless the file ends first: to the kernel, a
// short read is the end of the file.
func (h *fileHandle) Read(_ context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	release, err := h.t.hold(h.t.ctx)
	if err != nil {
		return nil, h.t.errno(err, "read", h.name)
	}
	defer release()
	if _, err := h.r.Seek(off, io.SeekStart); err != nil {
		return nil, h.t.errno(err, "read", h.name)
	}
	n, err := io.ReadFull(h.r, dest)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, h.t.errno(err, "read", h.name)
	}
	return fuse.ReadResultData(dest[:n]), gofs.OK
}

func (h *fileHandle) Release(context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.r.Close()
	return gofs.OK
}
