package catalog_test

import (
	"context"
	"testing"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// TestPlanPointsAndLastGood: a plan's points are those its backups made,
// not copies nor on-demand backups; a resource's last good point is its
// newest AVAILABLE point with a SUCCESSFUL restore test.
func TestPlanPointsAndLastGood(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		point := func(createdBy string, minute int, copyOf string) vigil.RecoveryPoint {
			t.Helper()
			job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupCompleted, Resource: "docs",
				ResourceType: "directory", Vault: "v", CreatedBy: createdBy, CreatedAt: at(minute)}
			requireNoError(t, c.InsertBackupJob(ctx, &job))
			rp := vigil.RecoveryPoint{ID: vigil.NewID(vigil.PrefixRecoveryPoint), Vault: "v", Resource: "docs", ResourceType: "directory",
				Status: vigil.RecoveryPointAvailable, BackupJobID: job.ID, SnapshotID: "s", CreatedAt: at(minute)}
			if copyOf != "" {
				rp.Vault, rp.SourceRecoveryPointID, rp.CopyJobID = "offsite", copyOf, "cj-1"
			}
			requireNoError(t, c.InsertRecoveryPoint(ctx, &rp))
			return rp
		}
		tested := func(rp vigil.RecoveryPoint, status vigil.ValidationStatus) {
			t.Helper()
			job := vigil.NewRestoreJob(rp, "test")
			job.RestoreTest, job.ValidationStatus, job.Status = true, status, vigil.RestoreCompleted
			requireNoError(t, c.InsertRestoreJob(ctx, &job))
		}
		old := point("nightly", 1, "")
		mid := point("nightly", 2, "")
		newest := point("nightly", 3, "")
		point("on-demand", 4, "")
		cp := point("nightly", 5, newest.ID)

		got, err := c.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{Plan: "nightly"})
		requireNoError(t, err)
		var ids []string
		for _, rp := range got {
			ids = append(ids, rp.ID)
		}
		requireEqual(t, ids, []string{newest.ID, mid.ID, old.ID})

		good, err := c.LastGoodRecoveryPoints(ctx)
		requireNoError(t, err)
		requireEqual(t, good, map[string]string{})

		tested(old, vigil.ValidationSuccessful)
		tested(mid, vigil.ValidationSuccessful)
		tested(newest, vigil.ValidationFailed)
		good, err = c.LastGoodRecoveryPoints(ctx)
		requireNoError(t, err)
		requireEqual(t, good, map[string]string{"docs": mid.ID})

		// A damaged point is no longer good; a tested copy is.
		mid.Status = vigil.RecoveryPointDamaged
		requireNoError(t, c.UpdateRecoveryPoint(ctx, &mid))
		tested(cp, vigil.ValidationSuccessful)
		good, err = c.LastGoodRecoveryPoints(ctx)
		requireNoError(t, err)
		requireEqual(t, good, map[string]string{"docs": cp.ID})
	})
}
