package vault

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestBackupRestoreRoundTrip(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := filepath.Join(t.TempDir(), "src")
	makeTree(t, source)

	// a FIFO is a special file: kopia skips those, and must not block on it
	must(t, syscall.Mkfifo(filepath.Join(source, "a", "fifo"), 0o644))

	var progressCalls int

	res, err := b.vault.Backup(t.Context(), source, BackupOptions{
		Resource:    "files",
		Tags:        map[string]string{"vigil:recovery-point": "rp-1"},
		Description: "round trip",
		Progress:    func(Progress) { progressCalls++ },
	})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}

	if res.SnapshotID == "" || res.Files != 13 || res.Dirs != 7 {
		t.Errorf("backup result %+v, want an id, 13 files and 7 folders", res)
	}

	if progressCalls == 0 {
		t.Error("progress was never reported")
	}

	target := filepath.Join(t.TempDir(), "restored")

	rres, err := b.vault.Restore(t.Context(), res.SnapshotID, target, nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}

	if rres.Files != 13 || rres.Symlinks != 4 || rres.Dirs != 7 || rres.Bytes != res.Bytes {
		t.Errorf("restore result %+v, want 13 files, 4 links, 7 folders, %d bytes", rres, res.Bytes)
	}

	compareTrees(t, source, target)

	snaps := b.snapshots(t)
	if len(snaps) != 1 {
		t.Fatalf("got %d snapshots, want 1", len(snaps))
	}

	s := snaps[0]
	if s.ID != res.SnapshotID || s.Resource != "files" || s.Source != source || s.Tags["vigil:recovery-point"] != "rp-1" || s.Files != 13 || s.Bytes != res.Bytes {
		t.Errorf("snapshot %+v does not describe the backup %+v", s, res)
	}

	if s.StartTime.IsZero() || s.EndTime.Before(s.StartTime) {
		t.Errorf("snapshot times %v..%v", s.StartTime, s.EndTime)
	}
}

func TestUnchangedBackupReusesData(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := filepath.Join(t.TempDir(), "src")
	makeTree(t, source)

	first := b.backup(t, source, "files")
	// symbolic links' targets are hashed too, but are not file bytes
	if first.HashedBytes < first.Bytes {
		t.Errorf("first backup hashed %d bytes, want all %d", first.HashedBytes, first.Bytes)
	}

	before := folderSize(t, b.cfg.Storage)

	second := b.backup(t, source, "files")
	if second.SnapshotID == first.SnapshotID {
		t.Error("second backup returned the first snapshot's id")
	}

	if second.HashedBytes != 0 {
		t.Errorf("unchanged backup hashed %d bytes, want 0", second.HashedBytes)
	}

	if grew := folderSize(t, b.cfg.Storage) - before; grew > 16<<10 {
		t.Errorf("unchanged backup grew the vault by %d bytes, want a few KB", grew)
	}

	// one changed file is all a third backup reads
	must(t, os.WriteFile(filepath.Join(source, "hello.txt"), []byte("changed\n"), 0o644))

	third := b.backup(t, source, "files")
	if third.HashedBytes != int64(len("changed\n")) {
		t.Errorf("backup after one change hashed %d bytes, want %d", third.HashedBytes, len("changed\n"))
	}

	// The same resource at another path still starts from its last snapshot,
	// as when a database dump lands in a fresh folder each time.
	moved := filepath.Join(t.TempDir(), "moved")
	must(t, os.Rename(source, moved))

	fourth := b.backup(t, moved, "files")
	if fourth.HashedBytes != 0 {
		t.Errorf("backup of the moved folder hashed %d bytes, want 0", fourth.HashedBytes)
	}

	list := b.snapshots(t)
	if len(list) != 4 {
		t.Fatalf("got %d snapshots, want 4", len(list))
	}

	for i, want := range []string{first.SnapshotID, second.SnapshotID, third.SnapshotID, fourth.SnapshotID} {
		if list[i].ID != want {
			t.Errorf("snapshot %d is %s, want %s: the list is not oldest first", i, list[i].ID, want)
		}
	}
}

func TestConcurrentBackupsOfDifferentResources(t *testing.T) {
	t.Parallel()

	b := setup(t)
	base := t.TempDir()

	var wg sync.WaitGroup

	results := make([]BackupResult, 4)
	errs := make([]error, 4)

	for i := range results {
		source := filepath.Join(base, string(rune('a'+i)))
		makeTree(t, source)

		wg.Go(func() {
			results[i], errs[i] = b.vault.Backup(t.Context(), source, BackupOptions{Resource: "r" + string(rune('a'+i))})
		})
	}

	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
	}

	if n := len(b.snapshots(t)); n != 4 {
		t.Fatalf("got %d snapshots, want 4", n)
	}

	target := filepath.Join(t.TempDir(), "restored")
	if _, err := b.vault.Restore(t.Context(), results[2].SnapshotID, target, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}

	compareTrees(t, filepath.Join(base, "c"), target)
}

func TestBackupRefusesMissingSource(t *testing.T) {
	t.Parallel()

	b := setup(t)
	missing := filepath.Join(t.TempDir(), "no-such-folder")

	_, err := b.vault.Backup(t.Context(), missing, BackupOptions{Resource: "files"})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("backup of a missing folder: got %v, want an error naming %s", err, missing)
	}

	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, []byte("x"), 0o644))

	_, err = b.vault.Backup(t.Context(), file, BackupOptions{Resource: "files"})
	if err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Fatalf("backup of a file: got %v, want an error saying it is not a folder", err)
	}

	for _, name := range []string{"", "a@b", "a:b", "a/b"} {
		if _, err := b.vault.Backup(t.Context(), t.TempDir(), BackupOptions{Resource: name}); err == nil {
			t.Errorf("backup with resource name %q succeeded", name)
		}
	}

	if n := len(b.snapshots(t)); n != 0 {
		t.Errorf("got %d snapshots after failed backups, want 0", n)
	}
}
