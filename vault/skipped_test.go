package vault

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBackupCountsSkipped: a named pipe, a socket and device files in the
// folder are left out of the snapshot, as kopia does, and the backup says
// which and why, also when the folder is unchanged since the last backup.
func TestBackupCountsSkipped(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(source, "run", "deep"), 0o755))
	must(t, os.WriteFile(filepath.Join(source, "data.txt"), []byte("data"), 0o644))
	must(t, syscall.Mkfifo(filepath.Join(source, "run", "fifo"), 0o644))
	ln, err := net.Listen("unix", filepath.Join(source, "run", "deep", "app.sock"))
	must(t, err)
	defer ln.Close()
	// the same devices as /dev/null (character) and /dev/loop0 (block)
	must(t, unix.Mknod(filepath.Join(source, "null"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(filepath.Join(source, "loop"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))))

	want := Skipped{
		Total:  4,
		ByKind: map[string]int64{"named pipe": 1, "socket": 1, "character device": 1, "device": 1},
	}

	for _, run := range []string{"first backup", "unchanged folder"} {
		// with progress, kopia walks the tree twice: once to estimate
		res, err := b.vault.Backup(t.Context(), source, BackupOptions{Resource: "files", Progress: func(Progress) {}})
		must(t, err)
		got := res.Skipped
		entries := map[string]string{}
		for _, e := range got.Entries {
			entries[e.Path] = e.Kind
		}
		if got.Total != want.Total || !reflect.DeepEqual(got.ByKind, want.ByKind) ||
			!reflect.DeepEqual(entries, map[string]string{
				"run/fifo": "named pipe", "run/deep/app.sock": "socket", "null": "character device", "loop": "device",
			}) {
			t.Errorf("%s: skipped %+v, want the pipe, the socket and both devices", run, got)
		}
		if res.Files != 1 {
			t.Errorf("%s: %d files backed up, want 1", run, res.Files)
		}
	}
}
