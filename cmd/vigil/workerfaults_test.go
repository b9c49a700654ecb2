package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
)

// The faults of a worker on a shared PostgreSQL catalog, beside those of
// workers_test.go: a worker killed during a plain restore, and a worker
// that is cut off (SIGSTOP) past the heartbeat timeout, counted dead and
// reaped, then carries on (SIGCONT) as if nothing had happened. Whatever
// the fault, a job gets one final status and one final event, the
// reaper's word stands, and nothing the stopped worker made is left.

// freeze stops the worker's process (not its children: an app copy it
// started keeps running) as a cut-off machine would be: it writes no
// heartbeat and does nothing until thaw.
func (w *workerProc) freeze(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

func (w *workerProc) thaw(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// finalEvents counts, by job, the events of types.
func (e *testEnv) finalEvents(types ...vigil.EventType) map[string]int {
	e.t.Helper()
	var page api.EventPage
	e.mustJSON(&page, "events", "list")
	n := map[string]int{}
	for _, ev := range page.Events {
		for _, typ := range types {
			if ev.Type == typ {
				n[ev.JobID]++
			}
		}
	}
	return n
}

// restoreFinals are the events that end a restore job.
var restoreFinals = []vigil.EventType{vigil.EventRestoreJobCompleted, vigil.EventRestoreJobFailed}

// TestStopWorkerMidRestoreTest: a worker stopped (SIGSTOP) while its
// restore test validates is counted dead, and the other worker ends the
// test ABORTED. When the stopped worker carries on (SIGCONT), its own
// verdict is not recorded over the reaper's, no second verdict is
// announced, and it still deletes the copy it made, recording that.
func TestStopWorkerMidRestoreTest(t *testing.T) {
	dsn, _, _ := postgresSchema(t)
	e := newEnv(t, envOptions{catalog: dsn, extra: fmt.Sprintf(`  - name: web
    type: app
    path: ./site
    run: %s
    validate:
      - http: {path: /, expect_body: "Welcome"}
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [web]
    validation_window: 1m
node: api-node
workers: {heartbeat_timeout: 3s}
lifecycle: {check_interval: 1s}
`, pythonApp)})
	t.Cleanup(e.killLeaks)
	writeSite(t, e.path("site"))
	w1Dir := e.path("vigil-data/workers/w1/restore-tests")
	e.mustRun("migrate")
	e.serve("--workers", "0")
	plain := e.env
	// Long enough for w1 to be stopped, counted dead and reaped within
	// it; the pause's clock runs on while w1 is stopped.
	e.env = append(plain, "VIGIL_TEST_PAUSE=validate=15s")
	w1 := e.startWorker("--node", "w1")
	e.env = plain
	waitFor(t, 30*time.Second, "serve and w1 to be listed ALIVE", func() bool { return len(e.aliveWorkers()) == 2 })

	b := e.backup("web")
	first := e.testOf(b.RecoveryPointID)
	waitFor(t, time.Minute, "restore test "+first.ID+" to validate on w1", func() bool {
		return strings.Contains(e.logText(first.ID), "before validate (VIGIL_TEST_PAUSE)")
	})
	e.startWorker("--node", "w2")
	waitFor(t, 30*time.Second, "w2 to be listed ALIVE", func() bool { _, ok := e.aliveWorkers()["w2"]; return ok })
	if procs := processesUnder(w1Dir); len(procs) == 0 {
		t.Fatalf("no process of the app copy runs while the test validates; the test would prove nothing; log:\n%s", e.logText(first.ID))
	}

	w1.freeze(t)
	waitFor(t, 30*time.Second, "the stopped worker's test to be ended by another", func() bool {
		e.mustJSON(&first, "jobs", "show", first.ID)
		return first.ValidationStatus.Final()
	})
	reaped := first
	w1.thaw(t)
	if reaped.ValidationStatus != vigil.ValidationAborted || !strings.Contains(reaped.ValidationMessage, "counted dead") || !strings.Contains(reaped.ValidationMessage, "w1-") {
		t.Fatalf("the stopped worker's test: %s %q; want ABORTED, naming worker w1 counted dead", reaped.ValidationStatus, reaped.ValidationMessage)
	}

	// w1 carries on: its validation passes, but the record keeps the
	// reaper's verdict, and w1 deletes its copy.
	waitFor(t, time.Minute, "w1 to delete the copy of "+first.ID, func() bool {
		e.mustJSON(&first, "jobs", "show", first.ID)
		return first.DeletionStatus == vigil.DeletionSuccessful
	})
	if first.ValidationStatus != reaped.ValidationStatus || first.ValidationMessage != reaped.ValidationMessage || first.Status != reaped.Status {
		t.Errorf("after w1 carried on, the test is %s, %s %q; want the reaper's %s, %s %q",
			first.Status, first.ValidationStatus, first.ValidationMessage, reaped.Status, reaped.ValidationStatus, reaped.ValidationMessage)
	}
	if log := e.logText(first.ID); !strings.Contains(log, "ended by another worker") {
		t.Errorf("the test's log does not say w1's late verdict was dropped:\n%s", log)
	}
	waitFor(t, 30*time.Second, "no process or folder of w1's copy", func() bool {
		left, _ := os.ReadDir(w1Dir)
		return len(processesUnder(w1Dir)) == 0 && len(left) == 0
	})

	// The reaper's retry gets the verdict.
	retry := e.retryOf(first)
	retry = e.waitTest(retry.ID)
	if retry.ValidationStatus != vigil.ValidationSuccessful || retry.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("the retry %s: %s %q, deletion %s; want SUCCESSFUL, deleted", retry.ID, retry.ValidationStatus, retry.ValidationMessage, retry.DeletionStatus)
	}
	verdicts := e.finalEvents(vigil.EventRestoreTestStatus)
	restores := e.finalEvents(restoreFinals...)
	if verdicts[first.ID] != 1 || restores[first.ID] != 1 {
		t.Errorf("the stopped worker's test has %d RESTORE_TEST_STATUS and %d final restore events, want 1 of each", verdicts[first.ID], restores[first.ID])
	}
	waitFor(t, 30*time.Second, "no process or folder of any copy on w1", func() bool {
		left, _ := os.ReadDir(w1Dir)
		return len(processesUnder(w1Dir)) == 0 && len(left) == 0
	})
	w1.stop(t)
}
