package backup_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/backup"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource/directory"
	"github.com/vigil-backup/vigil/resource/resourcetest"
)

// TestOnDemandBackupTakesVaultDefaults: an on-demand backup without a
// vault goes into the only vault, with that vault's default expiry when
// the request gives none; a plan's backup (not on demand) keeps its own
// (none here: forever); with two vaults, a backup without one is refused
// naming both.
func TestOnDemandBackupTakesVaultDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{
		DataDir:   filepath.Join(dir, "data"),
		Vaults:    []config.Vault{{Name: resourcetest.VaultName, ExpireDays: 7}},
		Resources: []config.Resource{{Name: "docs", Type: "directory", Path: dir}},
	}
	lab := resourcetest.NewLab(t, cfg, directory.Type{})
	j := &journal{Lab: lab}
	r, err := backup.New(backup.Options{Config: cfg, Catalog: lab.Catalog, Journal: j, Vaults: j, Resources: j, Tests: lab.Tester})
	if err != nil {
		t.Fatal(err)
	}

	job, err := r.Start(t.Context(), vigil.BackupRequest{Resource: "docs", OnDemand: true})
	if err != nil {
		t.Fatalf("an on-demand backup without a vault, with one vault configured: %v", err)
	}
	if job.Vault != resourcetest.VaultName {
		t.Errorf("vault = %q, want the only one, %q", job.Vault, resourcetest.VaultName)
	}
	if job.ExpireAt == nil || job.ExpireAt.Sub(job.CreatedAt) != 7*24*time.Hour {
		t.Errorf("expire_at = %v for a job created at %v, want 7 days later (the vault's expire_days)", job.ExpireAt, job.CreatedAt)
	}

	job, err = r.Start(t.Context(), vigil.BackupRequest{Resource: "docs", OnDemand: true, Expiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if job.ExpireAt == nil || job.ExpireAt.Sub(job.CreatedAt) != time.Hour {
		t.Errorf("expire_at = %v for a job created at %v, want the request's 1h", job.ExpireAt, job.CreatedAt)
	}

	job, err = r.Start(t.Context(), vigil.BackupRequest{Resource: "docs", Vault: resourcetest.VaultName, CreatedBy: "nightly"})
	if err != nil {
		t.Fatal(err)
	}
	if job.ExpireAt != nil {
		t.Errorf("a plan's backup without expiry got expire_at %v from the vault; plans keep their own", job.ExpireAt)
	}

	cfg.Vaults = append(cfg.Vaults, config.Vault{Name: "offsite"})
	_, err = r.Start(t.Context(), vigil.BackupRequest{Resource: "docs", OnDemand: true})
	if err == nil || !strings.Contains(err.Error(), resourcetest.VaultName+", offsite") || !strings.Contains(err.Error(), "--vault") {
		t.Errorf("a backup without a vault among two vaults: err = %v, want one naming both vaults and --vault", err)
	}
}
