package instance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A folder with a mount in it that vigil did not make is never deleted:
// deleting through the mount would delete what it shows. Remove and
// Sweep fail, naming the mount, and leave both alone.
func TestRemoveLeavesAFolderWithAForeignMount(t *testing.T) {
	parent := t.TempDir()
	i, err := Create(parent, "job-mounted")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	precious := filepath.Join(elsewhere, "precious.txt")
	if err := os.WriteFile(precious, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	at := filepath.Join(i.Dir, "bound")
	if err := os.Mkdir(at, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(elsewhere, at, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("this test needs bind mounts, which this machine refuses: %v (run it as root)", err)
	}
	t.Cleanup(func() { unix.Unmount(at, unix.MNT_DETACH) })

	err = i.Remove(time.Second)
	if err == nil || !strings.Contains(err.Error(), "still has 1 mounts in it") || !strings.Contains(err.Error(), at) {
		t.Errorf("Remove of a folder with a bind mount in it: %v, want a refusal naming %s", err, at)
	}
	if _, err := Sweep(parent, func(string) bool { return false }, time.Second); err == nil || !strings.Contains(err.Error(), at) {
		t.Errorf("Sweep: %v, want a refusal naming %s", err, at)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "keep me" {
		t.Fatalf("what the mount shows was touched: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(i.Root, MarkFile)); err != nil {
		t.Errorf("the instance was removed anyway: %v", err)
	}
	// Once the mount is gone, the folder goes.
	if err := unix.Unmount(at, 0); err != nil {
		t.Fatal(err)
	}
	if err := i.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(i.Root); !os.IsNotExist(err) {
		t.Errorf("the instance is still there: %v", err)
	}
}
