package vault

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/testsvc"
)

// TestPacksReadBy: the packs a snapshot's restore reads whole are those
// its own backup wrote data into, and not another snapshot's; a pack also
// holding what no snapshot's tree uses (the manifests) is never one.
func TestPacksReadBy(t *testing.T) {
	t.Parallel()

	b := setup(t)
	ctx := t.Context()

	a := filepath.Join(t.TempDir(), "a")
	makeTree(t, a)
	snapA := b.backup(t, a, "a")
	packsA := testsvc.DataPacks(t, b.cfg.Storage)

	other := filepath.Join(t.TempDir(), "b")
	must(t, os.MkdirAll(other, 0o755))
	must(t, os.WriteFile(filepath.Join(other, "new.txt"), []byte(strings.Repeat("only in b\n", 1000)), 0o644))
	snapB := b.backup(t, other, "b")

	var packsB []string
	for _, p := range testsvc.DataPacks(t, b.cfg.Storage) {
		if !slices.Contains(packsA, p) {
			packsB = append(packsB, p)
		}
	}

	if len(packsA) == 0 || len(packsB) == 0 {
		t.Fatalf("data packs: %v of the first backup, %v of the second", packsA, packsB)
	}

	readA, err := b.vault.PacksReadBy(ctx, snapA.SnapshotID)
	must(t, err)
	readB, err := b.vault.PacksReadBy(ctx, snapB.SnapshotID)
	must(t, err)

	for _, p := range packsA {
		if !hasPack(readA, p) || hasPack(readB, p) {
			t.Errorf("pack %s of the first backup: read by its restore %v, by the second's %v", p, hasPack(readA, p), hasPack(readB, p))
		}
	}

	for _, p := range packsB {
		if !hasPack(readB, p) || hasPack(readA, p) {
			t.Errorf("pack %s of the second backup: read by its restore %v, by the first's %v", p, hasPack(readB, p), hasPack(readA, p))
		}
	}

	for _, p := range append(readA, readB...) {
		if !strings.HasPrefix(p.ID, "p") {
			t.Errorf("metadata pack %s counted as read whole by a restore: it holds the snapshots' manifests too", p.ID)
		}
	}
}

func hasPack(packs []Pack, id string) bool {
	return slices.ContainsFunc(packs, func(p Pack) bool { return p.ID == id })
}
