package mount_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/mount"
	"github.com/vigil-backup/vigil/treediff"
	"github.com/vigil-backup/vigil/vault"
)

// mounted backs src up into a new vault and mounts the snapshot as an
// instant copy under a new folder, returned with its folders.
func mounted(t *testing.T, src string) (*mount.Mount, mount.Folders) {
	t.Helper()
	if err := mount.Available(); err != nil {
		t.Fatalf("instant copies need FUSE and overlayfs, which this machine does not give: %v (run the tests as root on a kernel with /dev/fuse and overlay in /proc/filesystems)", err)
	}
	dir := t.TempDir()
	v, err := vault.Open(t.Context(), vault.Config{Name: "test", Storage: filepath.Join(dir, "vault"), Password: "secret", CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	res, err := v.Backup(t.Context(), src, vault.BackupOptions{Resource: "files"})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := v.Tree(t.Context(), res.SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	copyDir := filepath.Join(dir, "copy")
	f := mount.Folders{Lower: filepath.Join(copyDir, "lower"), Upper: filepath.Join(copyDir, "upper"), Work: filepath.Join(copyDir, "work"), Merged: filepath.Join(copyDir, "data")}
	for _, p := range []string{f.Lower, f.Upper, f.Work, f.Merged} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	m, err := mount.Instant(t.Context(), tree, f, mount.Options{Hold: v.Hold, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		if _, err := mount.UnmountUnder(copyDir); err != nil {
			t.Error(err)
		}
	})
	return m, f
}

func writeTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "site", "deep"), 0o750))
	must(os.WriteFile(filepath.Join(src, "site", "index.html"), []byte("hello from the vault\n"), 0o640))
	must(os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	must(os.WriteFile(filepath.Join(src, "site", "deep", "big.bin"), big, 0o600))
	must(os.Symlink("site/index.html", filepath.Join(src, "link")))
	when := time.Date(2021, 3, 4, 5, 6, 7, 891011121, time.UTC)
	must(os.Chtimes(filepath.Join(src, "site", "index.html"), when, when))
	return src
}

// The mounted copy shows the recovery point as it was backed up: names,
// modes, sizes, times, symlinks and contents (treediff compares all).
func TestMountShowsTheRecoveryPoint(t *testing.T) {
	src := writeTree(t)
	_, f := mounted(t, src)
	for _, dir := range []string{f.Lower, f.Merged} {
		diffs, err := treediff.Compare(src, dir, treediff.Options{ModTimes: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(diffs) > 0 {
			t.Errorf("%s differs from the source:\n%s", dir, strings.Join(diffs, "\n"))
		}
	}
}

// A missing name is ENOENT, which Go programs take for "does not exist";
// a write to the snapshot's mount is EROFS; one to the overlay lands in
// the upper folder.
func TestMountErrorsAndWrites(t *testing.T) {
	src := writeTree(t)
	_, f := mounted(t, src)
	if _, err := os.Stat(filepath.Join(f.Merged, "site", "missing.html")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat of a missing name: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(f.Lower, "nope")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat of a missing name in the FUSE mount: %v, want ENOENT", err)
	}
	if err := os.WriteFile(filepath.Join(f.Lower, "site", "index.html"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write into the FUSE mount: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(f.Merged, "site", "new.txt"), []byte("written by the app"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(f.Upper, "site", "new.txt")); err != nil || string(b) != "written by the app" {
		t.Errorf("the app's write is not in the upper folder: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(f.Lower, "site", "new.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the app's write shows in the recovery point: %v", err)
	}
}

// A program whose reads are interrupted by signals (Go's runtime sends
// itself many) sees them retried or EINTR, never EIO: the child below
// reads every file of the mount while this test signals it all the time.
func TestMountReadsSurviveInterrupts(t *testing.T) {
	if dir := os.Getenv("VIGIL_MOUNT_TEST_READ"); dir != "" {
		readAllAndExit(dir)
	}
	src := t.TempDir()
	for i := range 200 {
		b := make([]byte, 64<<10)
		for j := range b {
			b[j] = byte(i + j*3)
		}
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%03d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, f := mounted(t, src)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMountReadsSurviveInterrupts$")
	cmd.Env = append(os.Environ(), "VIGIL_MOUNT_TEST_READ="+f.Merged)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("the reader did not start: %q", lines.Text())
	}
	done := make(chan string, 1)
	go func() {
		var out []string
		for lines.Scan() {
			out = append(out, lines.Text())
		}
		done <- strings.Join(out, "\n")
	}()
	signals := 0
	for {
		select {
		case out := <-done:
			if err := cmd.Wait(); err != nil || out != "read 200 files" {
				t.Fatalf("the reader failed after %d signals: %v\n%s", signals, err, out)
			}
			t.Logf("%d signals sent while it read", signals)
			return
		default:
			cmd.Process.Signal(syscall.SIGUSR1)
			signals++
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// readAllAndExit is the child of TestMountReadsSurviveInterrupts.
func readAllAndExit(dir string) {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR1)
	fmt.Println("ready")
	entries, err := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if err != nil {
			break
		}
		var b []byte
		b, err = os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && len(b) != 64<<10 {
			err = fmt.Errorf("%s: %d bytes", e.Name(), len(b))
		}
		n++
	}
	if err != nil {
		fmt.Println("read failed:", err)
		os.Exit(1)
	}
	fmt.Printf("read %d files\n", n)
	os.Exit(0)
}

// Close takes both mounts down; UnmountUnder finds none left.
func TestMountCloseLeavesNoMount(t *testing.T) {
	src := writeTree(t)
	m, f := mounted(t, src)
	dir := filepath.Dir(f.Merged)
	if ms, _ := mount.Under(dir); len(ms) != 2 {
		t.Fatalf("mounts under %s: %v, want the FUSE mount and the overlay", dir, ms)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if ms, _ := mount.Under(dir); len(ms) != 0 {
		t.Errorf("mounts left after Close: %v", ms)
	}
}
