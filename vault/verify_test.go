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

	// every problem names the snapshot and the path it affects
	for _, e := range res.Errors {
		if !strings.HasPrefix(e, "snapshot ") || !strings.Contains(e, "files@vigil:") {
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
	data, err := os.ReadFile(pack)
	must(t, err)

	for i := 100; i < len(data); i += 4096 {
		data[i] ^= 0xff
	}

	must(t, os.Chmod(pack, 0o600))
	must(t, os.WriteFile(pack, data, 0o600))

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
