package vault

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestVerifyGoodVault(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)

	first := b.backup(t, source, "files")
	b.backup(t, source, "files") // identical: its objects are checked once

	res, err := b.vault.Verify(t.Context(), 100)
	if err != nil {
		t.Fatalf("verify a good vault: %v (%+v)", err, res)
	}

	if res.Snapshots != 2 || res.Files != first.Files || res.Dirs != first.Dirs || len(res.Errors) != 0 {
		t.Errorf("verify result %+v, want 2 snapshots, %d files, %d folders, no errors", res, first.Files, first.Dirs)
	}

	if res.FilesRead != res.Files || res.BytesRead != first.Bytes {
		t.Errorf("read %d files, %d bytes; want all %d files, %d bytes", res.FilesRead, res.BytesRead, res.Files, first.Bytes)
	}

	res, err = b.vault.Verify(t.Context(), 0)
	if err != nil || res.FilesRead != 0 {
		t.Errorf("verify reading nothing: %v, read %d files", err, res.FilesRead)
	}

	if _, err := b.vault.Verify(t.Context(), 101); err == nil {
		t.Error("verify accepted 101 percent")
	}
}

// largestPack returns the biggest data pack in the vault's storage.
func largestPack(t *testing.T, storage string) string {
	t.Helper()

	packs := packBlobs(t, storage)
	if len(packs) == 0 {
		t.Fatalf("no packs in %s", storage)
	}

	return slices.MaxFunc(packs, func(a, b string) int {
		fa, _ := os.Stat(a)
		fb, _ := os.Stat(b)

		return int(fa.Size() - fb.Size())
	})
}

func TestVerifyFindsMissingPack(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	b.backup(t, source, "files")

	must(t, os.Remove(largestPack(t, b.cfg.Storage)))

	// reading no data at all still finds that the blob is gone
	res, err := b.vault.Verify(t.Context(), 0)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify with a missing pack: got %v, want ErrCorrupt", err)
	}

	if len(res.Errors) == 0 || !strings.Contains(strings.Join(res.Errors, "\n"), "missing from storage") {
		t.Fatalf("verify errors %q do not report the missing blob", res.Errors)
	}

	// the pack is reported on its own, and every other problem names the
	// snapshot, its resource and the path it affects
	if len(res.PackProblems) != 1 || !strings.Contains(res.PackProblems[0], "missing from storage") {
		t.Errorf("pack problems %q, want the one missing pack", res.PackProblems)
	}

	for _, e := range res.Errors[len(res.PackProblems):] {
		if !strings.HasPrefix(e, "snapshot ") || !strings.Contains(e, " of files: /") {
			t.Errorf("problem %q does not say where it is", e)
		}
	}

	if !strings.Contains(err.Error(), `"test"`) {
		t.Errorf("error %q does not name the vault", err)
	}
}

func TestVerifyFindsCorruptPack(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	b.backup(t, source, "files")

	// restore once, so that any cache would hold the data: verify must
	// still read the vault itself
	if _, err := b.vault.Restore(t.Context(), b.snapshots(t)[0].ID, filepath.Join(t.TempDir(), "warm"), nil); err != nil {
		t.Fatal(err)
	}

	pack := largestPack(t, b.cfg.Storage)
	flipBytes(t, pack, 100, 4096)

	// existence checks pass: the blob is there
	if _, err := b.vault.Verify(t.Context(), 0); err != nil {
		t.Fatalf("verify without reading data: %v", err)
	}

	res, err := b.vault.Verify(t.Context(), 100)
	if !errors.Is(err, ErrCorrupt) || len(res.Errors) == 0 {
		t.Fatalf("verify reading all data of a corrupt pack: got %v, %+v, want ErrCorrupt", err, res)
	}
}

func TestCancelledBackupLeavesNoSnapshot(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	// 48 MiB of random data: several packs, so the upload is caught midway
	writeRandomTree(t, source, 48, 1<<20)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	done := make(chan error, 1)

	go func() {
		_, err := b.vault.Backup(ctx, source, BackupOptions{Resource: "big"})
		done <- err
	}()

	// cancel once the first pack is in storage
	deadline := time.Now().Add(30 * time.Second)
	for len(packBlobs(t, b.cfg.Storage)) == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}

	cancel()

	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: got %v, want context.Canceled", err)
	}

	if n := len(b.snapshots(t)); n != 0 {
		t.Fatalf("cancelled backup left %d snapshots", n)
	}

	if res, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Fatalf("verify after a cancelled backup: %v (%+v)", err, res)
	}

	// the vault is still usable, and maintenance sweeps what the cancelled
	// backup wrote
	small := t.TempDir()
	makeTree(t, small)
	b.backup(t, small, "small")

	must(t, b.vault.Maintain(t.Context(), true))

	if size := folderSize(t, b.cfg.Storage); size > 24<<20 {
		t.Errorf("vault holds %d bytes after maintenance; the cancelled backup's packs were not swept", size)
	}

	if res, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Fatalf("verify after maintenance: %v (%+v)", err, res)
	}
}

// A pack cut short is damage the index shows: verify finds it without
// reading any file's contents.
func TestVerifyFindsTruncatedPackWithoutReading(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	b.backup(t, source, "files")

	pack := largestPack(t, b.cfg.Storage)
	fi, err := os.Stat(pack)
	must(t, err)
	must(t, os.Chmod(pack, 0o600))
	must(t, os.Truncate(pack, fi.Size()/2))

	res, err := b.vault.Verify(t.Context(), 0)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify with a pack cut to half: got %v, want ErrCorrupt", err)
	}

	if len(res.PackProblems) != 1 || !strings.Contains(res.PackProblems[0], "the index needs") {
		t.Errorf("pack problems %q, want the short pack", res.PackProblems)
	}

	if len(res.Damaged) != 1 || res.FilesRead != 0 {
		t.Errorf("damaged snapshots %v, files read %d; want the one snapshot, found without reading", res.Damaged, res.FilesRead)
	}

	if s := res.Summary(); !strings.Contains(s, "no file contents read back") || !strings.Contains(s, "found") {
		t.Errorf("summary %q does not say that no file was read and damage was found", s)
	}
}

// The summary says what was read and never calls unread data intact.
func TestVerifySummarySaysWhatWasRead(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		res  VerifyResult
		want string
	}{
		{VerifyResult{Contents: 9, Packs: 2, Snapshots: 1, Files: 3043, FilesRead: 322, BytesRead: 1 << 20, ReadDataPercent: 10},
			"index and pack sizes checked (9 contents in 2 packs), folder listings of 1 snapshot read; 10% of file contents (322 of 3043 files, 1.0 MiB) read back: no damage found"},
		{VerifyResult{Contents: 9, Packs: 2, Snapshots: 1, Files: 5},
			"index and pack sizes checked (9 contents in 2 packs), folder listings of 1 snapshot read; no file contents read back (use --read-data-percent to read them): no damage found"},
		{VerifyResult{Contents: 9, Packs: 2, Snapshots: 1, Files: 5, FilesRead: 5, BytesRead: 10, ReadDataPercent: 100, Errors: []string{"x"}},
			"index and pack sizes checked (9 contents in 2 packs), folder listings of 1 snapshot read; all file contents (5 files, 10 B) read back: 1 problem found"},
	} {
		if got := tc.res.Summary(); got != tc.want {
			t.Errorf("summary\n got %q\nwant %q", got, tc.want)
		}
	}
}

// A damaged file that two snapshots share is damage in both: each one's
// recovery point must be told, though the file is read only once.
func TestVerifyTellsEverySnapshotSharingDamage(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	b.backup(t, source, "files")
	b.backup(t, source, "copy-of-files")

	pack := largestPack(t, b.cfg.Storage)
	flipBytes(t, pack, 100, 4096)

	res, err := b.vault.Verify(t.Context(), 100)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify reading all data of a corrupt pack: got %v, want ErrCorrupt", err)
	}

	if len(res.Damaged) != 2 || res.FilesRead != res.Files {
		t.Errorf("damaged snapshots %v, read %d of %d files; want both snapshots, every distinct file read once", res.Damaged, res.FilesRead, res.Files)
	}
}
