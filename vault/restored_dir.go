package vault

import (
	"errors"
	"io"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// restoredDir is a folder of a restored copy, open while a comparison
// lists it and while any of its files waits to be compared. Its entries
// are described, and its files opened, relative to it: a path resolved
// from the top for each of them was a good part of checking a tree of
// small files.
type restoredDir struct {
	fd   int
	refs atomic.Int32
}

// openRestoredDir opens the folder name of parent (a restoredDir's
// descriptor, or AT_FDCWD for a path), retained once. It is not
// followed if it is a link, and a FIFO in its place does not block.
func openRestoredDir(parent int, name string) (*restoredDir, error) {
	var fd int

	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)

		return err //nolint:wrapcheck
	})
	if err != nil {
		return nil, err
	}

	d := &restoredDir{fd: fd}
	d.refs.Store(1)

	return d, nil
}

func (d *restoredDir) retain() { d.refs.Add(1) }

// release drops a reference; the last closes the folder. Nothing when d
// is nil.
func (d *restoredDir) release() {
	if d != nil && d.refs.Add(-1) == 0 {
		unix.Close(d.fd) //nolint:errcheck
	}
}

// openDir opens the subfolder name.
func (d *restoredDir) openDir(name string) (*restoredDir, error) {
	return openRestoredDir(d.fd, name)
}

// names lists the folder's entries, in the order the file system keeps
// them, reading into buf; once.
func (d *restoredDir) names(buf []byte) ([]string, error) {
	var names []string

	for {
		n, err := unix.ReadDirent(d.fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil {
			return nil, err //nolint:wrapcheck
		}

		if n <= 0 {
			return names, nil
		}

		// "." and ".." are left out
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// readlink is the target of the link name.
func (d *restoredDir) readlink(name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)

		var n int

		err := ignoringEINTR(func() error {
			var err error
			n, err = unix.Readlinkat(d.fd, name, buf)

			return err //nolint:wrapcheck
		})
		if err != nil {
			return "", err
		}

		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// openRestored opens the restored file f for reading. O_NOFOLLOW: the
// walk saw a regular file here; if it has been swapped for a link since,
// the link is not followed. O_NONBLOCK: nor does a FIFO swapped in block
// the open. The descriptor is used bare: an os.File would cost an fstat
// and a close through the poller per file, which on a tree of small files
// is a good part of the check.
func (c *comparison) openRestored(f fileToCompare) (int, error) {
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC

	var fd int

	err := ignoringEINTR(func() error {
		var err error
		if f.dir != nil {
			fd, err = unix.Openat(f.dir.fd, f.name, flags, 0)
		} else {
			fd, err = unix.Open(c.local(f.path), flags, 0)
		}

		return err //nolint:wrapcheck
	})

	return fd, err
}

// fdReader reads a bare descriptor.
type fdReader int

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), p)
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil {
			return 0, err //nolint:wrapcheck
		}

		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}

		return n, nil
	}
}

// statMode is the os.FileMode of what st describes, as os.Lstat gives it.
func statMode(st *unix.Stat_t) os.FileMode {
	m := os.FileMode(st.Mode & 0o777) //nolint:gosec // 9 bits

	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= os.ModeDevice
	case unix.S_IFCHR:
		m |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		m |= os.ModeDir
	case unix.S_IFIFO:
		m |= os.ModeNamedPipe
	case unix.S_IFLNK:
		m |= os.ModeSymlink
	case unix.S_IFSOCK:
		m |= os.ModeSocket
	}

	if st.Mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}

	if st.Mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}

	if st.Mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}

	return m
}
