package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
)

// TestRestoreTestKinds: a restore test is queued under its own kind,
// vigil.restore-test, and one queued under vigil.restore by an earlier
// version (before tests had a kind of their own) still runs as a test.
func TestRestoreTestKinds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "docs")
	os.MkdirAll(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte("<h1>docs</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		DataDir: filepath.Join(dir, "data"), Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)},
		Vaults: []config.Vault{{Name: "v", Storage: filepath.Join(dir, "vault"), Password: "secret"}},
		Resources: []config.Resource{{Name: "docs", Type: "directory", Path: src,
			Validate: []config.Validator{{Checksum: &config.ChecksumCheck{SamplePercent: 100}}}}},
		RestoreTesting: []config.RestoreTestPlan{{Name: "every-backup", OnBackupCompleted: true, Resources: []string{"docs"},
			RecoveryPoint: config.LatestWithinWindow, SelectionWindowDays: 7, ValidationWindow: config.Duration(time.Minute)}},
	}
	e, cat := newTestEngine(t, cfg)
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx)
	if _, err := e.StartBackup(ctx, vigil.BackupRequest{Resource: "docs", Vault: "v"}); err != nil {
		t.Fatal(err)
	}
	planned := waitForTest(t, cat, func(j vigil.RestoreJob) bool { return j.Plan == "every-backup" })
	var kind string
	if err := cat.SQLDB().QueryRowContext(ctx, `SELECT kind FROM river_job WHERE args ->> '$.job_id' = ?`, planned.ID).Scan(&kind); err != nil {
		t.Fatal(err)
	}
	if kind != "vigil.restore-test" {
		t.Errorf("a restore test was queued as %q", kind)
	}

	// As an earlier version queued it: the record, and a vigil.restore job.
	rp, err := cat.GetRecoveryPoint(ctx, planned.RecoveryPointID)
	if err != nil {
		t.Fatal(err)
	}
	old := vigil.NewRestoreJob(rp, "every-backup")
	old.RestoreTest, old.Plan = true, "every-backup"
	inst := filepath.Join(cfg.DataDir, "restore-tests", old.ID, "data")
	old.Metadata = map[string]string{resource.MetaTargetPath: inst}
	err = cat.InTx(ctx, func(tx *catalog.Tx) error {
		if err := tx.InsertRestoreJob(ctx, &old); err != nil {
			return err
		}
		return e.insertTx(ctx, tx, RestoreArgs{JobID: old.ID}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := waitForTest(t, cat, func(j vigil.RestoreJob) bool { return j.ID == old.ID })
	if got.ValidationStatus != vigil.ValidationSuccessful || got.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("a test queued under vigil.restore: %s %q; deletion %s %q", got.ValidationStatus, got.ValidationMessage, got.DeletionStatus, got.DeletionMessage)
	}
}

// waitForTest waits for a restore test that match accepts to end.
func waitForTest(t *testing.T, cat *catalog.Catalog, match func(vigil.RestoreJob) bool) vigil.RestoreJob {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		jobs, err := cat.ListRestoreJobs(context.Background(), catalog.RestoreJobFilter{RestoreTest: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if match(j) && j.Ended() {
				return j
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the restore test did not end within 30s")
	return vigil.RestoreJob{}
}
