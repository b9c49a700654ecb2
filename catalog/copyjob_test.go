package catalog_test

import (
	"context"
	"slices"
	"testing"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

func TestCopyJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		full := vigil.CopyJob{
			ID: vigil.NewID(vigil.PrefixCopyJob), Status: vigil.BackupRunning, StatusMessage: "copying",
			Resource: "photos", ResourceType: "directory", SourceVault: "local", SourceRecoveryPointID: "rp-1",
			Vault: "offsite", RecoveryPointID: "rp-2", Bytes: 1 << 40, Files: 12345, PercentDone: 42.5,
			CreatedBy: "nightly", Node: "node-a", ExpireAt: new(at(59)), CreatedAt: at(1), StartedAt: new(at(2)), CompletedAt: new(at(3)),
		}
		requireNoError(t, c.InsertCopyJob(ctx, &full))
		got, err := c.GetCopyJob(ctx, full.ID)
		requireNoError(t, err)
		requireEqual(t, got, full)

		full.Status, full.StatusMessage, full.ExpireAt, full.CompletedAt = vigil.BackupCompleted, "", nil, nil
		requireNoError(t, c.UpdateCopyJob(ctx, &full))
		got, err = c.GetCopyJob(ctx, full.ID)
		requireNoError(t, err)
		requireEqual(t, got, full)

		other := vigil.CopyJob{ID: vigil.NewID(vigil.PrefixCopyJob), Status: vigil.BackupPending, SourceRecoveryPointID: "rp-3", Vault: "offsite", CreatedAt: at(5)}
		requireNoError(t, c.InsertCopyJob(ctx, &other))
		for _, tt := range []struct {
			f    catalog.CopyJobFilter
			want int
		}{
			{catalog.CopyJobFilter{}, 2},
			{catalog.CopyJobFilter{SourceRecoveryPointID: "rp-1"}, 1},
			{catalog.CopyJobFilter{Status: []vigil.BackupJobStatus{vigil.BackupPending}}, 1},
			{catalog.CopyJobFilter{Vault: "offsite", Limit: 1}, 1},
			{catalog.CopyJobFilter{Vault: "local"}, 0},
		} {
			jobs, err := c.ListCopyJobs(ctx, tt.f)
			requireNoError(t, err)
			if len(jobs) != tt.want {
				t.Errorf("ListCopyJobs(%+v) = %d jobs, want %d", tt.f, len(jobs), tt.want)
			}
		}

		_, err = c.GetCopyJob(ctx, "cj-missing")
		requireNotFound(t, err)
		requireNotFound(t, c.UpdateCopyJob(ctx, &vigil.CopyJob{ID: "cj-missing"}))

		// A copy links to its source; its id is taken once only.
		rp := vigil.RecoveryPoint{ID: full.RecoveryPointID, Vault: "offsite", Resource: "photos", Status: vigil.RecoveryPointAvailable,
			BackupJobID: "bj-1", SourceRecoveryPointID: "rp-1", CopyJobID: full.ID, CreatedAt: at(1)}
		requireNoError(t, c.InsertRecoveryPoint(ctx, &rp))
		gotRP, err := c.GetRecoveryPoint(ctx, rp.ID)
		requireNoError(t, err)
		requireEqual(t, gotRP, rp)
		if err := c.InsertRecoveryPoint(ctx, &rp); err == nil {
			t.Fatal("a second recovery point with the copy's id was accepted")
		}
	})
}

// TestListCopyJobsPages: copy jobs page as backup and restore jobs do,
// newest first, the next page starting after the last id of the one
// before, and an id of no copy job is an error wrapping vigil.ErrNotFound.
func TestListCopyJobsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		for _, j := range []vigil.CopyJob{
			{ID: "cj-1", Resource: "photos", Vault: "offsite", CreatedAt: at(1)},
			{ID: "cj-2", Resource: "db", Vault: "offsite", CreatedAt: at(2)},
			{ID: "cj-3", Resource: "photos", Vault: "cold", CreatedAt: at(3)},
			// Same instant as cj-3: id breaks the tie.
			{ID: "cj-4", Resource: "photos", Vault: "offsite", CreatedAt: at(3)},
		} {
			requireNoError(t, c.InsertCopyJob(ctx, &j))
		}
		for _, tt := range []struct {
			filter catalog.CopyJobFilter
			want   []string
		}{
			{catalog.CopyJobFilter{Limit: 2}, []string{"cj-4", "cj-3"}},
			{catalog.CopyJobFilter{StartingAfter: "cj-4", Limit: 2}, []string{"cj-3", "cj-2"}},
			{catalog.CopyJobFilter{StartingAfter: "cj-3"}, []string{"cj-2", "cj-1"}},
			{catalog.CopyJobFilter{StartingAfter: "cj-4", Resource: "photos"}, []string{"cj-3", "cj-1"}},
			{catalog.CopyJobFilter{StartingAfter: "cj-4", Vault: "offsite"}, []string{"cj-2", "cj-1"}},
			{catalog.CopyJobFilter{StartingAfter: "cj-1"}, []string{}},
		} {
			got, err := c.ListCopyJobs(ctx, tt.filter)
			requireNoError(t, err)
			ids := []string{}
			for _, j := range got {
				ids = append(ids, j.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ListCopyJobs(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
		}
		_, err := c.ListCopyJobs(ctx, catalog.CopyJobFilter{StartingAfter: "cj-none"})
		requireNotFound(t, err)
	})
}
