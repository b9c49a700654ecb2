package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/snapshot/policy"
)

// writeRandomTree writes files of random, incompressible data, so that the
// space they take in a vault is known.
func writeRandomTree(t *testing.T, dir string, files, size int) {
	t.Helper()

	must(t, os.MkdirAll(dir, 0o755))

	for i := range files {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		must(t, os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), b, 0o644))
	}
}

func TestDeleteSnapshotAndMaintainReclaimsSpace(t *testing.T) {
	t.Parallel()

	b := setup(t) // SoleWriter: maintenance may reclaim at once
	base := t.TempDir()

	writeRandomTree(t, filepath.Join(base, "old"), 8, 1<<20)
	writeRandomTree(t, filepath.Join(base, "kept"), 2, 1<<20)

	old := b.backup(t, filepath.Join(base, "old"), "old")
	kept := b.backup(t, filepath.Join(base, "kept"), "kept")

	full := folderSize(t, b.cfg.Storage)

	must(t, b.vault.DeleteSnapshot(t.Context(), old.SnapshotID))
	must(t, b.vault.DeleteSnapshot(t.Context(), old.SnapshotID)) // idempotent
	must(t, b.vault.DeleteSnapshot(t.Context(), "0123456789abcdef0123456789abcdef"))

	list := b.snapshots(t)
	if len(list) != 1 || list[0].ID != kept.SnapshotID {
		t.Fatalf("after delete: %+v, want only %s", list, kept.SnapshotID)
	}

	if grew := folderSize(t, b.cfg.Storage) - full; grew > 64<<10 {
		t.Errorf("deleting a snapshot grew the vault by %d bytes", grew)
	}

	must(t, b.vault.Maintain(t.Context(), false))
	must(t, b.vault.Maintain(t.Context(), true))

	after := folderSize(t, b.cfg.Storage)
	if reclaimed := full - after; reclaimed < 7<<20 {
		t.Errorf("full maintenance reclaimed %d bytes of the deleted snapshot's 8 MiB (vault %d -> %d bytes)", reclaimed, full, after)
	}

	target := filepath.Join(t.TempDir(), "target")
	if _, err := b.vault.Restore(t.Context(), kept.SnapshotID, target, nil); err != nil {
		t.Fatalf("restore the kept snapshot after maintenance: %v", err)
	}

	compareTrees(t, filepath.Join(base, "kept"), target)

	if res, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Fatalf("verify after maintenance: %v (%+v)", err, res)
	}
}

func TestMaintainWithFullSafetyKeepsRecentData(t *testing.T) {
	t.Parallel()

	b := setup(t, func(c *Config) { c.SoleWriter = false })
	source := t.TempDir()
	writeRandomTree(t, source, 4, 1<<20)

	res := b.backup(t, source, "files")
	must(t, b.vault.DeleteSnapshot(t.Context(), res.SnapshotID))

	before := folderSize(t, b.cfg.Storage)

	must(t, b.vault.Maintain(t.Context(), true))

	// kopia's full safety leaves day-old data alone: another client's
	// backup might still be about to reference it
	if after := folderSize(t, b.cfg.Storage); after < before-(1<<20) {
		t.Errorf("full-safety maintenance deleted fresh data: %d -> %d bytes", before, after)
	}
}

func TestMaintainWaitsForRunningBackups(t *testing.T) {
	t.Parallel()

	b := setup(t)

	release, err := b.vault.shared(t.Context())
	must(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()

	if err := b.vault.Maintain(ctx, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("maintenance during a backup: got %v, want it to wait until the deadline", err)
	}

	release()
	must(t, b.vault.Maintain(t.Context(), true))
}

func TestDeleteSnapshotRefusesOtherManifests(t *testing.T) {
	t.Parallel()

	b := setup(t)

	policies, err := b.vault.rep.FindManifests(t.Context(), map[string]string{"type": "policy"})
	must(t, err)

	if len(policies) == 0 {
		t.Fatal("no global policy")
	}

	err = b.vault.DeleteSnapshot(t.Context(), string(policies[0].ID))
	if err == nil || !strings.Contains(err.Error(), "not a snapshot") {
		t.Fatalf("delete of a policy manifest: got %v, want a refusal", err)
	}

	if _, err := policy.GetDefinedPolicy(t.Context(), b.vault.rep, policy.GlobalPolicySourceInfo); err != nil {
		t.Fatalf("global policy gone: %v", err)
	}
}
