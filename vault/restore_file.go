package vault

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// restoredFile is a file a restore is writing, held as a bare descriptor.
// An os.File would cost an fcntl per file when wrapped (os.NewFile asks
// whether the descriptor is non-blocking) and a trip through the poller to
// close it; on a tree of small files those are two of eight calls per
// file. Its methods are named and fail as os.File's do, naming the file.
type restoredFile struct {
	fd   int
	name string
}

func (f *restoredFile) wrap(op string, err error) error {
	if err == nil {
		return nil
	}

	return &os.PathError{Op: op, Path: f.name, Err: err}
}

// WriteAt writes all of p at off, as os.File.WriteAt does.
func (f *restoredFile) WriteAt(p []byte, off int64) (int, error) {
	written := 0

	for written < len(p) {
		n, err := unix.Pwrite(f.fd, p[written:], off+int64(written))
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil {
			return written, f.wrap("write", err)
		}

		if n == 0 {
			return written, f.wrap("write", unix.EIO)
		}

		written += n
	}

	return written, nil
}

// Truncate sets the file's length.
func (f *restoredFile) Truncate(size int64) error {
	return f.wrap("truncate", ignoringEINTR(func() error { return unix.Ftruncate(f.fd, size) }))
}

// Chown sets the file's owner and group.
func (f *restoredFile) Chown(uid, gid int) error {
	return f.wrap("chown", ignoringEINTR(func() error { return unix.Fchown(f.fd, uid, gid) }))
}

// Chmod sets the file's permission bits, set-ID and sticky bits included.
func (f *restoredFile) Chmod(mode os.FileMode) error {
	return f.wrap("chmod", ignoringEINTR(func() error { return unix.Fchmod(f.fd, unixMode(mode)) }))
}

// Sync flushes the file to its disk.
func (f *restoredFile) Sync() error {
	return f.wrap("sync", ignoringEINTR(func() error { return unix.Fsync(f.fd) }))
}

// setTime sets the file's access and modification times to t with
// utimensat(fd, NULL, …), i.e. futimens(2), which Go and x/sys do not
// offer for a descriptor (their Futimes goes through /proc by path).
func (f *restoredFile) setTime(t time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}

	return f.wrap("set time", ignoringEINTR(func() error {
		if _, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(f.fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); errno != 0 {
			return errno
		}

		return nil
	}))
}

// Close closes the descriptor. It is not retried on EINTR: on Linux the
// descriptor is gone whatever close returns.
func (f *restoredFile) Close() error {
	return f.wrap("close", unix.Close(f.fd))
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// unixMode is mode as the permission and set-ID bits of chmod(2).
func unixMode(mode os.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&os.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}

	if mode&os.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}

	if mode&os.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}

	return m
}

// processUmask is the process's file mode creation mask, read once from
// /proc/self/status; known is false where that cannot be read. umask(2)
// would tell it only by setting it, which races with every other goroutine
// creating files.
var processUmask = sync.OnceValues(func() (os.FileMode, bool) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}

	return parseUmask(status)
})

// parseUmask finds the "Umask:" line of a /proc/<pid>/status file (Linux
// 4.7 and later).
func parseUmask(status []byte) (os.FileMode, bool) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("Umask:"))
		if !ok {
			continue
		}

		m, err := strconv.ParseUint(strings.TrimSpace(string(rest)), 8, 32)
		if err != nil || m > 0o777 {
			return 0, false
		}

		return os.FileMode(m), true
	}

	return 0, false
}

// createMode is the mode to create a restored file with, and whether the
// file needs a chmod once written. A file whose recorded permission bits
// survive the umask is created with them and needs none: one system call
// less per file. The set-ID and sticky bits always take the chmod: chown
// clears the set-ID bits, and open(2) is not where they are set reliably.
// A file created with its final mode is readable as it is written, but
// only to whom its final mode allows, and within a folder that stays
// private (0o700) until its contents are complete.
// defaultACL is whether the target's folders may carry a default ACL,
// which replaces the umask in deciding a new file's mode.
func createMode(mode os.FileMode, defaultACL bool) (os.FileMode, bool) {
	umask, known := processUmask()
	perm := mode.Perm()

	if !known || defaultACL || mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 || perm&umask != 0 {
		return 0o600, true
	}

	return perm, false
}

// hasDefaultACL says whether the folder fd has a default ACL, or may have
// one: the folders a restore creates inherit it from the target, and a new
// file's mode is then masked by the ACL rather than by the umask.
func hasDefaultACL(fd int) bool {
	_, err := unix.Fgetxattr(fd, "system.posix_acl_default", nil)

	return !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP)
}
