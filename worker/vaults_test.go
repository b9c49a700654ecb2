package worker

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
)

// A DAMAGED recovery point still expires when its expire_at passes: what
// is left of it leaves the vault, like any other point's data.
func TestDamagedRecoveryPointExpires(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir, Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)},
		Vaults: []config.Vault{{Name: "v", Storage: filepath.Join(dir, "vault"), Password: "correct horse"}}}
	e, cat := newTestEngine(t, cfg)

	past := time.Now().UTC().Add(-time.Minute)
	rp := vigil.RecoveryPoint{ID: vigil.NewID(vigil.PrefixRecoveryPoint), Vault: "v", Resource: "docs", ResourceType: "directory",
		Status: vigil.RecoveryPointDamaged, StatusMessage: "its snapshot is missing", BackupJobID: "bj-1", SnapshotID: "0123456789abcdef0123456789abcdef",
		CompletedAt: &past, ExpireAt: &past}
	if err := cat.InsertRecoveryPoint(ctx, &rp); err != nil {
		t.Fatal(err)
	}

	if err := e.expireAll(ctx, ExpireArgs{}); err != nil {
		t.Fatal(err)
	}

	got, err := cat.GetRecoveryPoint(ctx, rp.ID)
	if err != nil || got.Status != vigil.RecoveryPointExpired {
		t.Errorf("a DAMAGED point past its expiry is %s (%v), want EXPIRED", got.Status, err)
	}
}
