package vault

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestCopyUploadsOnlyMissingData copies snapshots between two folder
// vaults: the copy restores to the same tree (modes, times, links), a
// second copy of an unchanged tree reads and stores almost nothing, and
// one changed file is all the next copy reads.
func TestCopyUploadsOnlyMissingData(t *testing.T) {
	t.Parallel()

	src := setup(t)
	dst := setup(t, func(c *Config) { c.Name = "offsite" })
	source := filepath.Join(t.TempDir(), "src")
	makeTree(t, source)
	writeRandomTree(t, filepath.Join(source, "bulk"), 16, 256<<10)

	first := src.backup(t, source, "files")
	empty := folderSize(t, dst.cfg.Storage)

	var (
		progressCalls int
		last          Progress
	)

	c1, err := dst.vault.CopyFrom(t.Context(), src.vault, first.SnapshotID, CopyOptions{
		Tags:     map[string]string{"vigil:recovery-point": "rp-copy-1"},
		Progress: func(p Progress) { progressCalls++; last = p },
	})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}

	firstGrowth := folderSize(t, dst.cfg.Storage) - empty
	if c1.Bytes != first.Bytes || c1.Files != first.Files || c1.HashedBytes < first.Bytes {
		t.Errorf("first copy %+v of backup %+v: want the same bytes and files, all of them read", c1, first)
	}

	// symbolic links count as files, and their targets as bytes
	if progressCalls == 0 || last.TotalBytes != first.Bytes || last.TotalFiles != first.Files || last.Bytes < first.Bytes || last.Files < first.Files {
		t.Errorf("progress was reported %d times, last %+v; want totals of the backup's %d bytes in %d files, all done", progressCalls, last, first.Bytes, first.Files)
	}

	// The copy is a snapshot of its own in the destination, whole.
	target := filepath.Join(t.TempDir(), "restored")
	if _, err := dst.vault.Restore(t.Context(), c1.SnapshotID, target, nil); err != nil {
		t.Fatalf("restore the copy: %v", err)
	}

	compareTrees(t, source, target)

	snaps := dst.snapshots(t)
	if len(snaps) != 1 || snaps[0].Source != source || snaps[0].Resource != "files" || snaps[0].Tags["vigil:recovery-point"] != "rp-copy-1" {
		t.Fatalf("destination snapshots %+v: want the copy, of source %s, tagged", snaps, source)
	}

	srcSnaps := src.snapshots(t)
	if !snaps[0].StartTime.Equal(srcSnaps[0].StartTime) {
		t.Errorf("the copy starts at %v, the source at %v: a copy keeps the time of its data", snaps[0].StartTime, srcSnaps[0].StartTime)
	}

	if ids, err := dst.vault.SnapshotsTagged(t.Context(), "vigil:recovery-point", "rp-copy-1"); err != nil || len(ids) != 1 || ids[0] != c1.SnapshotID {
		t.Errorf("SnapshotsTagged = %v, %v; want [%s]", ids, err, c1.SnapshotID)
	}

	if ids, err := dst.vault.SnapshotsTagged(t.Context(), "vigil:recovery-point", "rp-other"); err != nil || len(ids) != 0 {
		t.Errorf("SnapshotsTagged of an unknown tag = %v, %v; want none", ids, err)
	}

	// An unchanged tree, backed up again and copied again, adds almost
	// nothing: no file is read, and only the new manifest is stored.
	second := src.backup(t, source, "files")
	before := folderSize(t, dst.cfg.Storage)

	c2, err := dst.vault.CopyFrom(t.Context(), src.vault, second.SnapshotID, CopyOptions{Tags: map[string]string{"vigil:recovery-point": "rp-copy-2"}})
	if err != nil {
		t.Fatalf("second copy: %v", err)
	}

	secondGrowth := folderSize(t, dst.cfg.Storage) - before
	if c2.HashedBytes != 0 {
		t.Errorf("the copy of an unchanged tree read %d bytes, want 0", c2.HashedBytes)
	}

	if secondGrowth > 16<<10 {
		t.Errorf("the copy of an unchanged tree grew the vault by %d bytes, want a few KB", secondGrowth)
	}

	// One changed file is all the next copy reads and stores.
	changed := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c}, 100<<10) // 300 KiB that compresses
	must(t, os.WriteFile(filepath.Join(source, "bulk", "new.bin"), changed, 0o644))

	third := src.backup(t, source, "files")
	before = folderSize(t, dst.cfg.Storage)

	c3, err := dst.vault.CopyFrom(t.Context(), src.vault, third.SnapshotID, CopyOptions{})
	if err != nil {
		t.Fatalf("third copy: %v", err)
	}

	thirdGrowth := folderSize(t, dst.cfg.Storage) - before
	if c3.HashedBytes != int64(len(changed)) {
		t.Errorf("the copy after one new file read %d bytes, want %d", c3.HashedBytes, len(changed))
	}

	t.Logf("tree of %d bytes in %d files: first copy stored %d bytes; copy of the unchanged tree read %d bytes and stored %d; copy after a new %d-byte file read %d and stored %d",
		first.Bytes, first.Files, firstGrowth, c2.HashedBytes, secondGrowth, len(changed), c3.HashedBytes, thirdGrowth)

	if _, err := dst.vault.CopyFrom(t.Context(), dst.vault, c1.SnapshotID, CopyOptions{}); err == nil {
		t.Error("a copy of a vault into itself was accepted")
	}

	if _, err := dst.vault.CopyFrom(t.Context(), src.vault, "kdoesnotexist", CopyOptions{}); err == nil {
		t.Error("a copy of a snapshot that does not exist was accepted")
	}
}

// TestCopyStreamSnapshot copies a database dump's snapshot: the copy's
// file reads back the same, with the dump's private modes.
func TestCopyStreamSnapshot(t *testing.T) {
	t.Parallel()

	src := setup(t)
	dst := setup(t, func(c *Config) { c.Name = "offsite" })
	dump := bytes.Repeat([]byte("COPY orders FROM stdin;\n1\t2\t3\n"), 20000)

	res, err := src.vault.BackupStream(t.Context(), "dump.pgdump", bytes.NewReader(dump), BackupOptions{Resource: "orders"})
	if err != nil {
		t.Fatalf("back up the dump: %v", err)
	}

	c, err := dst.vault.CopyFrom(t.Context(), src.vault, res.SnapshotID, CopyOptions{})
	if err != nil {
		t.Fatalf("copy the dump: %v", err)
	}

	rc, size, err := dst.vault.OpenFile(t.Context(), c.SnapshotID, "dump.pgdump")
	if err != nil {
		t.Fatalf("open the copied dump: %v", err)
	}

	got, err := io.ReadAll(rc)
	rc.Close()

	if err != nil || size != int64(len(dump)) || !bytes.Equal(got, dump) {
		t.Fatalf("the copied dump reads %d bytes (size %d, err %v), want the %d bytes backed up", len(got), size, err, len(dump))
	}

	target := filepath.Join(t.TempDir(), "restored")
	if _, err := dst.vault.Restore(t.Context(), c.SnapshotID, target, nil); err != nil {
		t.Fatalf("restore the copied dump: %v", err)
	}

	fi, err := os.Stat(filepath.Join(target, "dump.pgdump"))
	if err != nil || fi.Mode().Perm() != streamFileMode {
		t.Errorf("restored copied dump: %v, mode %v; want mode %v", err, fi.Mode(), streamFileMode)
	}
}
