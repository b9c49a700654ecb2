package restoretest_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// TestPlansSelectByVault: a plan with vaults picks recovery points in
// those vaults only, copies included, whether on a schedule, on demand or
// as they land; a plan without vaults tests backups as they complete, not
// their copies.
func TestPlansSelectByVault(t *testing.T) {
	ctx := context.Background()
	lab, _, rp := faultyLab(t)
	// The copy's data is older than the backup's, so that a plan that
	// did not look at vaults would pick the backup as the latest.
	cp := rp
	cp.ID, cp.Vault, cp.SourceRecoveryPointID, cp.CopyJobID = vigil.NewID(vigil.PrefixRecoveryPoint), "offsite", rp.ID, vigil.NewID(vigil.PrefixCopyJob)
	cp.CreatedAt = rp.CreatedAt.Add(-time.Minute)
	if err := lab.Catalog.InsertRecoveryPoint(ctx, &cp); err != nil {
		t.Fatal(err)
	}
	offsite := config.RestoreTestPlan{Name: "offsite-proof", Resources: []string{"shop"}, Vaults: []string{"offsite"}, OnBackupCompleted: true,
		RecoveryPoint: config.LatestWithinWindow, SelectionWindowDays: 7, ValidationWindow: config.Duration(time.Second)}
	every := config.RestoreTestPlan{Name: "every-backup", Resources: []string{"shop"}, OnBackupCompleted: true,
		RecoveryPoint: config.LatestWithinWindow, SelectionWindowDays: 7, ValidationWindow: config.Duration(time.Second)}
	lab.Config.RestoreTesting = append(lab.Config.RestoreTesting, offsite, every)

	tested := func(plan string) []string {
		t.Helper()
		jobs, err := lab.Catalog.ListRestoreJobs(ctx, catalog.RestoreJobFilter{RestoreTest: true})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range jobs {
			if j.Plan == plan {
				ids = append(ids, j.RecoveryPointID)
			}
		}
		return ids
	}

	if err := lab.Tester.RunPlan(ctx, offsite); err != nil {
		t.Fatal(err)
	}
	if got := tested("offsite-proof"); len(got) != 1 || got[0] != cp.ID {
		t.Fatalf("the scheduled plan with vaults: [offsite] tested %v, want the copy %s", got, cp.ID)
	}
	job, err := lab.Tester.Start(ctx, vigil.RestoreTestRequest{Resource: "shop", Plan: "offsite-proof"})
	if err != nil || job.RecoveryPointID != cp.ID {
		t.Fatalf("an on-demand test with the plan tested %s (%v), want the copy %s", job.RecoveryPointID, err, cp.ID)
	}

	for _, p := range []vigil.RecoveryPoint{rp, cp} {
		if err := lab.Catalog.InTx(ctx, func(tx *catalog.Tx) error { return lab.Tester.QueueOnBackup(ctx, tx, &p) }); err != nil {
			t.Fatal(err)
		}
	}
	if got := tested("offsite-proof"); len(got) != 3 || got[0] != cp.ID {
		t.Errorf("as recovery points landed, the plan with vaults: [offsite] tested %v, want the copy %s once more", got, cp.ID)
	}
	if got := tested("every-backup"); len(got) != 1 || got[0] != rp.ID {
		t.Errorf("as recovery points landed, the plan without vaults tested %v, want only the backup %s", got, rp.ID)
	}
}
