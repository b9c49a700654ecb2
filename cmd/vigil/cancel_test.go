package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
)

// cancelConfig is an installation with an app, web, whose every backup is
// restore-tested, and a large tree, big, backed up one at a time, so
// that a second backup of it stays PENDING while the first runs; restore
// tests, too, run one at a time.
func cancelConfig() string {
	return `  - name: big
    type: directory
    path: ./big
` + webAppYAML() + "workers: {backup: 1, restore_test: 1, heartbeat_timeout: 3s}\n"
}

// cancelPauses hold every restore test before it validates, and every
// plain restore after it wrote its files, long enough to cancel them there.
var cancelPauses = []string{"VIGIL_TEST_PAUSE=validate=3m", "VIGIL_TEST_RESTORE_PAUSE=record=3m"}

// TestCancelOnSQLite cancels jobs of one `vigil serve`: River's cancel of
// a running job reaches it by polling there (SQLite has no LISTEN/NOTIFY).
func TestCancelOnSQLite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{extra: cancelConfig()})
	t.Cleanup(e.killLeaks)
	writeSite(t, e.path("site"))
	makeLargeTree(t, e.path("big"), 40, 8<<20)
	e.env = append(e.env, cancelPauses...)
	e.serve()
	e.cancelScenario(e.instancesDir())
	e.stop()
}

// TestCancelAcrossProcesses cancels through `serve --workers 0` the jobs
// that a `vigil worker` runs, on PostgreSQL: the cancel crosses processes.
func TestCancelAcrossProcesses(t *testing.T) {
	t.Parallel()
	dsn, _, _ := postgresSchema(t)
	e := newEnv(t, envOptions{catalog: dsn, extra: cancelConfig() + "node: api-node\n"})
	t.Cleanup(e.killLeaks)
	writeSite(t, e.path("site"))
	makeLargeTree(t, e.path("big"), 40, 8<<20)
	e.mustRun("migrate")
	e.serve("--workers", "0")
	plain := e.env
	e.env = append(plain, cancelPauses...)
	w1 := e.startWorker("--node", "w1")
	e.env = plain
	waitFor(t, 30*time.Second, "serve and w1 to be listed ALIVE", func() bool { return len(e.aliveWorkers()) == 2 })
	e.cancelScenario(e.path("vigil-data/workers/w1/restore-tests"))
	w1.stop(t)
	e.stop()
}

// cancelScenario cancels a restore test while it validates, a plain
// restore that wrote its files, a PENDING backup and a running one, and
// is refused the cancel of a finished job. Restore tests' copies are made
// under instances.
func (e *testEnv) cancelScenario(instances string) {
	t := e.t
	t.Helper()

	// A restore test, while it validates a running copy.
	b := e.backup("web")
	if b.Status != vigil.BackupCompleted {
		t.Fatalf("backup of web ended %s: %s", b.Status, b.StatusMessage)
	}
	test := e.testOf(b.RecoveryPointID)
	waitFor(t, time.Minute, "restore test "+test.ID+" to validate", func() bool {
		return strings.Contains(e.logText(test.ID), "before validate (VIGIL_TEST_PAUSE)")
	})
	if procs := processesUnder(instances); len(procs) == 0 {
		t.Fatalf("no process of the app copy runs while the test validates; the test would prove nothing; log:\n%s", e.logText(test.ID))
	}
	// A second test, queued behind it: cancelled before it runs.
	var queued vigil.RestoreJob
	e.mustJSON(&queued, "restore-test", "start", "--resource", "web")
	var res api.CancelResponse
	e.mustJSON(&res, "jobs", "cancel", queued.ID, "--no-wait")
	e.mustJSON(&queued, "jobs", "show", queued.ID)
	if res.Status != string(vigil.RestoreAborted) || queued.ValidationStatus != vigil.ValidationAborted || queued.StartedAt != nil ||
		!strings.HasPrefix(queued.StatusMessage, "cancelled through the API; it had not started") {
		t.Errorf("cancelled queued restore test: answered %s, then %s, validation %s (started %v) %q; want ABORTED at once, never started",
			res.Status, queued.Status, queued.ValidationStatus, queued.StartedAt, queued.StatusMessage)
	}
	e.requireEvents(queued.ID, map[vigil.EventType]int{vigil.EventRestoreTestStatus: 1, vigil.EventRestoreJobStarted: 0})

	begin := time.Now()
	out := e.mustRun("jobs", "cancel", test.ID, "--reason", "wrong recovery point")
	t.Logf("restore test cancelled and cleaned up in %s", time.Since(begin).Round(time.Millisecond))
	e.mustJSON(&test, "jobs", "show", test.ID)
	want := "cancelled through the API: wrong recovery point; validation was cut short"
	if test.ValidationStatus != vigil.ValidationAborted || !strings.HasPrefix(test.ValidationMessage, want) ||
		test.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("cancelled restore test: validation %s %q, deletion %s; want ABORTED %q, its copy deleted\ncancel said:\n%s\nlog:\n%s",
			test.ValidationStatus, test.ValidationMessage, test.DeletionStatus, want, out, e.logText(test.ID))
	}
	e.requireNoLeakIn(instances)
	e.requireEvents(test.ID, map[vigil.EventType]int{vigil.EventRestoreTestStatus: 1, vigil.EventRestoreJobFailed: 0})
	var restores []vigil.RestoreJob
	e.mustJSON(&restores, "jobs", "list", "--type", "restore")
	for _, j := range restores {
		if j.RestoreTest && j.RecoveryPointID == b.RecoveryPointID && j.ID != test.ID && j.ID != queued.ID {
			t.Errorf("a cancelled test was queued again (%s): a person stopped it", j.ID)
		}
	}

	// A plain restore, held once it wrote its files: they go.
	target := e.path("restored")
	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", b.RecoveryPointID, "--set", "target_path="+target)
	waitFor(t, time.Minute, "restore "+rj.ID+" to be held with its files written", func() bool {
		return strings.Contains(e.logText(rj.ID), "before record (VIGIL_TEST_RESTORE_PAUSE)")
	})
	if files := filesIn(t, target); len(files) == 0 {
		t.Fatalf("the held restore wrote nothing into %s; the test would prove nothing", target)
	}
	e.mustRun("jobs", "cancel", rj.ID)
	e.mustJSON(&rj, "jobs", "show", rj.ID)
	if rj.Status != vigil.RestoreAborted || !strings.HasPrefix(rj.StatusMessage, "cancelled through the API;") {
		t.Errorf("cancelled restore: %s %q; want ABORTED \"cancelled through the API; …\"", rj.Status, rj.StatusMessage)
	}
	if files := filesIn(t, target); len(files) > 0 {
		t.Errorf("the cancelled restore left %v in its target", files)
	}
	e.requireEvents(rj.ID, map[vigil.EventType]int{vigil.EventRestoreJobFailed: 1, vigil.EventRestoreJobCompleted: 0})

	// A finished job: 409, saying its status.
	r := e.run("jobs", "cancel", b.ID)
	if r.code != 1 || !strings.Contains(r.stderr, "has ended already, COMPLETED") {
		t.Errorf("cancel of a completed backup: exit %d, %q; want exit 1 saying it ended COMPLETED", r.code, r.stderr)
	}
	if code := e.postCancel(b.ID); code != http.StatusConflict {
		t.Errorf("POST /api/v1/jobs/%s/cancel of a completed backup answered %d, want 409", b.ID, code)
	}

	// A running backup, and a PENDING one queued behind it.
	var running, pending vigil.BackupJob
	e.mustJSON(&running, "backup", "start", "--resource", "big", "--vault", "lab-vault")
	waitFor(t, time.Minute, "backup "+running.ID+" to run", func() bool {
		e.mustJSON(&running, "jobs", "show", running.ID)
		return running.Status == vigil.BackupRunning
	})
	e.mustJSON(&pending, "backup", "start", "--resource", "big", "--vault", "lab-vault")
	e.mustJSON(&res, "jobs", "cancel", pending.ID, "--no-wait")
	e.mustJSON(&pending, "jobs", "show", pending.ID)
	if res.Status != string(vigil.BackupAborted) || pending.Status != vigil.BackupAborted || pending.StartedAt != nil ||
		!strings.HasPrefix(pending.StatusMessage, "cancelled through the API; it had not started") {
		t.Errorf("cancelled pending backup: answered %s, then %s (started %v) %q; want ABORTED at once, never started", res.Status, pending.Status, pending.StartedAt, pending.StatusMessage)
	}
	begin = time.Now()
	e.mustRun("jobs", "cancel", running.ID, "--reason", "maintenance window")
	t.Logf("running backup cancelled in %s", time.Since(begin).Round(time.Millisecond))
	e.mustJSON(&running, "jobs", "show", running.ID)
	t.Logf("messages: test %q; restore %q; pending backup %q; running backup %q", test.ValidationMessage, rj.StatusMessage, pending.StatusMessage, running.StatusMessage)
	if running.Status != vigil.BackupAborted || !strings.HasPrefix(running.StatusMessage, "cancelled through the API: maintenance window;") ||
		running.RecoveryPointID != "" {
		t.Errorf("cancelled running backup: %s %q, recovery point %q; want ABORTED \"cancelled through the API: maintenance window; …\" and none\nlog:\n%s",
			running.Status, running.StatusMessage, running.RecoveryPointID, e.logText(running.ID))
	}
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list", "--resource", "big")
	if len(rps) > 0 {
		t.Errorf("the cancelled backups left recovery points: %+v", rps)
	}
	for _, id := range []string{running.ID, pending.ID} {
		e.requireEvents(id, map[vigil.EventType]int{vigil.EventBackupJobFailed: 1, vigil.EventBackupJobCompleted: 0})
	}
	if pending.ID != "" {
		e.requireEvents(pending.ID, map[vigil.EventType]int{vigil.EventBackupJobStarted: 0})
	}
}

// requireEvents checks how many events of each type job id has.
func (e *testEnv) requireEvents(id string, want map[vigil.EventType]int) {
	e.t.Helper()
	var page api.EventPage
	e.mustJSON(&page, "events", "list", "--job", id)
	got := map[vigil.EventType]int{}
	for _, ev := range page.Events {
		got[ev.Type]++
	}
	for typ, n := range want {
		if got[typ] != n {
			e.t.Errorf("job %s has %d %s events, want %d (all: %v)", id, got[typ], typ, n, got)
		}
	}
}

// postCancel posts a bare cancel of job id and returns the status code.
func (e *testEnv) postCancel(id string) int {
	e.t.Helper()
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.listen+"/api/v1/jobs/"+id+"/cancel", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// filesIn lists the files below dir; none when it does not exist.
func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

// TestCancelCopy cancels a copy job held once its snapshot is in the
// target vault: no recovery point is listed there, and the snapshot goes.
func TestCancelCopy(t *testing.T) {
	t.Parallel()
	e := newCopyEnv(t, "")
	e.env = append(e.env, "VIGIL_TEST_COPY_PAUSE=record=3m")
	e.serve()
	source := e.backup("docs")
	var job vigil.CopyJob
	e.mustJSON(&job, "recovery-points", "copy", source.RecoveryPointID, "--to", "offsite")
	waitFor(t, time.Minute, "the copy to pause before record", func() bool {
		return strings.Contains(e.logText(job.ID), "before record (VIGIL_TEST_COPY_PAUSE)")
	})
	e.mustRun("jobs", "cancel", job.ID)
	e.mustJSON(&job, "jobs", "show", job.ID)
	want := `cancelled through the API; no recovery point was made in vault "offsite", and the copied snapshot was deleted`
	if job.Status != vigil.BackupAborted || job.StatusMessage != want {
		t.Errorf("cancelled copy: %s %q; want ABORTED %q\nlog:\n%s", job.Status, job.StatusMessage, want, e.logText(job.ID))
	}
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list", "--vault", "offsite")
	if len(rps) > 0 {
		t.Errorf("the cancelled copy listed %+v", rps)
	}
	e.requireEvents(job.ID, map[vigil.EventType]int{vigil.EventCopyJobFailed: 1, vigil.EventCopyJobCompleted: 0})
	if out := e.mustRun("vault", "verify", "offsite"); !strings.Contains(out, "no damage found") || !strings.Contains(out, " 0 snapshots") {
		t.Errorf("vault verify offsite after the cancelled copy: %s", out)
	}
	e.stop()
}

// TestCancelRestoreTestDuringRestore cancels a restore test held before
// its restore: the test ends ABORTED with one verdict, its restore job
// with one end, and nothing is left of the copy.
func TestCancelRestoreTestDuringRestore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{extra: cancelConfig()})
	t.Cleanup(e.killLeaks)
	writeSite(t, e.path("site"))
	e.env = append(e.env, "VIGIL_TEST_PAUSE=restore=3m")
	e.serve()
	b := e.backup("web")
	test := e.testOf(b.RecoveryPointID)
	waitFor(t, time.Minute, "restore test "+test.ID+" to be held before its restore", func() bool {
		return strings.Contains(e.logText(test.ID), "before restore (VIGIL_TEST_PAUSE)")
	})
	e.mustRun("jobs", "cancel", test.ID)
	e.mustJSON(&test, "jobs", "show", test.ID)
	if test.Status != vigil.RestoreAborted || test.ValidationStatus != vigil.ValidationAborted || test.DeletionStatus != vigil.DeletionSuccessful ||
		!strings.HasPrefix(test.StatusMessage, "cancelled through the API;") {
		t.Errorf("restore test cancelled before its restore: %s %q, validation %s %q, deletion %s; want ABORTED, cancelled, its copy deleted\nlog:\n%s",
			test.Status, test.StatusMessage, test.ValidationStatus, test.ValidationMessage, test.DeletionStatus, e.logText(test.ID))
	}
	e.requireEvents(test.ID, map[vigil.EventType]int{vigil.EventRestoreTestStatus: 1, vigil.EventRestoreJobFailed: 1, vigil.EventRestoreJobCompleted: 0})
	var page api.EventPage
	e.mustJSON(&page, "events", "list", "--job", test.ID)
	for _, ev := range page.Events {
		t.Logf("%s %.200q", ev.Type, ev.Message)
	}
	e.requireNoLeakIn(e.instancesDir())
	e.stop()
}
