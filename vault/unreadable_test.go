package vault

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// unreadableEnv names the folder the helper process works in; its presence
// makes TestUnreadableHelper run.
const unreadableEnv = "VIGIL_VAULT_UNREADABLE_DIR"

// nobody is the user the helper runs as when the tests run as root, since
// root reads files whatever their mode.
const nobody = 65534

// TestBackupFailsOnUnreadableEntries backs up a tree holding a file and, in a
// second tree, a folder that the backing-up user may not read. Run as root,
// the test re-runs its helper as user nobody, since chmod 000 does not stop
// root; run as anyone else, it runs the helper in-process.
func TestBackupFailsOnUnreadableEntries(t *testing.T) {
	t.Parallel()

	if os.Geteuid() != 0 {
		checkUnreadable(t, t.TempDir())
		return
	}

	// nobody must be able to run the test binary and write the work folder
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Chmod(filepath.Dir(dir), 0o755))

	binary := filepath.Join(dir, "vault.test")
	copyExecutable(t, os.Args[0], binary)

	work := filepath.Join(dir, "work")
	must(t, os.Mkdir(work, 0o755))
	must(t, os.Chown(work, nobody, nobody))

	cmd := exec.Command(binary, "-test.run=^TestUnreadableHelper$", "-test.v")
	cmd.Env = append(os.Environ(), unreadableEnv+"="+work, "HOME="+work)
	cmd.Dir = work
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}

	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "unreadable entries checked") {
		t.Fatalf("helper running as nobody failed: %v\n%s", err, out)
	}
}

func TestUnreadableHelper(t *testing.T) {
	dir := os.Getenv(unreadableEnv)
	if dir == "" {
		t.Skip("runs only as the helper of TestBackupFailsOnUnreadableEntries")
	}

	checkUnreadable(t, dir)
	fmt.Println("unreadable entries checked")
}

func checkUnreadable(t *testing.T, dir string) {
	t.Helper()

	b := setup(t, func(c *Config) {
		c.Storage = filepath.Join(dir, "vault")
		c.CacheDir = filepath.Join(dir, "cache")
	})

	fileTree := filepath.Join(dir, "file-tree")
	makeTree(t, fileTree)
	secret := filepath.Join(fileTree, "a", "b", "locked.db")
	must(t, os.WriteFile(secret, []byte("no peeking"), 0o600))
	must(t, os.Chmod(secret, 0))

	dirTree := filepath.Join(dir, "dir-tree")
	makeTree(t, dirTree)
	locked := filepath.Join(dirTree, "a", "locked")
	must(t, os.Mkdir(locked, 0o700))
	must(t, os.WriteFile(filepath.Join(locked, "inside"), []byte("x"), 0o600))
	must(t, os.Chmod(locked, 0))

	for _, tc := range []struct{ source, path string }{
		{fileTree, secret},
		{dirTree, locked},
	} {
		_, err := b.vault.Backup(t.Context(), tc.source, BackupOptions{Resource: "files"})
		if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("backup of a tree with %s unreadable: got %v, want an error naming it", tc.path, err)
		}
	}

	// an unreadable source folder is refused before anything is written
	unreadableRoot := filepath.Join(dir, "locked-root")
	must(t, os.Mkdir(unreadableRoot, 0))

	if _, err := b.vault.Backup(t.Context(), unreadableRoot, BackupOptions{Resource: "files"}); err == nil || !strings.Contains(err.Error(), unreadableRoot) {
		t.Errorf("backup of an unreadable folder: got %v, want an error naming it", err)
	}

	if n := len(b.snapshots(t)); n != 0 {
		t.Errorf("failed backups left %d snapshots", n)
	}

	if res, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Errorf("verify after failed backups: %v (%+v)", err, res)
	}

	// once readable, the same tree backs up
	must(t, os.Chmod(secret, 0o600))

	if _, err := b.vault.Backup(t.Context(), fileTree, BackupOptions{Resource: "files"}); err != nil {
		t.Errorf("backup once the file is readable: %v", err)
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()

	src, err := os.Open(from)
	must(t, err)
	defer src.Close()

	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	must(t, err)

	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}

	must(t, dst.Close())
}
