package disk_test

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-backup/vigil/internal/disk"
)

func TestFull(t *testing.T) {
	for _, tc := range []struct {
		err  error
		full bool
	}{
		{nil, false},
		{errors.New("permission denied"), false},
		{fmt.Errorf("write x: %w", syscall.ENOSPC), true},
		{fmt.Errorf("quota: %w", syscall.EDQUOT), true},
		{errors.New("restore error: copy file: write f: no space left on device"), true},
	} {
		if got := disk.Full(tc.err); got != tc.full {
			t.Errorf("Full(%v) = %v, want %v", tc.err, got, tc.full)
		}
	}
}

func TestRoomNamesTheDiskAndBothFigures(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a 1 MiB tmpfs at %s (the test needs root): %v: %s", dir, err, out)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	target := filepath.Join(dir, "not", "yet")

	if err := disk.Room(target, 512<<10, "the copy", "free space"); err != nil {
		t.Errorf("512 KiB into an empty 1 MiB disk: %v", err)
	}
	err := disk.Room(target, 2<<20, "the copy", "free space on that disk")
	if err == nil || !strings.Contains(err.Error(), "the copy needs 2.0 MiB") || !strings.Contains(err.Error(), "mounted at "+dir) ||
		!strings.Contains(err.Error(), "free of 1.0 MiB") || !strings.Contains(err.Error(), "free space on that disk") {
		t.Errorf("2 MiB into a 1 MiB disk: %v", err)
	}

	full := fmt.Errorf("write: %w", syscall.ENOSPC)
	if got := disk.Explain(full, dir, 10, "the copy", "free space"); !errors.Is(got, syscall.ENOSPC) || !strings.Contains(got.Error(), "mounted at "+dir) {
		t.Errorf("Explain: %v", got)
	}
	if other := errors.New("other"); disk.Explain(other, dir, 10, "the copy", "free space") != other {
		t.Errorf("Explain changed an error that is not a full disk")
	}
}
