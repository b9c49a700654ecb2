package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/instance"
)

// postgresSchema creates a PostgreSQL schema for the test, dropped at its
// end, and returns a catalog URL whose search_path selects it and a
// connection to look into it. An unreachable server fails the test.
func postgresSchema(t *testing.T) (string, string, *pgx.Conn) {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL (TEST_DATABASE_URL, default %s) is needed for this test and cannot be reached: %v", base, err)
	}
	schema := fmt.Sprintf("vigil_e2e_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(context.Background())
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema, conn
}

// workerProc is a running `vigil worker`.
type workerProc struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

// startWorker starts `vigil worker` with args; it is killed when the test
// ends.
func (e *testEnv) startWorker(args ...string) *workerProc {
	e.t.Helper()
	cmd := exec.Command(vigilBin, append([]string{"worker"}, args...)...)
	cmd.Env = e.environ()
	w := &workerProc{cmd: cmd, log: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = w.log, w.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { w.kill() })
	return w
}

func (w *workerProc) kill() {
	if w.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	w.cmd.Wait()
}

// stop ends the worker with SIGTERM and waits for it.
func (w *workerProc) stop(t *testing.T) {
	t.Helper()
	w.cmd.Process.Signal(syscall.SIGTERM)
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("vigil worker exited with %v; output:\n%s", err, w.log)
	}
}

// aliveWorkers returns the ids of the ALIVE workers by node.
func (e *testEnv) aliveWorkers() map[string]api.Worker {
	e.t.Helper()
	var ws []api.Worker
	e.mustJSON(&ws, "workers", "list")
	alive := map[string]api.Worker{}
	for _, w := range ws {
		if w.State == "ALIVE" {
			alive[w.Node] = w
		}
	}
	return alive
}

// TestWorkerRefusesSQLite: scale-out needs PostgreSQL, and the refusals
// say why and what to do.
func TestWorkerRefusesSQLite(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.run("worker")
	if r.code != 2 || !strings.Contains(r.stderr, "needs a PostgreSQL catalog") || !strings.Contains(r.stderr, "catalog: postgres://") {
		t.Fatalf("vigil worker on SQLite: exit %d, %q; want exit 2 saying it needs a PostgreSQL catalog", r.code, r.stderr)
	}
	// Nor does serve run without workers there: nothing would run the jobs.
	if r := e.run("serve", "--workers", "0"); r.code != 2 || !strings.Contains(r.stderr, "would run no jobs at all") {
		t.Fatalf("vigil serve --workers 0 on SQLite: exit %d, %q; want exit 2 saying no jobs would run", r.code, r.stderr)
	}
}

// TestServeAndWorkersOnPostgres runs `serve --workers 0` and two `vigil
// worker` processes on a fresh PostgreSQL schema: serve and the workers
// refuse the schema until `vigil migrate`, then the workers, not serve,
// run the backups, and `vigil workers list` shows each with its
// concurrency and heartbeat.
func TestServeAndWorkersOnPostgres(t *testing.T) {
	dsn, schema, conn := postgresSchema(t)
	e := newEnv(t, envOptions{catalog: dsn, extra: "node: api-node\nworkers: {backup: 2, restore: 1, heartbeat_timeout: 3s}\n"})
	makeTree(t, e.path("docs"))

	code, out := e.serveRefused()
	if code != 2 || !strings.Contains(out, "vigil migrate") {
		t.Fatalf("serve on an empty PostgreSQL schema: exit %d, %s; want exit 2 saying to run vigil migrate", code, out)
	}
	if r := e.run("worker", "--node", "w1"); r.code != 2 || !strings.Contains(r.stderr, "vigil migrate") {
		t.Fatalf("worker on an empty PostgreSQL schema: exit %d, %s; want exit 2 saying to run vigil migrate", r.code, r.stderr)
	}
	var tables int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("serve and worker refusing the schema left %d tables (%v); want none", tables, err)
	}
	if out := e.mustRun("migrate"); !strings.Contains(out, "catalog migrated from 0 to") {
		t.Fatalf("vigil migrate on an empty schema: %q", out)
	}
	if out := e.mustRun("migrate"); !strings.Contains(out, "catalog is up to date") {
		t.Fatalf("vigil migrate again: %q", out)
	}

	e.serve("--workers", "0")
	w1 := e.startWorker("--node", "w1")
	w2 := e.startWorker("--node", "w2")
	waitFor(t, 30*time.Second, "serve and both workers to be listed ALIVE", func() bool { return len(e.aliveWorkers()) == 3 })
	alive := e.aliveWorkers()
	if c := alive["api-node"].Concurrency; c["backup"] != 0 || c["restore"] != 0 || c["restore_test"] != 0 || c["other"] != 0 {
		t.Errorf("serve --workers 0 lists concurrency %v; want 0 of every kind", c)
	}
	if c := alive["w1"].Concurrency; c["backup"] != 2 || c["restore"] != 1 || c["restore_test"] != 4 || c["other"] != 4 {
		t.Errorf("worker w1 lists concurrency %v; want backup 2, restore 1 (config), restore_test and other 4 (--workers)", c)
	}
	if !strings.HasPrefix(alive["w1"].ID, "w1-") || alive["w1"].ID == alive["w2"].ID || alive["w1"].PID != w1.cmd.Process.Pid {
		t.Errorf("worker ids %q and %q, pid %d (process %d): want node-unique ids and the worker's pid", alive["w1"].ID, alive["w2"].ID, alive["w1"].PID, w1.cmd.Process.Pid)
	}

	// A second worker under a node name that is alive is refused: it
	// would end the first one's running jobs as interrupted.
	if r := e.run("worker", "--node", "w1"); r.code == 0 || !strings.Contains(r.stderr, "its own node name") {
		t.Fatalf("a second worker w1: exit %d, %s; want a refusal asking for its own node name", r.code, r.stderr)
	}

	var jobs []vigil.BackupJob
	for range 4 {
		var job vigil.BackupJob
		e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "lab-vault")
		jobs = append(jobs, job)
	}
	nodes := map[string]int{}
	for i := range jobs {
		job := &jobs[i]
		waitFor(t, 2*time.Minute, "backup "+job.ID+" to end", func() bool {
			e.mustJSON(job, "jobs", "show", job.ID)
			return job.Status.Final()
		})
		if job.Status != vigil.BackupCompleted {
			t.Fatalf("backup %s ended %s %q; want COMPLETED", job.ID, job.Status, job.StatusMessage)
		}
		nodes[job.Node]++
	}
	if nodes["api-node"] != 0 || nodes["w1"]+nodes["w2"] != len(jobs) {
		t.Errorf("backups ran on nodes %v; want only w1 and w2, never serve --workers 0", nodes)
	}
	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", jobs[0].RecoveryPointID, "--wait")
	if rj.Status != vigil.RestoreCompleted || rj.Node == "api-node" {
		t.Errorf("restore on the workers: %s on %q", rj.Status, rj.Node)
	}

	w2.stop(t)
	var ws []api.Worker
	e.mustJSON(&ws, "workers", "list")
	states := map[string]string{}
	for _, w := range ws {
		states[w.Node] = w.State
	}
	if states["w2"] != "STOPPED" || states["w1"] != "ALIVE" {
		t.Errorf("after stopping w2, workers list says %v; want w2 STOPPED, w1 ALIVE", states)
	}
	if out := e.mustRun("workers", "list"); !strings.Contains(out, "backup=2 other=4 restore=1 restore_test=4") {
		t.Errorf("workers list does not show w1's concurrency:\n%s", out)
	}
}

// TestKillWorkerMidBackup: with serve --workers 0 and two workers on
// PostgreSQL, a kill -9 of one worker mid-backup ends its backup ABORTED
// within the heartbeat timeout, by the other worker, which also runs the
// backups still queued: every job ends exactly once, and no job has two
// recovery points.
func TestKillWorkerMidBackup(t *testing.T) {
	dsn, _, _ := postgresSchema(t)
	e := newEnv(t, envOptions{catalog: dsn, extra: "node: api-node\nworkers: {backup: 1, heartbeat_timeout: 3s}\n"})
	makeLargeTree(t, e.path("docs"), 20, 8<<20)
	e.mustRun("migrate")
	e.serve("--workers", "0")
	w1 := e.startWorker("--node", "w1")
	e.startWorker("--node", "w2")
	waitFor(t, 30*time.Second, "serve and both workers to be listed ALIVE", func() bool { return len(e.aliveWorkers()) == 3 })

	jobs := make([]vigil.BackupJob, 4)
	for i := range jobs {
		e.mustJSON(&jobs[i], "backup", "start", "--resource", "docs", "--vault", "lab-vault")
	}
	var killed string
	waitFor(t, time.Minute, "a backup to run on w1", func() bool {
		for _, j := range jobs {
			var got vigil.BackupJob
			e.mustJSON(&got, "jobs", "show", j.ID)
			if got.Status == vigil.BackupRunning && got.Node == "w1" {
				killed = got.ID
				return true
			}
		}
		return false
	})
	w1.kill()
	killedAt := time.Now()

	waitFor(t, 3*time.Minute, "every backup to end", func() bool {
		for i := range jobs {
			e.mustJSON(&jobs[i], "jobs", "show", jobs[i].ID)
			if !jobs[i].Status.Final() {
				return false
			}
		}
		return true
	})
	for _, j := range jobs {
		switch {
		case j.ID == killed:
			if j.CompletedAt != nil {
				t.Logf("the killed worker's backup ended %s after the kill (heartbeat_timeout 3s)", j.CompletedAt.Sub(killedAt).Round(100*time.Millisecond))
			}
			if j.Status != vigil.BackupAborted || !strings.Contains(j.StatusMessage, "counted dead") || j.RecoveryPointID != "" {
				t.Errorf("the backup w1 ran when killed ended %s %q, recovery point %q; want ABORTED, its worker counted dead, no recovery point", j.Status, j.StatusMessage, j.RecoveryPointID)
			}
		case j.Status != vigil.BackupCompleted || j.Node != "w2" && j.Node != "w1":
			t.Errorf("backup %s ended %s %q on %q; want COMPLETED", j.ID, j.Status, j.StatusMessage, j.Node)
		}
	}
	var page api.EventPage
	e.mustJSON(&page, "events", "list")
	finals := map[string]int{}
	for _, ev := range page.Events {
		if ev.Type == vigil.EventBackupJobCompleted || ev.Type == vigil.EventBackupJobFailed {
			finals[ev.JobID]++
		}
	}
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list")
	points := map[string]int{}
	for _, rp := range rps {
		points[rp.BackupJobID]++
	}
	for _, j := range jobs {
		if finals[j.ID] != 1 {
			t.Errorf("backup %s has %d final events, want 1", j.ID, finals[j.ID])
		}
		want := 1
		if j.ID == killed {
			want = 0
		}
		if points[j.ID] != want {
			t.Errorf("backup %s has %d recovery points, want %d", j.ID, points[j.ID], want)
		}
	}
	var ws []api.Worker
	e.mustJSON(&ws, "workers", "list")
	for _, w := range ws {
		if w.Node == "w1" && (w.State != "DEAD" || w.ReapedBy == "") {
			t.Errorf("killed worker listed %s, reaped by %q; want DEAD, reaped", w.State, w.ReapedBy)
		}
	}

	// w1 comes back under its name, finds nothing of its own to end, and
	// the vault verifies.
	w1 = e.startWorker("--node", "w1")
	waitFor(t, 30*time.Second, "w1 to be ALIVE again", func() bool { _, ok := e.aliveWorkers()["w1"]; return ok })
	w1.stop(t)
	if out := e.mustRun("vault", "verify", "lab-vault"); !strings.Contains(out, "no damage found") {
		t.Errorf("vault verify after the kill: %s", out)
	}
}

// TestKillWorkerMidRestoreTest: with serve --workers 0 and two workers on
// PostgreSQL, a kill -9 of the worker whose restore test is validating an
// app copy ends that test ABORTED, by the other worker, within the
// heartbeat timeout, with its clean-up pending on the dead worker's node;
// a retry of the same recovery point runs on the live worker and passes.
// When the killed worker's node starts again, it deletes the copy it left
// (no folder, process or cgroup) and records the deletion.
func TestKillWorkerMidRestoreTest(t *testing.T) {
	e := appTestEnv(t, "")
	w1Dir := e.path("vigil-data/workers/w1/restore-tests") // each worker's node has its own data dir
	w1, b, first := appTestOnW1(t, e, "1m")
	w1.kill()
	killedAt := time.Now()

	waitFor(t, time.Minute, "the killed worker's test to end", func() bool {
		e.mustJSON(&first, "jobs", "show", first.ID)
		return first.ValidationStatus.Final()
	})
	if first.CompletedAt != nil {
		t.Logf("the killed worker's test ended %s after the kill (heartbeat_timeout 3s)", time.Since(killedAt).Round(100*time.Millisecond))
	}
	if first.ValidationStatus != vigil.ValidationAborted || !strings.Contains(first.ValidationMessage, "counted dead") || !strings.Contains(first.ValidationMessage, "w1-") {
		t.Errorf("the test w1 ran when killed: %s %q; want ABORTED, naming worker w1 counted dead", first.ValidationStatus, first.ValidationMessage)
	}
	if first.DeletionStatus != vigil.DeletionDeleting || !strings.Contains(first.DeletionMessage, "pending on node w1") {
		t.Errorf("the killed worker's test: deletion %s %q; want DELETING, pending on node w1", first.DeletionStatus, first.DeletionMessage)
	}
	// Until w1's node comes back, the workers list says a copy waits
	// there to be deleted.
	var ws []api.Worker
	e.mustJSON(&ws, "workers", "list")
	if pending := pendingOn(ws, "w1"); len(pending) != 1 || pending[0] != first.ID {
		t.Errorf("workers list shows clean-up pending on w1 for %v, want [%s]", pending, first.ID)
	}
	if out := e.mustRun("workers", "list"); !strings.Contains(out, "CLEANUP PENDING") || !strings.Contains(out, first.ID) {
		t.Errorf("workers list does not show %s's pending clean-up:\n%s", first.ID, out)
	}

	var retry vigil.RestoreJob
	waitFor(t, 2*time.Minute, "a retry of recovery point "+b.RecoveryPointID+" to end", func() bool {
		var jobs []vigil.RestoreJob
		e.mustJSON(&jobs, "jobs", "list", "--type", "restore")
		for _, j := range jobs {
			if j.RestoreTest && j.RecoveryPointID == b.RecoveryPointID && j.ID != first.ID {
				retry = j
				return j.Ended()
			}
		}
		return false
	})
	if retry.ValidationStatus != vigil.ValidationSuccessful || retry.Node != "w2" || retry.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("the retry %s: %s %q on %q, deletion %s; want SUCCESSFUL on w2, deleted", retry.ID, retry.ValidationStatus, retry.ValidationMessage, retry.Node, retry.DeletionStatus)
	}

	// w1 comes back: its start-up sweep deletes the copy it left.
	w1 = e.startWorker("--node", "w1")
	waitFor(t, time.Minute, "the killed worker's copy to be deleted", func() bool {
		e.mustJSON(&first, "jobs", "show", first.ID)
		return first.DeletionStatus == vigil.DeletionSuccessful
	})
	if first.ValidationStatus != vigil.ValidationAborted || !first.Ended() {
		t.Errorf("the killed worker's test after its node came back: %s, ended %v; want ABORTED, ended", first.ValidationStatus, first.Ended())
	}
	if procs := processesUnder(w1Dir); len(procs) > 0 {
		t.Errorf("processes of the killed worker's copy left: %v", procs)
	}
	if left, _ := os.ReadDir(w1Dir); len(left) > 0 {
		t.Errorf("copy folders left under %s: %v", w1Dir, left)
	}
	e.requireNoLeak()
	if left, _ := filepath.Glob(filepath.Join(instance.CgroupScope(w1Dir), "*", "cgroup.procs")); len(left) > 0 {
		t.Errorf("copies' cgroups left: %v", left)
	}
	// The killed worker's test is no longer pending; a test w1 ran since
	// may be in its own clean-up for a moment, and must finish it too.
	e.mustJSON(&ws, "workers", "list")
	if pending := pendingOn(ws, "w1"); slices.Contains(pending, first.ID) {
		t.Errorf("workers list still shows clean-up pending on w1 for %s after its deletion", first.ID)
	}
	waitFor(t, time.Minute, "no clean-up pending on w1", func() bool {
		e.mustJSON(&ws, "workers", "list")
		return len(pendingOn(ws, "w1")) == 0
	})
	var page api.EventPage
	e.mustJSON(&page, "events", "list")
	verdicts := 0
	for _, ev := range page.Events {
		if ev.Type == vigil.EventRestoreTestStatus && ev.JobID == first.ID {
			verdicts++
		}
	}
	if verdicts != 1 {
		t.Errorf("the killed worker's test has %d RESTORE_TEST_STATUS events, want 1", verdicts)
	}
	w1.stop(t)
}

// pendingOn returns the restore tests whose clean-up the workers list
// shows pending on node.
func pendingOn(ws []api.Worker, node string) []string {
	var out []string
	for _, w := range ws {
		if w.Node == node {
			out = append(out, w.PendingCleanup...)
		}
	}
	return out
}

// appTestOnW1 sets the stage for a fault of a worker mid-test: it runs
// serve --workers 0 and worker w1, whose restore tests wait pause before
// they validate, backs up resource web (an app), waits until its restore
// test validates a running copy on w1, and starts worker w2 to take over.
// It returns w1, the backup and its test.
func appTestOnW1(t *testing.T, e *testEnv, pause string) (*workerProc, vigil.BackupJob, vigil.RestoreJob) {
	t.Helper()
	e.mustRun("migrate")
	e.serve("--workers", "0")
	plain := e.env
	e.env = append(plain, "VIGIL_TEST_PAUSE=validate="+pause)
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
	if procs := processesUnder(e.path("vigil-data/workers/w1/restore-tests")); len(procs) == 0 {
		t.Fatalf("no process of the app copy runs while the test validates; the test would prove nothing; log:\n%s", e.logText(first.ID))
	}
	return w1, b, first
}

// appTestEnv is an installation on a new PostgreSQL schema with an app,
// web, whose every backup is restore-tested, and serve's node named
// api-node; more is added to its config.
func appTestEnv(t *testing.T, more string) *testEnv {
	t.Helper()
	dsn, _, _ := postgresSchema(t)
	e := newEnv(t, envOptions{catalog: dsn, extra: webAppYAML() + "node: api-node\nworkers: {heartbeat_timeout: 3s}\n" + more})
	t.Cleanup(e.killLeaks)
	writeSite(t, e.path("site"))
	return e
}

// webAppYAML is the resource web, an app (python3 -m http.server serving
// ./site) whose copy must answer "Welcome", and the plan every-backup,
// which restore-tests each of its backups.
func webAppYAML() string {
	return fmt.Sprintf(`  - name: web
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
`, pythonApp)
}
