// Package disk reads how full a filesystem is, so that a job refuses to
// start what cannot fit, and one that ran out of space says on which disk
// and by how much, rather than only "no space left on device".
package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vigil-backup/vigil/internal/units"
)

// Space is what a filesystem has left.
type Space struct {
	// Mount is the folder the filesystem is mounted at.
	Mount string
	// Free is what an unprivileged writer may still use, in bytes, of
	// Total.
	Free, Total int64
	// FreeFiles of Files are the inodes left (0 of 0 when the filesystem
	// does not count them).
	FreeFiles, Files int64
}

// SpaceOf returns the space of the filesystem that holds path, or would
// hold it: a path that does not exist yet is looked up through its
// nearest existing parent.
func SpaceOf(path string) (Space, error) {
	path = existing(filepath.Clean(path))
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Space{}, fmt.Errorf("read the free space of %s: %w", path, err)
	}
	bs := int64(st.Bsize)
	return Space{
		Mount:     mountOf(path),
		Free:      int64(st.Bavail) * bs,
		Total:     int64(st.Blocks) * bs,
		FreeFiles: int64(st.Ffree),
		Files:     int64(st.Files),
	}, nil
}

// String says it for people: "/data: 1.2 MiB free of 64.0 MiB".
func (s Space) String() string {
	msg := fmt.Sprintf("the disk mounted at %s has %s free of %s", s.Mount, units.Bytes(s.Free), units.Bytes(s.Total))
	if s.Files > 0 && s.FreeFiles*20 < s.Files {
		// Out of inodes: bytes may be free, and still nothing fits.
		msg += fmt.Sprintf(", and %d of its %d inodes (files and folders) free", s.FreeFiles, s.Files)
	}
	return msg
}

// Full reports whether err is a write that found the disk full (no bytes
// or no inodes left, or a quota reached).
func Full(err error) bool {
	if err == nil {
		return false
	}
	// Kopia flattens some errors into text on their way up.
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// Describe says how full the disk that holds path is, for an error
// message about a write that found it full.
func Describe(path string) string {
	s, err := SpaceOf(path)
	if err != nil {
		return err.Error()
	}
	return s.String()
}

// Room refuses to write need bytes below path when its disk has fewer
// free, naming both figures. what says what needs them ("the copy of
// recovery point rp-…"); advice says where to free or find space.
func Room(path string, need int64, what, advice string) error {
	s, err := SpaceOf(path)
	if err != nil {
		return err
	}
	if need <= s.Free {
		return nil
	}
	return fmt.Errorf("%s needs %s, and %s (for %s): %s", what, units.Bytes(need), s, path, advice)
}

// Explain adds to err, when it is a write that found the disk full, how
// full the disk under path is, what needed how much, and advice on where
// to free or find space; other errors are returned as they are.
func Explain(err error, path string, need int64, what, advice string) error {
	if !Full(err) {
		return err
	}
	return fmt.Errorf("%w: the disk is full: %s (for %s); %s needs %s (the files' own size: folders, and small files, take more): %s",
		err, Describe(path), path, what, units.Bytes(need), advice)
}

// existing is path or its nearest parent that exists.
func existing(path string) string {
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || filepath.Dir(p) == p {
			return p
		}
	}
}

// mountOf is the highest folder above path on the same filesystem.
func mountOf(path string) string {
	dev := func(p string) (uint64, bool) {
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			return 0, false
		}
		return st.Dev, true
	}
	if r, err := filepath.EvalSymlinks(path); err == nil {
		path = r
	}
	d, ok := dev(path)
	if !ok {
		return path
	}
	for {
		parent := filepath.Dir(path)
		if parent == path {
			return path
		}
		if pd, ok := dev(parent); !ok || pd != d {
			return path
		}
		path = parent
	}
}
