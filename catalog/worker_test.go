package catalog_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

func TestOpenCurrentRefusesSchemaNotCurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		// An empty database is behind: OpenCurrent creates nothing.
		_, err := catalog.OpenCurrent(ctx, db.dsn, db.dataDir)
		if !errors.Is(err, catalog.ErrCatalogBehind) {
			t.Fatalf("OpenCurrent on an empty catalog: %v, want ErrCatalogBehind", err)
		}
		c := db.open(t) // migrates
		v, err := c.SchemaVersions(ctx)
		requireNoError(t, err)
		if !v.Current() || v.Vigil == 0 || v.River == 0 {
			t.Fatalf("after Open, schema versions %+v, want current", v)
		}
		current, err := catalog.OpenCurrent(ctx, db.dsn, db.dataDir)
		if err != nil {
			t.Fatalf("OpenCurrent on a migrated catalog: %v", err)
		}
		requireNoError(t, current.Close())

		// One migration missing is behind too.
		execSQL(t, c, "DELETE FROM vigil_migration WHERE version = (SELECT MAX(version) FROM vigil_migration)")
		if _, err := catalog.OpenCurrent(ctx, db.dsn, db.dataDir); !errors.Is(err, catalog.ErrCatalogBehind) {
			t.Fatalf("OpenCurrent with a migration missing: %v, want ErrCatalogBehind", err)
		}
		execSQL(t, c, "INSERT INTO vigil_migration (version, name, applied_at) VALUES (998, 'a', 0), (999, 'future', 0)")
		if _, err := catalog.OpenCurrent(ctx, db.dsn, db.dataDir); !errors.Is(err, catalog.ErrNewerCatalog) {
			t.Fatalf("OpenCurrent on a newer catalog: %v, want ErrNewerCatalog", err)
		}
	})
}

func TestWorkerRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		start := time.Now().UTC().Truncate(time.Microsecond)
		w := catalog.Worker{ID: "n1-abc", Node: "n1", Host: "host1", PID: 42, StartedAt: start, LastHeartbeatAt: start,
			Concurrency: map[string]int{"backup": 2, "restore": 2, "restore_test": 4}}
		requireNoError(t, c.RegisterWorker(ctx, w))
		requireNoError(t, c.RegisterWorker(ctx, catalog.Worker{ID: "n2-def", Node: "n2", Host: "host2", PID: 7,
			StartedAt: start.Add(time.Second), LastHeartbeatAt: start.Add(time.Second), Concurrency: map[string]int{}}))
		beat := start.Add(5 * time.Second)
		requireNoError(t, c.HeartbeatWorker(ctx, w.ID, beat, []string{"bj-1", "rj-2"}))

		ws, err := c.ListWorkers(ctx)
		requireNoError(t, err)
		if len(ws) != 2 || ws[0].ID != "n2-def" || ws[1].ID != w.ID {
			t.Fatalf("ListWorkers = %+v, want n2-def then n1-abc", ws)
		}
		got := ws[1]
		w.LastHeartbeatAt, w.Running = beat, []string{"bj-1", "rj-2"}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("worker read back as %+v, want %+v", got, w)
		}

		requireNoError(t, c.StopWorker(ctx, w.ID, beat))
		ws, err = c.ListWorkers(ctx)
		requireNoError(t, err)
		if ws[1].StoppedAt == nil || !ws[1].StoppedAt.Equal(beat) || len(ws[1].Running) != 0 {
			t.Fatalf("stopped worker read back as %+v, want stopped at %s running nothing", ws[1], beat)
		}
		n, err := c.DeleteWorkersBefore(ctx, start.Add(time.Second))
		requireNoError(t, err)
		ws, err = c.ListWorkers(ctx)
		requireNoError(t, err)
		if n != 0 || len(ws) != 2 {
			t.Fatalf("DeleteWorkersBefore deleted %d, left %d; want 0 and 2 (both beat since)", n, len(ws))
		}
		n, err = c.DeleteWorkersBefore(ctx, beat)
		requireNoError(t, err)
		if n != 1 {
			t.Fatalf("DeleteWorkersBefore the last heartbeat deleted %d workers, want 1", n)
		}
	})
}

// TestUpdateRunningBackupJob: only the attempt that started a job, while
// the job is still RUNNING, writes it; once another ended it, a late
// write of the first attempt changes nothing.
func TestUpdateRunningBackupJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		started := time.Now().UTC()
		job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupRunning, Resource: "docs", Vault: "v", StartedAt: &started}
		requireNoError(t, c.InsertBackupJob(ctx, &job))

		other := started.Add(time.Second)
		late := job
		late.StartedAt, late.Status = &other, vigil.BackupCompleted
		ok, err := c.UpdateRunningBackupJob(ctx, &late, other)
		requireNoError(t, err)
		if ok {
			t.Fatal("an attempt that did not start the job wrote it")
		}

		ended := job
		ended.Status, ended.StatusMessage = vigil.BackupAborted, "its worker was counted dead"
		ok, err = c.UpdateRunningBackupJob(ctx, &ended, started)
		requireNoError(t, err)
		if !ok {
			t.Fatal("the attempt that started the running job could not end it")
		}
		completed := job
		completed.Status, completed.RecoveryPointID = vigil.BackupCompleted, "rp-1"
		ok, err = c.UpdateRunningBackupJob(ctx, &completed, started)
		requireNoError(t, err)
		if ok {
			t.Fatal("a job already ended ABORTED was written again")
		}
		got, err := c.GetBackupJob(ctx, job.ID)
		requireNoError(t, err)
		if got.Status != vigil.BackupAborted || got.RecoveryPointID != "" {
			t.Fatalf("job is %s with recovery point %q; want ABORTED with none", got.Status, got.RecoveryPointID)
		}
	})
}

// TestUpdateRestoreJobAt: an attempt writes a restore job only while the
// job is at the step the attempt last left it at; once another moved it
// on (ended it ABORTED), a late write of the attempt changes nothing.
func TestUpdateRestoreJobAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		started := time.Now().UTC()
		job := vigil.RestoreJob{ID: vigil.NewID(vigil.PrefixRestoreJob), Status: vigil.RestoreRunning, RestoreTest: true,
			Resource: "web", ResourceType: "app", Node: "w1", StartedAt: &started}
		requireNoError(t, c.InsertRestoreJob(ctx, &job))

		// The attempt moves the test on, step by step.
		validating := job
		validating.Status, validating.ValidationStatus = vigil.RestoreCompleted, vigil.ValidationValidating
		ok, err := c.UpdateRestoreJobAt(ctx, &validating, catalog.StepOf(&job))
		requireNoError(t, err)
		if !ok {
			t.Fatal("the attempt that started the test could not record its restore")
		}
		other := started.Add(time.Second)
		late := validating
		late.StartedAt, late.ValidationStatus = &other, vigil.ValidationFailed
		ok, err = c.UpdateRestoreJobAt(ctx, &late, catalog.StepOf(&validating))
		requireNoError(t, err)
		if ok {
			t.Fatal("an attempt that did not start the test wrote it")
		}

		// Another worker ends it; the attempt's verdict, written from the
		// step it knew, is refused.
		reaped := validating
		reaped.ValidationStatus, reaped.ValidationMessage, reaped.DeletionStatus = vigil.ValidationAborted, "its worker was counted dead", vigil.DeletionDeleting
		ok, err = c.UpdateRestoreJobAt(ctx, &reaped, catalog.StepOf(&validating))
		requireNoError(t, err)
		if !ok {
			t.Fatal("the test could not be ended from the step it was at")
		}
		verdict := validating
		verdict.ValidationStatus, verdict.DeletionStatus = vigil.ValidationSuccessful, vigil.DeletionDeleting
		ok, err = c.UpdateRestoreJobAt(ctx, &verdict, catalog.StepOf(&validating))
		requireNoError(t, err)
		if ok {
			t.Fatal("a verdict was written over the one of the worker that ended the test")
		}
		got, err := c.GetRestoreJob(ctx, job.ID)
		requireNoError(t, err)
		if got.ValidationStatus != vigil.ValidationAborted || got.ValidationMessage != reaped.ValidationMessage {
			t.Fatalf("test is %s %q; want the ABORTED it was ended with", got.ValidationStatus, got.ValidationMessage)
		}

		// Its deletion, written from the step the catalog holds, is.
		deleted := got
		deleted.DeletionStatus = vigil.DeletionSuccessful
		ok, err = c.UpdateRestoreJobAt(ctx, &deleted, catalog.StepOf(&got))
		requireNoError(t, err)
		if !ok {
			t.Fatal("the deletion of an ended test's copy could not be recorded")
		}
	})
}

// TestClaimDeadWorker: one worker wins the claim on a dead one; a live
// or stopped worker cannot be claimed.
func TestClaimDeadWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		start := time.Now().UTC().Truncate(time.Microsecond)
		for _, id := range []string{"dead-1", "live-1", "stopped-1"} {
			requireNoError(t, c.RegisterWorker(ctx, catalog.Worker{ID: id, Node: id, Host: "h", PID: 1, StartedAt: start, LastHeartbeatAt: start, Concurrency: map[string]int{}}))
		}
		requireNoError(t, c.HeartbeatWorker(ctx, "live-1", start.Add(time.Minute), nil))
		requireNoError(t, c.StopWorker(ctx, "stopped-1", start))
		stale := start.Add(time.Second)
		for _, tc := range []struct {
			id, by string
			want   bool
		}{{"dead-1", "a", true}, {"dead-1", "b", false}, {"live-1", "a", false}, {"stopped-1", "a", false}} {
			ok, err := c.ClaimDeadWorker(ctx, tc.id, stale, tc.by)
			requireNoError(t, err)
			if ok != tc.want {
				t.Errorf("ClaimDeadWorker(%s) by %s = %v, want %v", tc.id, tc.by, ok, tc.want)
			}
		}
		ws, err := c.ListWorkers(ctx)
		requireNoError(t, err)
		for _, w := range ws {
			if want := map[string]string{"dead-1": "a"}[w.ID]; w.ReapedBy != want {
				t.Errorf("worker %s reaped by %q, want %q", w.ID, w.ReapedBy, want)
			}
		}

		// dead-1 was only cut off: it beats again and rejoins, and when
		// it goes silent again it is claimed again.
		requireNoError(t, c.HeartbeatWorker(ctx, "dead-1", start.Add(time.Minute), nil))
		requireNoError(t, c.RejoinWorker(ctx, "dead-1"))
		ok, err := c.ClaimDeadWorker(ctx, "dead-1", start.Add(2*time.Minute), "b")
		requireNoError(t, err)
		if !ok {
			t.Error("a worker that rejoined and went silent again could not be claimed again")
		}
	})
}
