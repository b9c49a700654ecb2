package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// at is a time as the catalog returns it: UTC, microsecond precision.
func at(minute int) time.Time {
	return time.Date(2025, 3, 14, 15, minute, 26, 535897000, time.UTC)
}

func requireEqual[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func requireNoError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func requireNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, vigil.ErrNotFound) {
		t.Fatalf("got error %v, want one wrapping vigil.ErrNotFound", err)
	}
}

func TestBackupJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		t.Run("RoundTripEveryField", func(t *testing.T) {
			full := vigil.BackupJob{
				ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupRunning, StatusMessage: "copying files",
				Resource: "photos", ResourceType: "directory", Vault: "local", RecoveryPointID: "rp-1",
				Bytes: 1 << 40, Files: 12345, PercentDone: 42.5, CreatedBy: "alice", Node: "node-a",
				ExpireAt: new(at(59)), CreatedAt: at(1), StartedAt: new(at(2)), CompletedAt: new(at(3)),
			}
			requireNoError(t, c.InsertBackupJob(ctx, &full))
			got, err := c.GetBackupJob(ctx, full.ID)
			requireNoError(t, err)
			requireEqual(t, got, full)

			// Nil times stay nil, empty strings empty; a zero CreatedAt
			// becomes now, on the record passed in too.
			sparse := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupCreated, Resource: "photos", Vault: "local"}
			before := time.Now()
			requireNoError(t, c.InsertBackupJob(ctx, &sparse))
			if sparse.CreatedAt.Before(before.Add(-time.Second)) || sparse.CreatedAt.After(time.Now()) {
				t.Fatalf("CreatedAt %v was not set to now", sparse.CreatedAt)
			}
			got, err = c.GetBackupJob(ctx, sparse.ID)
			requireNoError(t, err)
			requireEqual(t, got, sparse)

			// Update overwrites every column, nil included.
			full.Status, full.StatusMessage, full.PercentDone, full.Node = vigil.BackupCompleted, "done", 100, ""
			full.ExpireAt, full.StartedAt, full.CompletedAt = nil, new(at(4)), nil
			full.Bytes, full.Files, full.RecoveryPointID = 7, 8, "rp-2"
			requireNoError(t, c.UpdateBackupJob(ctx, &full))
			got, err = c.GetBackupJob(ctx, full.ID)
			requireNoError(t, err)
			requireEqual(t, got, full)
		})

		t.Run("TimesComeBackUTCInMicroseconds", func(t *testing.T) {
			paris := time.FixedZone("CET", 3600)
			local := time.Date(2025, 3, 14, 16, 0, 0, 123456789, paris)
			job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), CreatedAt: local, StartedAt: &local}
			requireNoError(t, c.InsertBackupJob(ctx, &job))
			got, err := c.GetBackupJob(ctx, job.ID)
			requireNoError(t, err)
			want := local.UTC().Truncate(time.Microsecond)
			requireEqual(t, got.CreatedAt, want)
			requireEqual(t, *got.StartedAt, want)
		})

		t.Run("NotFound", func(t *testing.T) {
			_, err := c.GetBackupJob(ctx, "bj-missing")
			requireNotFound(t, err)
			requireNotFound(t, c.UpdateBackupJob(ctx, &vigil.BackupJob{ID: "bj-missing"}))
		})

		t.Run("DuplicateID", func(t *testing.T) {
			job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob)}
			requireNoError(t, c.InsertBackupJob(ctx, &job))
			if err := c.InsertBackupJob(ctx, &job); err == nil {
				t.Fatal("inserting a backup job twice succeeded")
			}
		})
	})
}

func TestListBackupJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		jobs := []vigil.BackupJob{
			{ID: "bj-1", Status: vigil.BackupCompleted, Resource: "photos", Vault: "local", CreatedBy: "alice", Node: "a", CreatedAt: at(1)},
			{ID: "bj-2", Status: vigil.BackupFailed, Resource: "photos", Vault: "s3", CreatedBy: "bob", Node: "b", CreatedAt: at(2)},
			{ID: "bj-3", Status: vigil.BackupRunning, Resource: "db", Vault: "local", CreatedBy: "alice", Node: "a", CreatedAt: at(3)},
			// Same instant as bj-3: id breaks the tie.
			{ID: "bj-4", Status: vigil.BackupRunning, Resource: "db", Vault: "s3", CreatedBy: "schedule", Node: "b", CreatedAt: at(3)},
		}
		for i := range jobs {
			requireNoError(t, c.InsertBackupJob(ctx, &jobs[i]))
		}

		tests := []struct {
			filter catalog.BackupJobFilter
			want   []string
		}{
			{catalog.BackupJobFilter{}, []string{"bj-4", "bj-3", "bj-2", "bj-1"}},
			{catalog.BackupJobFilter{Limit: 2}, []string{"bj-4", "bj-3"}},
			{catalog.BackupJobFilter{Status: []vigil.BackupJobStatus{vigil.BackupRunning}}, []string{"bj-4", "bj-3"}},
			{catalog.BackupJobFilter{Status: []vigil.BackupJobStatus{vigil.BackupCompleted, vigil.BackupFailed}}, []string{"bj-2", "bj-1"}},
			{catalog.BackupJobFilter{Resource: "photos"}, []string{"bj-2", "bj-1"}},
			{catalog.BackupJobFilter{CreatedAfter: new(at(2))}, []string{"bj-4", "bj-3", "bj-2"}},
			{catalog.BackupJobFilter{Vault: "s3"}, []string{"bj-4", "bj-2"}},
			{catalog.BackupJobFilter{CreatedBy: "alice"}, []string{"bj-3", "bj-1"}},
			{catalog.BackupJobFilter{Node: "a", Status: []vigil.BackupJobStatus{vigil.BackupRunning}}, []string{"bj-3"}},
			{catalog.BackupJobFilter{Resource: "photos", Vault: "local", CreatedBy: "alice", Node: "a", Limit: 5}, []string{"bj-1"}},
			{catalog.BackupJobFilter{Resource: "nothing"}, []string{}},
			// Pages: bj-3 follows bj-4 on the tie of their created_at.
			{catalog.BackupJobFilter{StartingAfter: "bj-4", Limit: 2}, []string{"bj-3", "bj-2"}},
			{catalog.BackupJobFilter{StartingAfter: "bj-3"}, []string{"bj-2", "bj-1"}},
			{catalog.BackupJobFilter{StartingAfter: "bj-3", Resource: "db"}, []string{}},
			{catalog.BackupJobFilter{StartingAfter: "bj-4", Vault: "s3"}, []string{"bj-2"}},
			{catalog.BackupJobFilter{StartingAfter: "bj-1"}, []string{}},
		}
		for _, tt := range tests {
			got, err := c.ListBackupJobs(ctx, tt.filter)
			requireNoError(t, err)
			ids := []string{}
			for _, j := range got {
				ids = append(ids, j.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ListBackupJobs(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
		}
		_, err := c.ListBackupJobs(ctx, catalog.BackupJobFilter{StartingAfter: "bj-none"})
		requireNotFound(t, err)

		// Listed records are whole records.
		got, err := c.ListBackupJobs(ctx, catalog.BackupJobFilter{Limit: 1})
		requireNoError(t, err)
		requireEqual(t, got, []vigil.BackupJob{jobs[3]})
	})
}

func TestRestoreJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		t.Run("RoundTripEveryField", func(t *testing.T) {
			full := vigil.RestoreJob{
				ID: vigil.NewID(vigil.PrefixRestoreJob), Status: vigil.RestoreRunning, StatusMessage: "restoring",
				RecoveryPointID: "rp-1", Resource: "photos", ResourceType: "directory",
				CreatedResourceID: "photos-restore-1", CreatedResourceLocation: "/var/lib/vigil/restores/1",
				CreatedBy: "restore-test", Node: "node-a",
				Metadata:  map[string]string{"target_path": "/tmp/x", "port": "8081", "quote": `"'?`},
				CreatedAt: at(1), StartedAt: new(at(2)), CompletedAt: new(at(3)),
				RestoreTest: true, ValidationStatus: vigil.ValidationFailed, ValidationMessage: "check 1 (http GET /): got 500",
				DeletionStatus: vigil.DeletionSuccessful, DeletionMessage: "deleted", KeepUntil: new(at(30)),
				RestoreSeconds: 1.5, StartSeconds: 0.25, ValidationSeconds: 3, CleanupSeconds: 0.125, TotalSeconds: 5,
				RecoveryPointAgeSeconds: 86400,
				ExternalValidation:      &vigil.ExternalValidation{Status: vigil.ValidationFailed, Message: "rows missing", Time: at(4)},
			}
			requireNoError(t, c.InsertRestoreJob(ctx, &full))
			got, err := c.GetRestoreJob(ctx, full.ID)
			requireNoError(t, err)
			requireEqual(t, got, full)

			// A nil map stays nil and an empty one empty.
			for _, metadata := range []map[string]string{nil, {}} {
				job := vigil.RestoreJob{ID: vigil.NewID(vigil.PrefixRestoreJob), Status: vigil.RestorePending, Metadata: metadata}
				requireNoError(t, c.InsertRestoreJob(ctx, &job))
				got, err := c.GetRestoreJob(ctx, job.ID)
				requireNoError(t, err)
				requireEqual(t, got, job)
			}

			full.Status, full.Node, full.Metadata = vigil.RestoreCompleted, "", nil
			full.StartedAt, full.CompletedAt = nil, new(at(9))
			full.KeepUntil, full.RestoreTest = nil, false
			reported := full.ExternalValidation
			full.ExternalValidation = nil
			requireNoError(t, c.UpdateRestoreJob(ctx, &full))
			got, err = c.GetRestoreJob(ctx, full.ID)
			requireNoError(t, err)
			// An update never erases a reported verdict.
			full.ExternalValidation = reported
			requireEqual(t, got, full)
		})

		t.Run("NotFound", func(t *testing.T) {
			_, err := c.GetRestoreJob(ctx, "rj-missing")
			requireNotFound(t, err)
			requireNotFound(t, c.UpdateRestoreJob(ctx, &vigil.RestoreJob{ID: "rj-missing"}))
		})
	})
}

func TestListRestoreJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		jobs := []vigil.RestoreJob{
			{ID: "rj-1", Status: vigil.RestoreCompleted, Resource: "photos", RecoveryPointID: "rp-1", Node: "a", CreatedAt: at(1)},
			{ID: "rj-2", Status: vigil.RestoreFailed, Resource: "photos", RecoveryPointID: "rp-2", Node: "b", CreatedAt: at(2),
				ValidationStatus: vigil.ValidationAborted},
			{ID: "rj-3", Status: vigil.RestoreRunning, Resource: "db", RecoveryPointID: "rp-3", Node: "a", CreatedAt: at(3)},
		}
		for i := range jobs {
			requireNoError(t, c.InsertRestoreJob(ctx, &jobs[i]))
		}

		tests := []struct {
			filter catalog.RestoreJobFilter
			want   []string
		}{
			{catalog.RestoreJobFilter{}, []string{"rj-3", "rj-2", "rj-1"}},
			{catalog.RestoreJobFilter{Limit: 1}, []string{"rj-3"}},
			{catalog.RestoreJobFilter{Status: []vigil.RestoreJobStatus{vigil.RestoreCompleted, vigil.RestoreFailed}}, []string{"rj-2", "rj-1"}},
			{catalog.RestoreJobFilter{Resource: "photos"}, []string{"rj-2", "rj-1"}},
			{catalog.RestoreJobFilter{RecoveryPointID: "rp-3"}, []string{"rj-3"}},
			{catalog.RestoreJobFilter{Node: "a", Status: []vigil.RestoreJobStatus{vigil.RestoreRunning, vigil.RestorePending}}, []string{"rj-3"}},
			{catalog.RestoreJobFilter{Node: "c"}, []string{}},
			{catalog.RestoreJobFilter{CreatedAfter: new(at(2))}, []string{"rj-3", "rj-2"}},
			{catalog.RestoreJobFilter{StartingAfter: "rj-3", Limit: 1}, []string{"rj-2"}},
			{catalog.RestoreJobFilter{SkipAborted: true}, []string{"rj-3", "rj-1"}},
			{catalog.RestoreJobFilter{StartingAfter: "rj-2", Resource: "photos"}, []string{"rj-1"}},
			{catalog.RestoreJobFilter{StartingAfter: "rj-1"}, []string{}},
		}
		for _, tt := range tests {
			got, err := c.ListRestoreJobs(ctx, tt.filter)
			requireNoError(t, err)
			ids := []string{}
			for _, j := range got {
				ids = append(ids, j.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ListRestoreJobs(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
		}
		_, err := c.ListRestoreJobs(ctx, catalog.RestoreJobFilter{StartingAfter: "rj-none"})
		requireNotFound(t, err)
	})
}

func TestRecoveryPoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		t.Run("RoundTripEveryField", func(t *testing.T) {
			full := vigil.RecoveryPoint{
				ID: vigil.NewID(vigil.PrefixRecoveryPoint), Vault: "local", Resource: "photos", ResourceType: "directory",
				Status: vigil.RecoveryPointAvailable, SizeBytes: 1 << 33, Files: 99, BackupJobID: "bj-1", SnapshotID: "k5d1e2f3",
				CreatedAt: at(1), CompletedAt: new(at(2)), ExpireAt: new(at(30)),
				Skipped: &vigil.Skipped{Total: 3, ByKind: map[string]int64{"socket": 2, "named pipe": 1},
					Entries: []vigil.SkippedEntry{{Path: "run/app.sock", Kind: "socket"}, {Path: "run/a b.sock", Kind: "socket"}, {Path: "fifo", Kind: "named pipe"}}},
			}
			requireNoError(t, c.InsertRecoveryPoint(ctx, &full))
			got, err := c.GetRecoveryPoint(ctx, full.ID)
			requireNoError(t, err)
			requireEqual(t, got, full)

			sparse := vigil.RecoveryPoint{ID: vigil.NewID(vigil.PrefixRecoveryPoint), Status: vigil.RecoveryPointCreating}
			requireNoError(t, c.InsertRecoveryPoint(ctx, &sparse))
			if sparse.CreatedAt.IsZero() {
				t.Fatal("CreatedAt was not set")
			}
			got, err = c.GetRecoveryPoint(ctx, sparse.ID)
			requireNoError(t, err)
			requireEqual(t, got, sparse)

			full.Status, full.ExpireAt, full.CompletedAt = vigil.RecoveryPointExpired, nil, nil
			full.Database = &vigil.DatabaseInfo{Engine: "postgres", Server: "15.2", Database: "orders",
				Encoding: "UTF8", Collate: "C.UTF-8", Ctype: "C.UTF-8",
				Tables: []vigil.TableRows{{Name: "public.orders", Rows: 100000}, {Name: `public."Odd name"`, Rows: 0}}}
			requireNoError(t, c.UpdateRecoveryPoint(ctx, &full))
			got, err = c.GetRecoveryPoint(ctx, full.ID)
			requireNoError(t, err)
			requireEqual(t, got, full)

			full.Status, full.StatusMessage = vigil.RecoveryPointDamaged, "snapshot k5d1e2f3 is missing from vault local"
			full.Foreign = &vigil.ForeignSnapshot{Tool: "restic", ID: "4f9a0c", Host: "web1", Username: "root", Path: "/srv/web", Tags: []string{"daily", "a b"}}
			requireNoError(t, c.UpdateRecoveryPoint(ctx, &full))
			got, err = c.GetRecoveryPoint(ctx, full.ID)
			requireNoError(t, err)
			requireEqual(t, got, full)

			requireNoError(t, c.DeleteRecoveryPoint(ctx, full.ID))
			_, err = c.GetRecoveryPoint(ctx, full.ID)
			requireNotFound(t, err)
		})

		t.Run("NotFound", func(t *testing.T) {
			_, err := c.GetRecoveryPoint(ctx, "rp-missing")
			requireNotFound(t, err)
			requireNotFound(t, c.UpdateRecoveryPoint(ctx, &vigil.RecoveryPoint{ID: "rp-missing"}))
			requireNotFound(t, c.DeleteRecoveryPoint(ctx, "rp-missing"))
		})
	})
}

func TestListRecoveryPoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		points := []vigil.RecoveryPoint{
			{ID: "rp-1", Vault: "local", Resource: "photos", Status: vigil.RecoveryPointAvailable, CreatedAt: at(1), ExpireAt: new(at(10))},
			{ID: "rp-2", Vault: "s3", Resource: "photos", Status: vigil.RecoveryPointAvailable, CreatedAt: at(2), ExpireAt: new(at(20))},
			{ID: "rp-3", Vault: "local", Resource: "db", Status: vigil.RecoveryPointCreating, CreatedAt: at(3)},
			{ID: "rp-4", Vault: "local", Resource: "db", Status: vigil.RecoveryPointExpired, CreatedAt: at(4), ExpireAt: new(at(5))},
		}
		for i := range points {
			requireNoError(t, c.InsertRecoveryPoint(ctx, &points[i]))
		}

		tests := []struct {
			filter catalog.RecoveryPointFilter
			want   []string
		}{
			{catalog.RecoveryPointFilter{}, []string{"rp-4", "rp-3", "rp-2", "rp-1"}},
			{catalog.RecoveryPointFilter{Limit: 3}, []string{"rp-4", "rp-3", "rp-2"}},
			{catalog.RecoveryPointFilter{Vault: "local"}, []string{"rp-4", "rp-3", "rp-1"}},
			{catalog.RecoveryPointFilter{Resource: "photos"}, []string{"rp-2", "rp-1"}},
			{catalog.RecoveryPointFilter{Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}}, []string{"rp-2", "rp-1"}},
			// expire_at strictly before, never NULL.
			{catalog.RecoveryPointFilter{ExpiredBefore: new(at(20))}, []string{"rp-4", "rp-1"}},
			{catalog.RecoveryPointFilter{ExpiredBefore: new(at(59))}, []string{"rp-4", "rp-2", "rp-1"}},
			{catalog.RecoveryPointFilter{ExpiredBefore: new(at(5))}, []string{}},
			{
				catalog.RecoveryPointFilter{
					Vault: "local", ExpiredBefore: new(at(59)),
					Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable, vigil.RecoveryPointCreating},
				},
				[]string{"rp-1"},
			},
			{catalog.RecoveryPointFilter{StartingAfter: "rp-4", Limit: 2}, []string{"rp-3", "rp-2"}},
			{catalog.RecoveryPointFilter{StartingAfter: "rp-4", Vault: "local"}, []string{"rp-3", "rp-1"}},
			{catalog.RecoveryPointFilter{StartingAfter: "rp-1"}, []string{}},
		}
		for _, tt := range tests {
			got, err := c.ListRecoveryPoints(ctx, tt.filter)
			requireNoError(t, err)
			ids := []string{}
			for _, p := range got {
				ids = append(ids, p.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ListRecoveryPoints(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
			if tt.filter.StartingAfter != "" || tt.filter.Limit != 0 {
				continue
			}
			// A count counts what the list lists.
			n, err := c.CountRecoveryPoints(ctx, tt.filter)
			requireNoError(t, err)
			if n != len(tt.want) {
				t.Errorf("CountRecoveryPoints(%+v) = %d, want %d", tt.filter, n, len(tt.want))
			}
		}
		_, err := c.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{StartingAfter: "rp-none"})
		requireNotFound(t, err)
	})
}

func TestLogs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		// Many lines within the same microsecond must keep their order.
		var want []string
		start := time.Now().Add(-time.Second)
		for i := range 50 {
			msg := fmt.Sprintf("line %02d", i)
			want = append(want, msg)
			requireNoError(t, c.AppendLog(ctx, "bj-1", msg))
			requireNoError(t, c.AppendLog(ctx, "bj-2", "other job "+msg))
		}

		lines, err := c.Logs(ctx, "bj-1")
		requireNoError(t, err)
		var got []string
		for i, l := range lines {
			got = append(got, l.Message)
			if l.JobID != "bj-1" {
				t.Fatalf("line %d belongs to %q", i, l.JobID)
			}
			if l.Time.Location() != time.UTC || l.Time.Before(start) || l.Time.After(time.Now()) {
				t.Fatalf("line %d has time %v", i, l.Time)
			}
			if i > 0 && l.Time.Before(lines[i-1].Time) {
				t.Fatalf("line %d is older than the line before it", i)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("got lines %v, want %v", got, want)
		}

		none, err := c.Logs(ctx, "bj-none")
		requireNoError(t, err)
		if none == nil || len(none) != 0 {
			t.Fatalf("got %#v for a job without lines, want an empty slice", none)
		}
	})
}

func TestInTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		t.Run("Commit", func(t *testing.T) {
			job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupCreated}
			err := c.InTx(ctx, func(tx *catalog.Tx) error {
				if err := tx.InsertBackupJob(ctx, &job); err != nil {
					return err
				}
				// The transaction sees its own writes.
				job.Status = vigil.BackupPending
				if err := tx.UpdateBackupJob(ctx, &job); err != nil {
					return err
				}
				return tx.AppendLog(ctx, job.ID, "queued")
			})
			requireNoError(t, err)
			got, err := c.GetBackupJob(ctx, job.ID)
			requireNoError(t, err)
			requireEqual(t, got, job)
			lines, err := c.Logs(ctx, job.ID)
			requireNoError(t, err)
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1", len(lines))
			}
		})

		t.Run("ErrorRollsBack", func(t *testing.T) {
			job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob)}
			rp := vigil.RecoveryPoint{ID: vigil.NewID(vigil.PrefixRecoveryPoint)}
			errStop := errors.New("stop here")
			err := c.InTx(ctx, func(tx *catalog.Tx) error {
				requireNoError(t, tx.InsertBackupJob(ctx, &job))
				requireNoError(t, tx.InsertRecoveryPoint(ctx, &rp))
				requireNoError(t, tx.AppendLog(ctx, job.ID, "never seen"))
				return fmt.Errorf("wrapped: %w", errStop)
			})
			if !errors.Is(err, errStop) {
				t.Fatalf("InTx returned %v, want fn's error", err)
			}
			_, err = c.GetBackupJob(ctx, job.ID)
			requireNotFound(t, err)
			_, err = c.GetRecoveryPoint(ctx, rp.ID)
			requireNotFound(t, err)
			lines, err := c.Logs(ctx, job.ID)
			requireNoError(t, err)
			if len(lines) != 0 {
				t.Fatalf("got %d log lines from a rolled back transaction", len(lines))
			}
		})

		t.Run("PanicRollsBack", func(t *testing.T) {
			job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob)}
			func() {
				defer func() {
					if recover() == nil {
						t.Fatal("the panic in fn did not reach the caller")
					}
				}()
				_ = c.InTx(ctx, func(tx *catalog.Tx) error {
					requireNoError(t, tx.InsertBackupJob(ctx, &job))
					panic("boom")
				})
			}()
			_, err := c.GetBackupJob(ctx, job.ID)
			requireNotFound(t, err)
			// The connection went back to the pool usable.
			requireNoError(t, c.InTx(ctx, func(tx *catalog.Tx) error { return tx.InsertBackupJob(ctx, &job) }))
		})
	})
}

func TestExternalValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		job := vigil.RestoreJob{ID: "rj-ext", Status: vigil.RestoreCompleted, RestoreTest: true, CreatedAt: at(1)}
		requireNoError(t, c.InsertRestoreJob(ctx, &job))
		verdict := vigil.ExternalValidation{Status: vigil.ValidationSuccessful, Message: "all rows there", Time: at(2)}

		// Not validating yet: refused.
		ok, err := c.SetExternalValidation(ctx, job.ID, verdict)
		requireNoError(t, err)
		if ok {
			t.Fatal("a verdict was taken for a test that is not VALIDATING")
		}
		job.ValidationStatus = vigil.ValidationValidating
		requireNoError(t, c.UpdateRestoreJob(ctx, &job))
		ok, err = c.SetExternalValidation(ctx, job.ID, verdict)
		requireNoError(t, err)
		if !ok {
			t.Fatal("the verdict of a VALIDATING test was refused")
		}
		// A second report never overwrites the first.
		ok, err = c.SetExternalValidation(ctx, job.ID, vigil.ExternalValidation{Status: vigil.ValidationFailed, Time: at(3)})
		requireNoError(t, err)
		if ok {
			t.Fatal("a second verdict overwrote the first")
		}
		got, err := c.GetRestoreJob(ctx, job.ID)
		requireNoError(t, err)
		requireEqual(t, *got.ExternalValidation, verdict)
	})
}

func TestNotDeletedRestoreTests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		jobs := []vigil.RestoreJob{
			{ID: "rj-plain", Status: vigil.RestoreCompleted, CreatedAt: at(1)},
			{ID: "rj-pending", Status: vigil.RestorePending, RestoreTest: true, CreatedAt: at(2)},
			{ID: "rj-validating", Status: vigil.RestoreCompleted, RestoreTest: true, ValidationStatus: vigil.ValidationValidating, CreatedAt: at(3)},
			{ID: "rj-deleting", Status: vigil.RestoreCompleted, RestoreTest: true, DeletionStatus: vigil.DeletionDeleting, CreatedAt: at(4)},
			{ID: "rj-failed-delete", Status: vigil.RestoreCompleted, RestoreTest: true, DeletionStatus: vigil.DeletionFailed, CreatedAt: at(5)},
			{ID: "rj-deleted", Status: vigil.RestoreCompleted, RestoreTest: true, DeletionStatus: vigil.DeletionSuccessful, CreatedAt: at(6)},
			{ID: "rj-running", Status: vigil.RestoreRunning, RestoreTest: true, CreatedAt: at(7)},
		}
		for i := range jobs {
			requireNoError(t, c.InsertRestoreJob(ctx, &jobs[i]))
		}
		got, err := c.ListRestoreJobs(ctx, catalog.RestoreJobFilter{NotDeleted: true})
		requireNoError(t, err)
		var ids []string
		for _, j := range got {
			ids = append(ids, j.ID)
		}
		requireEqual(t, ids, []string{"rj-running", "rj-failed-delete", "rj-deleting", "rj-validating"})
		got, err = c.ListRestoreJobs(ctx, catalog.RestoreJobFilter{RestoreTest: true})
		requireNoError(t, err)
		if len(got) != 6 {
			t.Errorf("RestoreTest filter: %d jobs, want 6", len(got))
		}
	})
}

func TestEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)

		// Events from many writers at once get distinct seqs in commit order.
		const writers, each = 8, 10
		errs := make(chan error, writers)
		for w := range writers {
			go func() {
				var err error
				for i := range each {
					err = c.InTx(ctx, func(tx *catalog.Tx) error {
						return tx.InsertEvent(ctx, &vigil.Event{
							Type: vigil.EventBackupJobCompleted, Resource: fmt.Sprintf("r%d", w),
							JobID: fmt.Sprintf("bj-%d-%d", w, i), Subject: "done", Message: "backup done",
							Data: []byte(`{"id":"x"}`),
						})
					})
					if err != nil {
						break
					}
				}
				errs <- err
			}()
		}
		for range writers {
			requireNoError(t, <-errs)
		}
		all, err := c.ListEvents(ctx, catalog.EventFilter{})
		requireNoError(t, err)
		if len(all) != writers*each {
			t.Fatalf("%d events, want %d", len(all), writers*each)
		}
		for i := 1; i < len(all); i++ {
			if all[i].Seq <= all[i-1].Seq {
				t.Fatalf("seq not increasing: %d after %d", all[i].Seq, all[i-1].Seq)
			}
		}
		if string(all[0].Data) != `{"id":"x"}` || all[0].Subject != "done" || all[0].Time.IsZero() {
			t.Errorf("event did not round-trip: %+v", all[0])
		}

		after, err := c.ListEvents(ctx, catalog.EventFilter{AfterSeq: all[69].Seq})
		requireNoError(t, err)
		requireEqual(t, len(after), 10)
		newest, err := c.ListEvents(ctx, catalog.EventFilter{Limit: 3, Newest: true})
		requireNoError(t, err)
		requireEqual(t, []int64{newest[0].Seq, newest[2].Seq}, []int64{all[77].Seq, all[79].Seq})
		one, err := c.ListEvents(ctx, catalog.EventFilter{JobID: "bj-3-4"})
		requireNoError(t, err)
		requireEqual(t, len(one), 1)

		// A rolled-back transaction leaves no event.
		_ = c.InTx(ctx, func(tx *catalog.Tx) error {
			requireNoError(t, tx.InsertEvent(ctx, &vigil.Event{Type: vigil.EventBackupJobFailed}))
			return fmt.Errorf("roll back")
		})
		failed, err := c.ListEvents(ctx, catalog.EventFilter{Types: []vigil.EventType{vigil.EventBackupJobFailed}})
		requireNoError(t, err)
		requireEqual(t, len(failed), 0)

		// Deliveries are replaced by their latest outcome.
		d := vigil.Delivery{EventSeq: all[0].Seq, Notification: "hook", Status: vigil.DeliveryRetrying, Attempts: 1, LastError: "refused", UpdatedAt: at(1)}
		requireNoError(t, c.PutDelivery(ctx, &d))
		d.Status, d.Attempts, d.LastError, d.UpdatedAt = vigil.DeliveryDelivered, 2, "", at(2)
		requireNoError(t, c.PutDelivery(ctx, &d))
		ds, err := c.ListDeliveries(ctx, all[0].Seq, all[0].Seq)
		requireNoError(t, err)
		requireEqual(t, ds, []vigil.Delivery{d})
	})
}
