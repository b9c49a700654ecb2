package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

func TestStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		secs := func(start time.Time, s float64) *time.Time {
			end := start.Add(time.Duration(s * float64(time.Second)))
			return &end
		}
		// Backups of orders: 2 s and 40 s, completed; one failed after 1 s;
		// one pending. docs: one completed backup of 3 s.
		for _, j := range []vigil.BackupJob{
			{ID: "bj-1", Status: vigil.BackupCompleted, Resource: "orders", Bytes: 1000, CreatedAt: at(1), StartedAt: new(at(1)), CompletedAt: secs(at(1), 2)},
			{ID: "bj-2", Status: vigil.BackupCompleted, Resource: "orders", Bytes: 500, CreatedAt: at(10), StartedAt: new(at(10)), CompletedAt: secs(at(10), 40)},
			{ID: "bj-3", Status: vigil.BackupFailed, Resource: "orders", CreatedAt: at(20), StartedAt: new(at(20)), CompletedAt: secs(at(20), 1)},
			{ID: "bj-4", Status: vigil.BackupPending, Resource: "orders", CreatedAt: at(30)},
			{ID: "bj-5", Status: vigil.BackupCompleted, Resource: "docs", Bytes: 7, CreatedAt: at(2), StartedAt: new(at(2)), CompletedAt: secs(at(2), 3)},
		} {
			requireNoError(t, c.InsertBackupJob(ctx, &j))
		}
		for _, rp := range []vigil.RecoveryPoint{
			{ID: "rp-1", Resource: "orders", Status: vigil.RecoveryPointAvailable, CreatedAt: at(1)},
			{ID: "rp-2", Resource: "orders", Status: vigil.RecoveryPointAvailable, CreatedAt: at(10)},
			{ID: "rp-3", Resource: "orders", Status: vigil.RecoveryPointExpired, CreatedAt: at(25)},
		} {
			requireNoError(t, c.InsertRecoveryPoint(ctx, &rp))
		}
		// Restore tests of orders: SUCCESSFUL (1.5 s), then FAILED (4 s);
		// one still validating; a plain restore of 6 s.
		for _, j := range []vigil.RestoreJob{
			{ID: "rj-1", RestoreTest: true, Status: vigil.RestoreCompleted, Resource: "orders", ValidationStatus: vigil.ValidationSuccessful,
				TotalSeconds: 1.5, CreatedAt: at(3), StartedAt: new(at(3)), CompletedAt: secs(at(3), 1)},
			{ID: "rj-2", RestoreTest: true, Status: vigil.RestoreCompleted, Resource: "orders", ValidationStatus: vigil.ValidationFailed,
				TotalSeconds: 4, CreatedAt: at(12), StartedAt: new(at(12)), CompletedAt: secs(at(12), 2)},
			{ID: "rj-3", RestoreTest: true, Status: vigil.RestoreCompleted, Resource: "orders", ValidationStatus: vigil.ValidationValidating,
				CreatedAt: at(13), StartedAt: new(at(13)), CompletedAt: secs(at(13), 1)},
			{ID: "rj-4", Status: vigil.RestoreCompleted, Resource: "orders", CreatedAt: at(14), StartedAt: new(at(14)), CompletedAt: secs(at(14), 6)},
		} {
			requireNoError(t, c.InsertRestoreJob(ctx, &j))
		}

		// Copies: one of 2 s, one running.
		for _, j := range []vigil.CopyJob{
			{ID: "cj-1", Status: vigil.BackupCompleted, Resource: "orders", CreatedAt: at(4), StartedAt: new(at(4)), CompletedAt: secs(at(4), 2)},
			{ID: "cj-2", Status: vigil.BackupRunning, Resource: "orders", CreatedAt: at(11), StartedAt: new(at(11))},
		} {
			requireNoError(t, c.InsertCopyJob(ctx, &j))
		}

		// Without buckets: only counts and sums.
		plain, err := c.Stats(ctx, nil)
		requireNoError(t, err)
		requireEqual(t, len(plain.Durations[0].Buckets), 0)

		s, err := c.Stats(ctx, []float64{1, 5, 60})
		requireNoError(t, err)
		counts := map[string]int64{}
		for _, j := range s.Jobs {
			counts[j.Type+" "+j.Status] = j.Count
		}
		requireEqual(t, counts, map[string]int64{
			"backup COMPLETED": 3, "backup FAILED": 1, "backup PENDING": 1,
			"restore_test COMPLETED": 3, "restore COMPLETED": 1,
			"copy COMPLETED": 1, "copy RUNNING": 1,
		})
		hist := map[string]any{}
		for _, h := range s.Durations {
			hist[h.Type] = []any{h.Count, h.Sum, h.Buckets}
		}
		requireEqual(t, hist, map[string]any{
			"backup":       []any{uint64(4), 46.0, []uint64{1, 3, 4}},
			"restore":      []any{uint64(1), 6.0, []uint64{0, 0, 1}},
			"restore_test": []any{uint64(3), 4.0, []uint64{2, 3, 3}},
			"copy":         []any{uint64(1), 2.0, []uint64{0, 1, 1}},
		})
		orders := s.Resources["orders"]
		requireEqual(t, orders.BytesBackedUp, int64(1500))
		requireEqual(t, *orders.LastBackup, *secs(at(10), 40))
		requireEqual(t, *orders.NewestRecoveryPoint, at(10))
		requireEqual(t, *orders.LastSuccessfulTest, *secs(at(3), 1))
		requireEqual(t, orders.LastTestStatus, "FAILED")
		requireEqual(t, orders.LastTestSeconds, 4.0)
		docs := s.Resources["docs"]
		if docs.LastSuccessfulTest != nil || docs.NewestRecoveryPoint != nil || docs.BytesBackedUp != 7 {
			t.Errorf("docs: %+v", docs)
		}
	})
}
