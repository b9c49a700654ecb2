package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// TestBackupStartVaultDefaults: with one vault, `vigil backup start` needs
// no --vault, and the recovery point takes the vault's expire_days when
// the command gives no expiry.
func TestBackupStartVaultDefaults(t *testing.T) {
	e := newEnv(t, envOptions{})
	setConfig(t, e, "password_env: VIGIL_VAULT_PASSWORD\n", "password_env: VIGIL_VAULT_PASSWORD\n    expire_days: 3\n")
	makeTree(t, e.path("docs"))
	e.serve()

	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--wait")
	if job.Status != vigil.BackupCompleted || job.Vault != "lab-vault" {
		t.Fatalf("backup job = %+v, want COMPLETED into lab-vault", job)
	}
	var rp vigil.RecoveryPoint
	e.mustJSON(&rp, "recovery-points", "show", job.RecoveryPointID)
	if rp.ExpireAt == nil || rp.ExpireAt.Sub(rp.CreatedAt).Round(time.Minute) != 72*time.Hour {
		t.Fatalf("recovery point expires %v, created %v: want 3 days later (the vault's expire_days)", rp.ExpireAt, rp.CreatedAt)
	}
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--expire-after", "2h", "--wait")
	e.mustJSON(&rp, "recovery-points", "show", job.RecoveryPointID)
	if rp.ExpireAt == nil || rp.ExpireAt.Sub(rp.CreatedAt).Round(time.Minute) != 2*time.Hour {
		t.Fatalf("recovery point expires %v, created %v: want the command's 2h", rp.ExpireAt, rp.CreatedAt)
	}
}

// setConfig replaces old with new in the environment's config file.
func setConfig(t *testing.T, e *testEnv, old, new string) {
	t.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("config has no %q:\n%s", old, b)
	}
	if err := os.WriteFile(e.config, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}
