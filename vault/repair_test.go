package vault

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// After damage, backing up the unchanged source again must store the
// damaged data anew. Without repair, deduplication reuses the damaged
// contents and the new snapshot is as damaged as the old one.
func TestRepairThenBackupStoresDamagedDataAgain(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	first := b.backup(t, source, "files")

	pack := largestPack(t, b.cfg.Storage)
	fi, err := os.Stat(pack)
	must(t, err)
	must(t, os.Chmod(pack, 0o600))
	must(t, os.Truncate(pack, fi.Size()/2))

	if _, err := b.vault.Verify(t.Context(), 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify of a truncated pack: got %v, want ErrCorrupt", err)
	}

	if !strings.Contains(errorText(t, b), "vigil vault repair test") {
		t.Errorf("verify's advice %q does not name repair", errorText(t, b))
	}

	rep, err := b.vault.Repair(t.Context())
	if err != nil {
		t.Fatalf("repair: %v", err)
	}

	if rep.DamagedContents == 0 || len(rep.Snapshots) != 1 || rep.Snapshots[0].OldID != first.SnapshotID || rep.Snapshots[0].NewID == "" || len(rep.Snapshots[0].Removed) == 0 {
		t.Fatalf("repair result %+v, want damaged contents dropped and the one snapshot rewritten without them", rep)
	}

	// Each path repair names is one the backed-up tree has.
	for _, p := range rep.Snapshots[0].Removed {
		if _, err := os.Lstat(filepath.Join(source, filepath.FromSlash(p))); err != nil {
			t.Errorf("repair says it removed %q, which is not a path of the backed-up tree: %v", p, err)
		}
	}

	// the repaired vault verifies clean: what is left of the snapshot is whole
	res, err := b.vault.Verify(t.Context(), 100)
	if err != nil {
		t.Fatalf("verify after repair: %v (%+v)", err, res.Errors)
	}

	if len(res.Repaired) != 1 || res.Repaired[0] != rep.Snapshots[0].NewID {
		t.Errorf("verify after repair found repaired snapshots %v, want %s", res.Repaired, rep.Snapshots[0].NewID)
	}

	again := b.backup(t, source, "files")

	if res, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Fatalf("verify of the new backup: %v (%+v)", err, res.Errors)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := b.vault.Restore(t.Context(), again.SnapshotID, restored, nil); err != nil {
		t.Fatalf("restore the backup made after repair: %v", err)
	}

	compareTrees(t, source, restored)
}

// errorText is the error of a verify, for its advice.
func errorText(t *testing.T, b *testBundle) string {
	t.Helper()

	_, err := b.vault.Verify(t.Context(), 0)
	if err == nil {
		return ""
	}

	return err.Error()
}
