package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/treediff"
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
// announced, and it still deletes the copy it made, recording that. It
// is a live worker again, which is reaped again when cut off again.
func TestStopWorkerMidRestoreTest(t *testing.T) {
	e := appTestEnv(t, "lifecycle: {check_interval: 1s}\n")
	w1Dir := e.path("vigil-data/workers/w1/restore-tests")
	// Long enough for w1 to be stopped, counted dead and reaped within
	// it; the pause's clock runs on while w1 is stopped.
	w1, _, first := appTestOnW1(t, e, "15s")

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

	// w1 is one of the live workers again, and says what happened; cut
	// off again, it is counted dead and reaped again.
	waitFor(t, 30*time.Second, "w1 to be listed ALIVE, no longer reaped", func() bool {
		w, ok := e.aliveWorkers()["w1"]
		return ok && w.ReapedBy == ""
	})
	w1.freeze(t)
	waitFor(t, 30*time.Second, "w1, cut off again, to be reaped again", func() bool {
		var ws []api.Worker
		e.mustJSON(&ws, "workers", "list")
		for _, w := range ws {
			if w.Node == "w1" && w.State == "DEAD" && w.ReapedBy != "" {
				return true
			}
		}
		return false
	})
	w1.thaw(t)
	w1.stop(t)
	if !strings.Contains(w1.log.String(), "counted dead while it was cut off") {
		t.Errorf("w1's log does not say it was counted dead while it was cut off:\n%s", w1.log)
	}
}

// plainRestoreEnv is two workers' installation for plain restores of the
// docs tree, with a recovery point of it made on w1, which holds each
// restore for pause after it wrote its files and before it records its
// end.
func plainRestoreEnv(t *testing.T, pause string) (*testEnv, *workerProc, vigil.BackupJob) {
	dsn, _, _ := postgresSchema(t)
	e := newEnv(t, envOptions{catalog: dsn, extra: "node: api-node\nworkers: {heartbeat_timeout: 3s}\n"})
	makeTree(t, e.path("docs"))
	e.mustRun("migrate")
	e.serve("--workers", "0")
	plain := e.env
	e.env = append(plain, "VIGIL_TEST_RESTORE_PAUSE=record="+pause)
	w1 := e.startWorker("--node", "w1")
	e.env = plain
	waitFor(t, 30*time.Second, "serve and w1 to be listed ALIVE", func() bool { return len(e.aliveWorkers()) == 2 })
	return e, w1, e.backup("docs")
}

// startHeldRestore starts a plain restore of b into target, waits until
// w1 holds it with its files written, then starts w2.
func (e *testEnv) startHeldRestore(b vigil.BackupJob, target string) vigil.RestoreJob {
	e.t.Helper()
	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", b.RecoveryPointID, "--set", "target_path="+target)
	waitFor(e.t, time.Minute, "restore "+rj.ID+" to be held on w1 with its files written", func() bool {
		return strings.Contains(e.logText(rj.ID), "before record (VIGIL_TEST_RESTORE_PAUSE)")
	})
	e.mustJSON(&rj, "jobs", "show", rj.ID)
	if rj.Status != vigil.RestoreRunning || rj.Node != "w1" {
		e.t.Fatalf("restore %s is %s on %q; want RUNNING on w1", rj.ID, rj.Status, rj.Node)
	}
	if diffs, err := treediff.Compare(e.path("docs"), target, treediff.Options{}); err != nil || len(diffs) > 0 {
		e.t.Fatalf("the held restore has not written its files into %s: %v %v", target, err, diffs)
	}
	e.startWorker("--node", "w2")
	waitFor(e.t, 30*time.Second, "w2 to be listed ALIVE", func() bool { _, ok := e.aliveWorkers()["w2"]; return ok })
	return rj
}

// requireRestoredAgain checks that target and w1's claims are gone, and
// that a new restore into target runs and completes.
func (e *testEnv) requireRestoredAgain(b vigil.BackupJob, target string) {
	e.t.Helper()
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		e.t.Errorf("the aborted restore's folder %s is still there (%v)", target, err)
	}
	if claims, _ := os.ReadDir(e.path("vigil-data/workers/w1/restore-claims")); len(claims) != 0 {
		e.t.Errorf("the aborted restore's claim on its target is left: %v", claims)
	}
	var again vigil.RestoreJob
	e.mustJSON(&again, "restore", "start", "--recovery-point", b.RecoveryPointID, "--set", "target_path="+target)
	again = e.waitRestore(again.ID)
	if again.Status != vigil.RestoreCompleted {
		e.t.Fatalf("a new restore into %s: %s %q; want COMPLETED", target, again.Status, again.StatusMessage)
	}
	if diffs, err := treediff.Compare(e.path("docs"), target, treediff.Options{}); err != nil || len(diffs) > 0 {
		e.t.Errorf("the new restore's folder %s is not the backup: %v %v", target, err, diffs)
	}
}

// TestKillWorkerMidRestore: a kill -9 of the worker running a plain
// restore ends the restore ABORTED, by the other worker, within the
// heartbeat timeout, naming the dead worker and saying its files are
// removed when that worker's node starts again; a new restore into the
// target is refused meanwhile (what the dead one wrote is there). When
// the node starts again, it removes the partial files and releases its
// hold on the target, and a new restore into it completes.
func TestKillWorkerMidRestore(t *testing.T) {
	e, w1, b := plainRestoreEnv(t, "1m")
	target := e.path("restored/docs")
	rj := e.startHeldRestore(b, target)
	w1.kill()
	killedAt := time.Now()

	rj = e.waitRestore(rj.ID)
	if rj.CompletedAt != nil {
		t.Logf("the killed worker's restore ended %s after the kill (heartbeat_timeout 3s)", rj.CompletedAt.Sub(killedAt).Round(100*time.Millisecond))
	}
	if rj.Status != vigil.RestoreAborted || !strings.Contains(rj.StatusMessage, "counted dead") || !strings.Contains(rj.StatusMessage, "w1-") ||
		!strings.Contains(rj.StatusMessage, target) {
		t.Errorf("the restore w1 ran when killed ended %s %q; want ABORTED, naming worker w1 counted dead and the target", rj.Status, rj.StatusMessage)
	}
	if rj.DeletionStatus != vigil.DeletionDeleting || !strings.Contains(rj.DeletionMessage, "pending on node w1") {
		t.Errorf("the killed worker's restore: deletion %s %q; want DELETING, pending on node w1", rj.DeletionStatus, rj.DeletionMessage)
	}
	if r := e.run("restore", "start", "--recovery-point", b.RecoveryPointID, "--set", "target_path="+target); r.code == 0 || !strings.Contains(r.stderr, "not empty") {
		t.Errorf("a restore into %s while the dead one's files are there: exit %d, %s; want a refusal saying it is not empty", target, r.code, r.stderr)
	}
	// The workers list and the console's overview say what waits on w1.
	var ws []api.Worker
	e.mustJSON(&ws, "workers", "list")
	if pending := pendingOn(ws, "w1"); len(pending) != 1 || pending[0] != rj.ID {
		t.Errorf("workers list shows clean-up pending on w1 for %v, want the killed restore [%s]", pending, rj.ID)
	}
	if page := e.consolePage("/"); !strings.Contains(page, "partial files of restore") || !strings.Contains(page, rj.ID) {
		t.Errorf("the console's overview does not show the killed restore's partial files waiting on w1")
	}

	// w1's node starts again: it removes what the restore wrote.
	w1 = e.startWorker("--node", "w1")
	waitFor(t, time.Minute, "w1 to remove what the killed restore wrote", func() bool {
		e.mustJSON(&rj, "jobs", "show", rj.ID)
		return rj.DeletionStatus == vigil.DeletionSuccessful
	})
	e.mustJSON(&ws, "workers", "list")
	if pending := pendingOn(ws, "w1"); len(pending) != 0 {
		t.Errorf("workers list still shows clean-up pending on w1 after its removal: %v", pending)
	}
	if rj.Status != vigil.RestoreAborted || !strings.Contains(rj.StatusMessage, "counted dead") {
		t.Errorf("the killed restore after its node came back: %s %q; want it still ABORTED as the reaper ended it", rj.Status, rj.StatusMessage)
	}
	e.requireRestoredAgain(b, target)
	if n := e.finalEvents(restoreFinals...)[rj.ID]; n != 1 {
		t.Errorf("the killed restore has %d final events, want 1", n)
	}
	w1.stop(t)
}

// TestStopWorkerMidRestore: a worker stopped (SIGSTOP) while its plain
// restore writes is counted dead and the other worker ends the restore
// ABORTED. When it carries on (SIGCONT), its restore's end is not
// recorded over the reaper's (no COMPLETED, no second event); it removes
// what it wrote and its hold on the target, and a new restore into the
// target completes.
func TestStopWorkerMidRestore(t *testing.T) {
	e, w1, b := plainRestoreEnv(t, "12s")
	target := e.path("restored/docs")
	rj := e.startHeldRestore(b, target)
	w1.freeze(t)
	rj = e.waitRestore(rj.ID)
	reaped := rj
	w1.thaw(t)
	if rj.Status != vigil.RestoreAborted || !strings.Contains(rj.StatusMessage, "counted dead") || !strings.Contains(rj.StatusMessage, "w1-") {
		t.Fatalf("the stopped worker's restore ended %s %q; want ABORTED, naming worker w1 counted dead", rj.Status, rj.StatusMessage)
	}
	waitFor(t, time.Minute, "w1 to remove what its restore wrote", func() bool {
		e.mustJSON(&rj, "jobs", "show", rj.ID)
		return rj.DeletionStatus == vigil.DeletionSuccessful
	})
	if rj.Status != reaped.Status || rj.StatusMessage != reaped.StatusMessage {
		t.Errorf("after w1 carried on, the restore is %s %q; want the reaper's %s %q", rj.Status, rj.StatusMessage, reaped.Status, reaped.StatusMessage)
	}
	if log := e.logText(rj.ID); !strings.Contains(log, "ended by another worker") {
		t.Errorf("the restore's log does not say w1's late end was dropped:\n%s", log)
	}
	if n := e.finalEvents(restoreFinals...)[rj.ID]; n != 1 {
		t.Errorf("the stopped worker's restore has %d final events, want 1", n)
	}
	e.requireRestoredAgain(b, target)
	w1.stop(t)
}

// TestStopWorkerMidBackup: a worker stopped (SIGSTOP) after its backup
// wrote its snapshot, before it listed the recovery point, is counted
// dead and its backup ended ABORTED by the other worker. When it carries
// on (SIGCONT), no recovery point is listed for the job, no second final
// event is sent, and the snapshot it wrote is deleted from the vault (a
// later maintenance gives its space back): the vault holds as many
// snapshots as the catalog lists recovery points.
func TestStopWorkerMidBackup(t *testing.T) {
	dsn, _, _ := postgresSchema(t)
	e := newEnv(t, envOptions{catalog: dsn, extra: "node: api-node\nworkers: {heartbeat_timeout: 3s}\n"})
	makeTree(t, e.path("docs"))
	e.mustRun("migrate")
	e.serve("--workers", "0")
	e.startWorker("--node", "w2")
	waitFor(t, 30*time.Second, "serve and w2 to be listed ALIVE", func() bool { return len(e.aliveWorkers()) == 2 })
	kept := e.backup("docs") // on w2: a recovery point the vault keeps
	plain := e.env
	e.env = append(plain, "VIGIL_TEST_BACKUP_PAUSE=record=12s")
	w1 := e.startWorker("--node", "w1")
	e.env = plain
	waitFor(t, 30*time.Second, "w1 to be listed ALIVE", func() bool { _, ok := e.aliveWorkers()["w1"]; return ok })

	// Until a backup is held on w1, those w2 takes are let run.
	var job vigil.BackupJob
	waitFor(t, 2*time.Minute, "a backup to be held on w1 with its snapshot written", func() bool {
		if job.ID == "" || job.Status.Final() {
			e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "lab-vault")
		}
		e.mustJSON(&job, "jobs", "show", job.ID)
		return job.Node == "w1" && strings.Contains(e.logText(job.ID), "before record (VIGIL_TEST_BACKUP_PAUSE)")
	})
	w1.freeze(t)
	waitFor(t, 30*time.Second, "the stopped worker's backup to be ended by another", func() bool {
		e.mustJSON(&job, "jobs", "show", job.ID)
		return job.Status.Final()
	})
	reaped := job
	w1.thaw(t)
	if job.Status != vigil.BackupAborted || !strings.Contains(job.StatusMessage, "counted dead") {
		t.Fatalf("the stopped worker's backup ended %s %q; want ABORTED, its worker counted dead", job.Status, job.StatusMessage)
	}
	waitFor(t, time.Minute, "w1 to drop its late snapshot", func() bool {
		return strings.Contains(e.logText(job.ID), "was deleted from the vault")
	})
	e.mustJSON(&job, "jobs", "show", job.ID)
	if job.Status != reaped.Status || job.StatusMessage != reaped.StatusMessage || job.RecoveryPointID != "" {
		t.Errorf("after w1 carried on, the backup is %s %q, recovery point %q; want the reaper's %s %q and none",
			job.Status, job.StatusMessage, job.RecoveryPointID, reaped.Status, reaped.StatusMessage)
	}
	finals := e.finalEvents(vigil.EventBackupJobCompleted, vigil.EventBackupJobFailed)
	if finals[job.ID] != 1 {
		t.Errorf("the stopped worker's backup has %d final events, want 1", finals[job.ID])
	}
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list")
	for _, rp := range rps {
		if rp.BackupJobID == job.ID {
			t.Errorf("recovery point %s is listed for the aborted backup %s", rp.ID, job.ID)
		}
	}
	out := e.mustRun("vault", "verify", "lab-vault")
	m := regexp.MustCompile(`folder listings of (\d+) snapshots?`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "no damage found") {
		t.Fatalf("vault verify: %s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n != len(rps) {
		t.Errorf("the vault holds %d snapshots, the catalog lists %d recovery points (%s among them): the aborted backup's snapshot is left in the vault", n, len(rps), kept.RecoveryPointID)
	}
	w1.stop(t)
}
