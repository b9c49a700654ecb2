package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/backup"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/vault"
)

// TestCopyJobIsIdempotent runs copy jobs as a rescued or retried River
// job would: a run that finds the copy already saved by a run that died
// lists it rather than copying again, a retry of a completed job does
// nothing, runs that raced leave one snapshot, and none of them ever
// lists a second recovery point.
func TestCopyJobIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "docs")
	os.MkdirAll(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte("<h1>docs</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		DataDir: filepath.Join(dir, "data"), Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)},
		Vaults: []config.Vault{{Name: "v", Storage: filepath.Join(dir, "vault"), Password: "secret"},
			{Name: "offsite", Storage: filepath.Join(dir, "offsite"), Password: "other secret"}},
		Resources: []config.Resource{{Name: "docs", Type: "directory", Path: src}},
	}
	e, cat := newTestEngine(t, cfg)
	defer e.closeVaults(ctx)

	bj, err := e.StartBackup(ctx, vigil.BackupRequest{Resource: "docs", Vault: "v"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.backups.Run(ctx, bj.ID); err != nil {
		t.Fatal(err)
	}
	if bj, err = cat.GetBackupJob(ctx, bj.ID); err != nil || bj.Status != vigil.BackupCompleted {
		t.Fatalf("backup %+v, %v", bj, err)
	}
	source, err := cat.GetRecoveryPoint(ctx, bj.RecoveryPointID)
	if err != nil {
		t.Fatal(err)
	}
	from, err := e.Vault(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	to, err := e.Vault(ctx, "offsite")
	if err != nil {
		t.Fatal(err)
	}

	// died saves the copy as a run of job would have before vigil died,
	// and leaves the job RUNNING.
	died := func(job vigil.CopyJob) string {
		t.Helper()
		job.Status, job.StartedAt = vigil.BackupRunning, new(time.Now().UTC())
		if err := cat.UpdateCopyJob(ctx, &job); err != nil {
			t.Fatal(err)
		}
		res, err := to.CopyFrom(ctx, from, source.SnapshotID, vault.CopyOptions{Tags: map[string]string{backup.TagRecoveryPoint: job.RecoveryPointID}})
		if err != nil {
			t.Fatal(err)
		}
		return res.SnapshotID
	}
	tagged := func(job vigil.CopyJob) []string {
		t.Helper()
		ids, err := to.SnapshotsTagged(ctx, backup.TagRecoveryPoint, job.RecoveryPointID)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	copies := func() []vigil.RecoveryPoint {
		t.Helper()
		rps, err := cat.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{Vault: "offsite"})
		if err != nil {
			t.Fatal(err)
		}
		return rps
	}

	// The copy was saved, then vigil died before it was listed.
	job, err := e.StartCopy(ctx, vigil.CopyRequest{RecoveryPointID: source.ID, Vault: "offsite", Expiry: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	saved := died(job)
	for attempt := 2; attempt <= 3; attempt++ { // the rescued run, then a retry of it
		if err := e.backups.RunCopy(ctx, job.ID, attempt); err != nil {
			t.Fatal(err)
		}
	}
	if job, err = cat.GetCopyJob(ctx, job.ID); err != nil || job.Status != vigil.BackupCompleted {
		t.Fatalf("copy job %+v, %v; want COMPLETED", job, err)
	}
	rps := copies()
	if len(rps) != 1 || rps[0].ID != job.RecoveryPointID || rps[0].SnapshotID != saved || rps[0].SourceRecoveryPointID != source.ID ||
		rps[0].CopyJobID != job.ID || rps[0].ExpireAt == nil || !rps[0].CreatedAt.Equal(source.CreatedAt) {
		t.Fatalf("recovery points in offsite %+v; want one, the saved snapshot %s, linked to %s", rps, saved, source.ID)
	}
	if ids := tagged(job); len(ids) != 1 {
		t.Errorf("offsite holds %d snapshots of the copy, want 1", len(ids))
	}
	evs, err := cat.ListEvents(ctx, catalog.EventFilter{JobID: job.ID, Types: []vigil.EventType{vigil.EventCopyJobCompleted, vigil.EventCopyJobFailed}})
	if err != nil || len(evs) != 1 || evs[0].Type != vigil.EventCopyJobCompleted {
		t.Errorf("final events of the copy job: %+v, %v; want one COPY_JOB_COMPLETED", evs, err)
	}

	// Two runs raced and each saved a copy: one is listed, one kept.
	raced, err := e.StartCopy(ctx, vigil.CopyRequest{RecoveryPointID: source.ID, Vault: "offsite"})
	if err != nil {
		t.Fatal(err)
	}
	died(raced)
	died(raced)
	if err := e.backups.RunCopy(ctx, raced.ID, 2); err != nil {
		t.Fatal(err)
	}
	if ids := tagged(raced); len(ids) != 1 {
		t.Errorf("after two racing runs offsite holds %d snapshots of the copy, want 1", len(ids))
	}
	if n := len(copies()); n != 2 {
		t.Errorf("offsite lists %d recovery points, want 2 (one per copy job)", n)
	}

	// A job that vigil's death cut short too often ends ABORTED.
	stuck, err := e.StartCopy(ctx, vigil.CopyRequest{RecoveryPointID: source.ID, Vault: "offsite"})
	if err != nil {
		t.Fatal(err)
	}
	stuck.Status = vigil.BackupRunning
	if err := cat.UpdateCopyJob(ctx, &stuck); err != nil {
		t.Fatal(err)
	}
	if err := e.backups.RunCopy(ctx, stuck.ID, backup.MaxCopyResumes+2); err != nil {
		t.Fatal(err)
	}
	if stuck, err = cat.GetCopyJob(ctx, stuck.ID); err != nil || stuck.Status != vigil.BackupAborted {
		t.Fatalf("copy job interrupted too often: %+v, %v; want ABORTED", stuck, err)
	}
	if n := len(copies()); n != 2 {
		t.Errorf("the aborted copy listed a recovery point: %d in offsite, want 2", n)
	}

	// Bad requests are refused before anything is queued.
	for _, req := range []vigil.CopyRequest{
		{RecoveryPointID: source.ID, Vault: "v"},
		{RecoveryPointID: source.ID, Vault: "nowhere"},
		{RecoveryPointID: "rp-missing", Vault: "offsite"},
	} {
		if _, err := e.StartCopy(ctx, req); err == nil {
			t.Errorf("StartCopy(%+v) was accepted", req)
		}
	}
}
