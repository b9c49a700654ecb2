package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

// TestPostgresRestartMidJobs: with serve --workers 0 and two workers on a
// private PostgreSQL cluster, the catalog goes away for longer than the
// heartbeat timeout while backups and restore tests run, and comes back.
// serve and the workers keep running and are listed ALIVE again, none
// counts another dead for the silence the outage imposed on all, every
// backup and restore test ends exactly once with one recovery point at
// most, none is left RUNNING or PENDING, no copy is left, the vault
// verifies, and a backup started right after the catalog returns runs.
func TestPostgresRestartMidJobs(t *testing.T) {
	pg := testsvc.StartPostgres(t)
	e := newEnv(t, envOptions{catalog: pg.URL, extra: `restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [docs]
    validation_window: 2m
node: api-node
workers: {backup: 1, heartbeat_timeout: 3s}
`})
	t.Cleanup(e.killLeaks)
	makeLargeTree(t, e.path("docs"), 20, 8<<20)
	e.mustRun("migrate")
	e.serve("--workers", "0")
	w1 := e.startWorker("--node", "w1")
	w2 := e.startWorker("--node", "w2")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's output:\n%s\nw1's output:\n%s\nw2's output:\n%s", e.serverLog, w1.log, w2.log)
		}
	})
	waitFor(t, 30*time.Second, "serve and both workers to be listed ALIVE", func() bool { return len(e.aliveWorkers()) == 3 })

	// Two backups complete first, so that their restore tests run while
	// the next backups do.
	var backups []vigil.BackupJob
	start := func(n int) {
		for range n {
			var job vigil.BackupJob
			e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "lab-vault")
			backups = append(backups, job)
		}
	}
	start(2)
	waitFor(t, 3*time.Minute, "the first backups to complete", func() bool {
		for _, j := range backups {
			var got vigil.BackupJob
			e.mustJSON(&got, "jobs", "show", j.ID)
			if !got.Status.Final() {
				return false
			}
		}
		return true
	})
	start(4)
	var inFlight []string
	waitFor(t, 2*time.Minute, "a backup and a restore test to run", func() bool {
		inFlight = inFlight[:0]
		var bs []vigil.BackupJob
		e.mustJSON(&bs, "jobs", "list", "--type", "backup")
		var rs []vigil.RestoreJob
		e.mustJSON(&rs, "jobs", "list", "--type", "restore")
		var b, r bool
		for _, j := range bs {
			if j.Status == vigil.BackupRunning {
				b = true
				inFlight = append(inFlight, j.ID)
			}
		}
		for _, j := range rs {
			if j.RestoreTest && j.Status == vigil.RestoreRunning {
				r = true
				inFlight = append(inFlight, j.ID)
			}
		}
		return b && r
	})

	pg.Stop("fast")
	stoppedAt := time.Now()
	time.Sleep(10 * time.Second) // over three heartbeat timeouts
	pg.Start()
	restartedAt := time.Now()
	t.Logf("PostgreSQL was down %s while %v ran", time.Since(stoppedAt).Round(100*time.Millisecond), inFlight)

	// A backup started right after the catalog returns runs.
	var after vigil.BackupJob
	e.mustJSON(&after, "backup", "start", "--resource", "docs", "--vault", "lab-vault")
	backups = append(backups, after)

	for name, p := range map[string]*workerProc{"w1": w1, "w2": w2} {
		if p.cmd.ProcessState != nil {
			t.Fatalf("worker %s exited when PostgreSQL went away: %v; output:\n%s", name, p.cmd.ProcessState, p.log)
		}
	}
	if e.server.ProcessState != nil {
		t.Fatalf("serve exited when PostgreSQL went away: %v; output:\n%s", e.server.ProcessState, e.serverLog)
	}
	waitFor(t, 30*time.Second, "serve and both workers to be listed ALIVE again", func() bool { return len(e.aliveWorkers()) == 3 })
	t.Logf("serve and both workers were listed ALIVE %s after PostgreSQL started again", time.Since(restartedAt).Round(100*time.Millisecond))

	var tests []vigil.RestoreJob
	waitFor(t, 5*time.Minute, "every backup and restore test to end", func() bool {
		for i := range backups {
			e.mustJSON(&backups[i], "jobs", "show", backups[i].ID)
			if !backups[i].Status.Final() {
				return false
			}
		}
		tests = tests[:0]
		var rs []vigil.RestoreJob
		e.mustJSON(&rs, "jobs", "list", "--type", "restore")
		for _, j := range rs {
			if !j.RestoreTest {
				continue
			}
			if !j.Ended() {
				return false
			}
			tests = append(tests, j)
		}
		return true
	})

	var ws []api.Worker
	e.mustJSON(&ws, "workers", "list")
	for _, w := range ws {
		if w.State != "ALIVE" || w.ReapedBy != "" {
			t.Errorf("worker %s on %s is %s, reaped by %q; no worker died: the catalog was away from all of them", w.ID, w.Node, w.State, w.ReapedBy)
		}
	}

	var page api.EventPage
	e.mustJSON(&page, "events", "list", "--limit", "1000")
	finals := map[string]int{}
	for _, ev := range page.Events {
		switch ev.Type {
		case vigil.EventBackupJobCompleted, vigil.EventBackupJobFailed, vigil.EventRestoreTestStatus:
			finals[ev.JobID]++
		}
	}
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list")
	points := map[string]int{}
	for _, rp := range rps {
		points[rp.BackupJobID]++
	}
	wasRunning := func(id string) bool {
		for _, r := range inFlight {
			if r == id {
				return true
			}
		}
		return false
	}
	for _, j := range backups {
		if finals[j.ID] != 1 {
			t.Errorf("backup %s has %d final events, want 1", j.ID, finals[j.ID])
		}
		switch {
		case j.Status == vigil.BackupCompleted:
			if points[j.ID] != 1 {
				t.Errorf("completed backup %s has %d recovery points, want 1", j.ID, points[j.ID])
			}
		case !wasRunning(j.ID) || j.StatusMessage == "":
			t.Errorf("backup %s ended %s %q; want COMPLETED, or for one running during the outage, a status message saying why", j.ID, j.Status, j.StatusMessage)
		case points[j.ID] != 0:
			t.Errorf("backup %s ended %s with %d recovery points, want none", j.ID, j.Status, points[j.ID])
		default:
			t.Logf("backup %s, running during the outage, ended %s: %s", j.ID, j.Status, j.StatusMessage)
		}
	}
	if after = backups[len(backups)-1]; after.Status != vigil.BackupCompleted {
		t.Errorf("the backup started right after PostgreSQL came back ended %s %q; want COMPLETED", after.Status, after.StatusMessage)
	}
	for _, j := range tests {
		if finals[j.ID] != 1 {
			t.Errorf("restore test %s has %d RESTORE_TEST_STATUS events, want 1", j.ID, finals[j.ID])
		}
		switch {
		case j.ValidationStatus == vigil.ValidationSuccessful && j.DeletionStatus == vigil.DeletionSuccessful:
		case wasRunning(j.ID) && j.ValidationMessage != "":
			t.Logf("restore test %s, running during the outage, ended %s: %s", j.ID, j.ValidationStatus, j.ValidationMessage)
		default:
			t.Errorf("restore test %s ended %s %q, deletion %s; want SUCCESSFUL and deleted, or for one running during the outage, a message saying why", j.ID, j.ValidationStatus, j.ValidationMessage, j.DeletionStatus)
		}
	}

	waited := strings.Count(w1.log.String()+w2.log.String(), "a job's record waits for it")
	t.Logf("%d job records waited for the catalog to come back", waited)

	e.requireNoLeak()
	for _, node := range []string{"w1", "w2"} {
		dir := e.path("vigil-data/workers/" + node + "/restore-tests")
		if procs := processesUnder(dir); len(procs) > 0 {
			t.Errorf("processes of restore tests' copies left on %s: %v", node, procs)
		}
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("copy folders left under %s: %v", dir, left)
		}
	}
	if out := e.mustRun("vault", "verify", "lab-vault"); !strings.Contains(out, "no damage found") {
		t.Errorf("vault verify after the catalog's restart: %s", out)
	}
	w1.stop(t)
	w2.stop(t)
	e.stop()
}
