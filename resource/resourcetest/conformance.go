package resourcetest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
)

// Case is one resource type under the conformance suite.
type Case struct {
	Type resource.Type
	// Resource is a configuration entry of the type whose data exists,
	// with its secrets and tools loaded and its validators as the
	// configuration's defaults would leave them.
	Resource config.Resource
	// Damage changes the restored copy cp of job so that its validation
	// must fail (a file rewritten, rows deleted).
	Damage func(t testing.TB, cp resource.Copy, job vigil.RestoreJob)
	// Exists reports whether anything of the copy of job exists outside
	// its instance folder (a database); nil for types whose copy lives in
	// the instance folder only.
	Exists func(t testing.TB, job vigil.RestoreJob) bool
	// Squat makes, where the copy of job would be made outside its
	// instance folder, a thing that vigil did not make and must leave
	// alone (a database without the job's mark), and removes it when the
	// test ends; nil when Exists is nil.
	Squat func(t testing.TB, job vigil.RestoreJob)
}

// Conformance runs the suite every resource type passes: back up,
// restore into a new copy, the copy validates, a changed copy is caught,
// deletion is idempotent, nothing unmarked is deleted, and after a crash at
// each step of a restore test a restarted vigil ends the test and deletes
// all it made.
func Conformance(t *testing.T, c Case) {
	cfg := &config.Config{Resources: []config.Resource{c.Resource}}
	lab := NewLab(t, cfg, c.Type)
	name := c.Resource.Name
	ctx := context.Background()
	exists := func(job vigil.RestoreJob) bool { return c.Exists != nil && c.Exists(t, job) }
	instanceDir := func(job vigil.RestoreJob) string { return filepath.Join(lab.Tester.Dir(), job.ID) }
	gone := func(t *testing.T, job vigil.RestoreJob) {
		t.Helper()
		if _, err := os.Lstat(instanceDir(job)); !os.IsNotExist(err) {
			t.Errorf("the instance folder of %s is still there (%v)", job.ID, err)
		}
		if exists(job) {
			t.Errorf("the copy of %s still exists outside its instance folder", job.ID)
		}
	}

	rp := lab.Backup(name)
	if rp.SnapshotID == "" || rp.SizeBytes <= 0 {
		t.Fatalf("the backup made no snapshot with data: %+v", rp)
	}

	var passed vigil.RestoreJob
	t.Run("restore test passes", func(t *testing.T) {
		job := lab.Queue(rp, "")
		lab.Hook(&Hooks{Check: func(resource.Copy) error {
			if c.Exists != nil && !exists(job) {
				t.Error("Exists reports nothing for a copy that was just restored")
			}
			return nil
		}})
		defer lab.Hook(nil)
		if err := lab.Tester.Run(ctx, &job); err != nil {
			t.Fatal(err)
		}
		passed = lab.Job(job.ID)
		if passed.ValidationStatus != vigil.ValidationSuccessful || passed.DeletionStatus != vigil.DeletionSuccessful {
			t.Fatalf("the test of a good backup did not pass: %s", Describe(passed))
		}
		want := []vigil.EventType{vigil.EventRestoreJobStarted, vigil.EventRestoreJobCompleted, vigil.EventRestoreTestStatus}
		if got := lab.Events(job.ID); !slices.Equal(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
		gone(t, passed)
	})

	t.Run("a changed copy is caught", func(t *testing.T) {
		job := lab.Queue(rp, "")
		lab.Hook(&Hooks{Check: func(cp resource.Copy) error { c.Damage(t, cp, job); return nil }})
		defer lab.Hook(nil)
		if err := lab.Tester.Run(ctx, &job); err != nil {
			t.Fatal(err)
		}
		got := lab.Job(job.ID)
		if got.ValidationStatus != vigil.ValidationFailed || got.DeletionStatus != vigil.DeletionSuccessful {
			t.Fatalf("a damaged copy was not caught: %s", Describe(got))
		}
		gone(t, got)
	})

	t.Run("delete is idempotent", func(t *testing.T) {
		if passed.ID == "" {
			t.Fatal("the passing test made no copy to delete again: see its failure")
		}
		res := lab.Open(name)
		for i := range 2 {
			cp, err := res.Copy(&passed, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cp.Delete(ctx); err != nil {
				t.Errorf("deleting a deleted copy again (%d): %v", i+1, err)
			}
		}
	})

	// vigil stopped after recording a test's start; restarted, it finds
	// where the copy would be things it did not make.
	interrupted := func(t *testing.T) vigil.RestoreJob {
		job := lab.Queue(rp, "")
		job.Status, job.StartedAt, job.Node = vigil.RestoreRunning, ptr(job.CreatedAt), lab.Config.Node
		if err := lab.Catalog.UpdateRestoreJob(ctx, &job); err != nil {
			t.Fatal(err)
		}
		return job
	}

	t.Run("an unmarked instance folder is left alone", func(t *testing.T) {
		job := interrupted(t)
		foreign := filepath.Join(instanceDir(job), "data", "theirs.txt")
		if err := os.MkdirAll(filepath.Dir(foreign), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(foreign, []byte("not vigil's"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(instanceDir(job))
		lab.NewTester().Sweep(ctx, true) // says it could not delete the folder
		if _, err := os.Stat(foreign); err != nil {
			t.Errorf("an unmarked instance folder was touched: %v", err)
		}
		got := lab.Job(job.ID)
		if got.ValidationStatus != vigil.ValidationAborted || got.DeletionStatus != vigil.DeletionFailed {
			t.Errorf("the interrupted test did not end ABORTED with a failed deletion: %s", Describe(got))
		}
		// Later sweeps of this Lab need not trip over it again.
		got.DeletionStatus = vigil.DeletionSuccessful
		if err := lab.Catalog.UpdateRestoreJob(ctx, &got); err != nil {
			t.Fatal(err)
		}
	})

	squat := func(t *testing.T) {
		job := interrupted(t)
		c.Squat(t, job)
		if err := lab.NewTester().Sweep(ctx, true); err != nil {
			t.Fatalf("sweep: %v", err)
		}
		if !exists(job) {
			t.Error("a copy without the job's mark was deleted")
		}
		if got := lab.Job(job.ID); !got.Ended() {
			t.Errorf("the interrupted test did not end: %s", Describe(got))
		}
	}
	if c.Squat != nil {
		t.Run("an unmarked copy is left alone", squat)
	}

	steps := []struct {
		name  string
		hooks func(crash func(resource.Copy) error) Hooks
	}{
		{"before the restore", func(crash func(resource.Copy) error) Hooks { return Hooks{Restore: crash} }},
		{"after the restore", func(crash func(resource.Copy) error) Hooks { return Hooks{Restored: crash} }},
		{"during validation", func(crash func(resource.Copy) error) Hooks { return Hooks{Check: crash} }},
		{"at the start", func(crash func(resource.Copy) error) Hooks { return Hooks{Start: crash} }},
		{"during the deletion", func(crash func(resource.Copy) error) Hooks { return Hooks{Delete: crash} }},
	}
	crash := func(resource.Copy) error { Crash(); return nil }
	probe, err := lab.Open(name).Copy(&vigil.RestoreJob{ID: "rj-probe"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, starts := probe.(resource.Starter)
	for _, step := range steps {
		if h := step.hooks(crash); h.Start != nil && !starts {
			continue // the type starts nothing
		}
		t.Run("crash "+step.name, func(t *testing.T) {
			// A recovery point of its own: interrupted tests are retried a
			// bounded number of times per recovery point.
			rp := lab.Backup(name)
			job := lab.Queue(rp, "")
			h := step.hooks(crash)
			lab.Hook(&h)
			died := lab.Crashed(job)
			lab.Hook(nil)
			if !died {
				t.Fatalf("the test ran to its end instead of crashing: %s", Describe(lab.Job(job.ID)))
			}
			if err := lab.NewTester().Sweep(ctx, true); err != nil {
				t.Fatalf("the sweep after the crash: %v", err)
			}
			got := lab.Job(job.ID)
			if !got.Ended() || got.DeletionStatus != vigil.DeletionSuccessful {
				t.Fatalf("the restarted loop did not end the test and delete its copy: %s", Describe(got))
			}
			if n := slices.Index(lab.Events(job.ID), vigil.EventRestoreTestStatus); n < 0 {
				t.Errorf("no RESTORE_TEST_STATUS for the interrupted test: %v", lab.Events(job.ID))
			}
			gone(t, got)
			if h.Delete != nil {
				return // the verdict was in before the crash
			}
			// Nothing was learned about the backup: the test is ABORTED,
			// and a new one of the same recovery point gets the verdict.
			if got.ValidationStatus != vigil.ValidationAborted {
				t.Errorf("an interrupted test ended %s, want ABORTED: %s", got.ValidationStatus, Describe(got))
			}
			retries := lab.Pending(rp)
			if len(retries) != 1 {
				t.Fatalf("%d new tests of recovery point %s were queued after the interruption, want 1", len(retries), rp.ID)
			}
			again := retries[0]
			if err := lab.Tester.Run(ctx, &again); err != nil {
				t.Fatal(err)
			}
			if again = lab.Job(again.ID); again.ValidationStatus != vigil.ValidationSuccessful {
				t.Errorf("the test queued again did not pass: %s", Describe(again))
			}
			gone(t, again)
		})
	}
}

func ptr[T any](v T) *T { return &v }
