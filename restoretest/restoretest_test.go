package restoretest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/resourcetest"
	"github.com/vigil-backup/vigil/restoretest"
)

// faultyLab is a Lab with one resource of the faulty type, "shop", whose
// copy must answer HTTP 200 on / within the plan "nightly"'s window.
func faultyLab(t *testing.T) (*resourcetest.Lab, *resourcetest.Faulty, vigil.RecoveryPoint) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "shop.data")
	if err := os.WriteFile(src, []byte("orders: 42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		DataDir: filepath.Join(dir, "data"),
		Resources: []config.Resource{{Name: "shop", Type: resourcetest.FaultyType, Path: src, Validate: []config.Validator{
			{HTTP: &config.HTTPCheck{Method: "GET", Path: "/", ExpectStatus: 200, Timeout: config.Duration(200 * time.Millisecond)}},
		}}},
		RestoreTesting: []config.RestoreTestPlan{{Name: "nightly", Resources: []string{"shop"},
			RecoveryPoint: config.LatestWithinWindow, SelectionWindowDays: 7,
			ValidationWindow: config.Duration(time.Second), KeepFor: config.Duration(time.Hour)}},
	}
	faulty := resourcetest.NewFaulty(filepath.Join(dir, "outside"))
	lab := resourcetest.NewLab(t, cfg, faulty)
	return lab, faulty, lab.Backup("shop")
}

func wantEvents(t *testing.T, lab *resourcetest.Lab, job vigil.RestoreJob, want ...vigil.EventType) {
	t.Helper()
	if got := lab.Events(job.ID); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// deletedAll checks that the test left nothing: no instance folder, no
// outside thing, no server.
func deletedAll(t *testing.T, lab *resourcetest.Lab, faulty *resourcetest.Faulty, job vigil.RestoreJob) {
	t.Helper()
	if job.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("deletion: %s", resourcetest.Describe(job))
	}
	if _, err := os.Lstat(filepath.Join(lab.Tester.Dir(), job.ID)); !os.IsNotExist(err) {
		t.Errorf("the instance folder is still there: %v", err)
	}
	if _, err := os.Lstat(faulty.OutsidePath(job.ID)); !os.IsNotExist(err) {
		t.Errorf("the copy's outside thing is still there: %v", err)
	}
	if faulty.Serving(job.ID) {
		t.Error("the copy still answers")
	}
}

func TestPasses(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	job := lab.Test(rp, "nightly")
	if job.Status != vigil.RestoreCompleted || job.ValidationStatus != vigil.ValidationSuccessful ||
		!strings.Contains(job.ValidationMessage, "bytes match the recovery point; 1 check passed") {
		t.Fatalf("a good copy: %s", resourcetest.Describe(job))
	}
	if job.Plan != "nightly" || job.TotalSeconds <= 0 || job.RestoreSeconds <= 0 || job.RecoveryPointAgeSeconds <= 0 {
		t.Errorf("plan %q, timings: total %v restore %v age %v", job.Plan, job.TotalSeconds, job.RestoreSeconds, job.RecoveryPointAgeSeconds)
	}
	wantEvents(t, lab, job, vigil.EventRestoreJobStarted, vigil.EventRestoreJobCompleted, vigil.EventRestoreTestStatus)
	deletedAll(t, lab, faulty, job)
}

func TestRestoreFails(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	faulty.Set(resourcetest.Faults{Restore: errors.New("the dump stops at byte 1,024")})
	job := lab.Test(rp, "nightly")
	if job.Status != vigil.RestoreFailed || job.ValidationStatus != vigil.ValidationFailed ||
		job.ValidationMessage != "the restore did not complete: the dump stops at byte 1,024" {
		t.Fatalf("a failed restore: %s", resourcetest.Describe(job))
	}
	wantEvents(t, lab, job, vigil.EventRestoreJobStarted, vigil.EventRestoreJobFailed, vigil.EventRestoreTestStatus)
	// The restore had made its outside thing before it failed: it goes.
	deletedAll(t, lab, faulty, job)
}

func TestAppExitsEarly(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	faulty.Set(resourcetest.Faults{ExitEarly: true})
	job := lab.Test(rp, "nightly")
	if job.ValidationStatus != vigil.ValidationFailed ||
		!strings.Contains(job.ValidationMessage, "the app exited with status 3 before validation passed; its last output:\nfaulty: cannot read faulty.data") {
		t.Fatalf("an app that exits: %s", resourcetest.Describe(job))
	}
	deletedAll(t, lab, faulty, job)
}

func TestValidatorWrongAnswer(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	faulty.Set(resourcetest.Faults{Status: 500})
	job := lab.Test(rp, "nightly")
	if job.ValidationStatus != vigil.ValidationFailed || !strings.Contains(job.ValidationMessage, "500") {
		t.Fatalf("an app that answers 500: %s", resourcetest.Describe(job))
	}
	deletedAll(t, lab, faulty, job)
}

func TestValidatorNeverAnswers(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	faulty.Set(resourcetest.Faults{NoAnswer: true})
	job := lab.Test(rp, "nightly")
	if job.ValidationStatus != vigil.ValidationTimedOut {
		t.Fatalf("an app that never answers: %s", resourcetest.Describe(job))
	}
	if job.ValidationSeconds < 0.9 {
		t.Errorf("the verdict came %vs into a 1s window", job.ValidationSeconds)
	}
	deletedAll(t, lab, faulty, job)
}

// TestKeptOnFailure: a failed copy is kept for inspection, still running,
// and deleted by the sweep once its time is up; its verdict is announced
// once, when it is in.
func TestKeptOnFailure(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	lab.Config.RestoreTesting[0].KeepOnFailure = true
	faulty.Set(resourcetest.Faults{Status: 503})
	job := lab.Test(rp, "nightly")
	if job.KeepUntil == nil || job.DeletionStatus != "" || !faulty.Serving(job.ID) || !strings.Contains(job.DeletionMessage, "kept for inspection") {
		t.Fatalf("a failed copy with keep_on_failure: %s", resourcetest.Describe(job))
	}
	if err := lab.Tester.Sweep(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if !faulty.Serving(job.ID) {
		t.Fatal("the sweep deleted a kept copy before its time")
	}
	job.KeepUntil = ptr(time.Now().UTC().Add(-time.Second))
	if err := lab.Catalog.UpdateRestoreJob(context.Background(), &job); err != nil {
		t.Fatal(err)
	}
	if err := lab.Tester.Sweep(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	job = lab.Job(job.ID)
	deletedAll(t, lab, faulty, job)
	wantEvents(t, lab, job, vigil.EventRestoreJobStarted, vigil.EventRestoreJobCompleted, vigil.EventRestoreTestStatus)
}

// TestDeleteFailsThenSucceeds: a deletion that fails is recorded FAILED,
// with the verdict announced; the sweep tries again and succeeds, and the
// verdict is not announced twice.
func TestDeleteFailsThenSucceeds(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	faulty.Set(resourcetest.Faults{DeleteFailures: 1})
	job := lab.Test(rp, "nightly")
	if job.ValidationStatus != vigil.ValidationSuccessful || job.DeletionStatus != vigil.DeletionFailed ||
		!strings.Contains(job.DeletionMessage, "the faulty copy refused to go; vigil tries again every 1h0m0s") {
		t.Fatalf("a failed deletion: %s", resourcetest.Describe(job))
	}
	if !faulty.Serving(job.ID) {
		t.Error("the copy that refused to go is gone")
	}
	if err := lab.Tester.Sweep(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	job = lab.Job(job.ID)
	if faulty.Deletes() != 2 {
		t.Errorf("%d deletions tried, want 2", faulty.Deletes())
	}
	deletedAll(t, lab, faulty, job)
	wantEvents(t, lab, job, vigil.EventRestoreJobStarted, vigil.EventRestoreJobCompleted, vigil.EventRestoreTestStatus)
}

// TestOutsideStartWindow: a scheduled test that could not start within
// its plan's start window is abandoned, with a verdict and its events,
// and creates nothing.
func TestOutsideStartWindow(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	lab.Config.RestoreTesting[0].StartWindow = config.Duration(time.Hour)
	job := lab.Queue(rp, "nightly")
	job.CreatedAt = time.Now().UTC().Add(-2 * time.Hour)
	if err := lab.Tester.Run(context.Background(), &job); err != nil {
		t.Fatal(err)
	}
	got := lab.Job(job.ID)
	if got.Status != vigil.RestoreAborted || got.ValidationStatus != vigil.ValidationFailed ||
		!strings.Contains(got.ValidationMessage, "start window of 1h0m0s") || got.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("abandoned test: %s", resourcetest.Describe(got))
	}
	wantEvents(t, lab, got, vigil.EventRestoreJobFailed, vigil.EventRestoreTestStatus)
	if _, err := os.Lstat(filepath.Join(lab.Tester.Dir(), job.ID)); !os.IsNotExist(err) {
		t.Errorf("an abandoned test created its instance: %v", err)
	}
	if faulty.Deletes() != 0 {
		t.Errorf("an abandoned test deleted %d copies", faulty.Deletes())
	}
}

// TestFaultyConformance runs the conformance suite on the faulty type,
// which covers a crash before, in and after each step of the loop for a
// copy that starts something.
func TestFaultyConformance(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "shop.data")
	if err := os.WriteFile(src, []byte("orders: 42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	faulty := resourcetest.NewFaulty(filepath.Join(dir, "outside"))
	exists := func(_ testing.TB, job vigil.RestoreJob) bool {
		_, err := os.Lstat(faulty.OutsidePath(job.ID))
		return err == nil
	}
	resourcetest.Conformance(t, resourcetest.Case{
		Type: faulty,
		Resource: config.Resource{Name: "shop", Type: resourcetest.FaultyType, Path: src, Validate: []config.Validator{
			{HTTP: &config.HTTPCheck{Method: "GET", Path: "/", ExpectStatus: 200, Timeout: config.Duration(time.Second)}},
		}},
		Damage: func(t testing.TB, cp resource.Copy, _ vigil.RestoreJob) {
			if err := os.Truncate(filepath.Join(cp.Location(), "faulty.data"), 3); err != nil {
				t.Fatal(err)
			}
		},
		Exists: exists,
		Squat: func(t testing.TB, job vigil.RestoreJob) {
			if err := os.MkdirAll(faulty.Outside, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(faulty.OutsidePath(job.ID), []byte("someone else's"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func ptr[T any](v T) *T { return &v }

// TestAppDaemonizes: an app whose main process exits with status 0 and
// leaves a daemon that answers did not run as configured: the verdict
// says so, and how to fix it.
func TestAppDaemonizes(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	faulty.Set(resourcetest.Faults{Daemonize: true})
	job := lab.Test(rp, "nightly")
	if job.ValidationStatus != vigil.ValidationFailed ||
		!strings.Contains(job.ValidationMessage, "the app's main process exited with status 0 and left 1 process running") ||
		!strings.Contains(job.ValidationMessage, "run it in the foreground (for Redis: --daemonize no") {
		t.Fatalf("a daemonizing app: %s", resourcetest.Describe(job))
	}
	deletedAll(t, lab, faulty, job)
}

// TestInterruptedTestsAreTriedAgain: a test that vigil's death cuts short
// ends ABORTED and a new test of the same recovery point is queued, at
// most retry_interrupted times; then the log says why there is no more.
func TestInterruptedTestsAreTriedAgain(t *testing.T) {
	lab, _, rp := faultyLab(t)
	two := 2
	lab.Config.RestoreTesting[0].RetryInterrupted = &two
	lab.Hook(&resourcetest.Hooks{Check: func(resource.Copy) error { resourcetest.Crash(); return nil }})
	job := lab.Queue(rp, "nightly")
	for round := 1; round <= 3; round++ {
		if !lab.Crashed(job) {
			t.Fatalf("round %d: the test ran to its end", round)
		}
		if err := lab.NewTester().Sweep(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		got := lab.Job(job.ID)
		if got.ValidationStatus != vigil.ValidationAborted || got.DeletionStatus != vigil.DeletionSuccessful {
			t.Fatalf("round %d: %s", round, resourcetest.Describe(got))
		}
		pending := lab.Pending(rp)
		if round == 3 {
			if len(pending) != 0 {
				t.Fatalf("a third retry was queued: %v", pending)
			}
			logs, _ := lab.Catalog.Logs(context.Background(), job.ID)
			if last := logs[len(logs)-1].Message; !strings.Contains(last, "not tested again: 3 tests of recovery point") || !strings.Contains(last, "retries 2 times") {
				t.Errorf("the last log line of the third interrupted test: %q", last)
			}
			return
		}
		if len(pending) != 1 || pending[0].Plan != "nightly" {
			t.Fatalf("round %d: queued again %+v, want one test under plan nightly", round, pending)
		}
		job = pending[0]
	}
}

// TestDeletionGivesUp: a copy that cannot be deleted is tried a bounded
// number of times; then vigil stops, says so in RESTORE_TEST_CLEANUP_FAILED
// once, and leaves the copy to a person.
func TestDeletionGivesUp(t *testing.T) {
	lab, faulty, rp := faultyLab(t)
	faulty.Set(resourcetest.Faults{DeleteFailures: 1000})
	job := lab.Test(rp, "nightly")
	for range restoretest.MaxDeletionAttempts + 3 {
		if err := lab.Tester.Sweep(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	job = lab.Job(job.ID)
	if job.DeletionStatus != vigil.DeletionFailed || job.DeletionAttempts != restoretest.MaxDeletionAttempts ||
		!strings.Contains(job.DeletionMessage, "vigil has given up: delete it by hand") {
		t.Fatalf("a copy that cannot be deleted: %s (attempts %d)", resourcetest.Describe(job), job.DeletionAttempts)
	}
	if faulty.Deletes() != restoretest.MaxDeletionAttempts {
		t.Errorf("%d deletions tried, want %d", faulty.Deletes(), restoretest.MaxDeletionAttempts)
	}
	wantEvents(t, lab, job, vigil.EventRestoreJobStarted, vigil.EventRestoreJobCompleted, vigil.EventRestoreTestStatus, vigil.EventRestoreTestCleanupFailed)
}
