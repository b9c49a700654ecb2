package worker

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
)

// TestLongKindsQueuedOncePerJob: a backup, restore or restore test queued
// again while its River job lives (a retried call, a rescue) adds no
// second River job, so it can never run twice at once; each kind goes
// to its own queue.
func TestLongKindsQueuedOncePerJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)}}
	e, cat := newTestEngine(t, cfg) // not started: the jobs stay queued
	queue := func(args interface{ Kind() string }) {
		t.Helper()
		for range 2 {
			err := cat.InTx(ctx, func(tx *catalog.Tx) error {
				switch a := args.(type) {
				case BackupArgs:
					return e.insertTx(ctx, tx, a, nil)
				case RestoreArgs:
					return e.insertTx(ctx, tx, a, nil)
				case RestoreTestArgs:
					return e.insertTx(ctx, tx, a, nil)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	queue(BackupArgs{JobID: "bj-1"})
	queue(BackupArgs{JobID: "bj-2"})
	queue(RestoreArgs{JobID: "rj-1"})
	queue(RestoreTestArgs{JobID: "rj-2"})
	for _, want := range []struct{ kind, queue string }{
		{"vigil.backup", queueBackup}, {"vigil.restore", queueRestore}, {"vigil.restore-test", queueRestoreTest},
	} {
		rows, err := cat.SQLDB().QueryContext(ctx, `SELECT queue, args ->> '$.job_id' FROM river_job WHERE kind = ?`, want.kind)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for rows.Next() {
			var q, id string
			if err := rows.Scan(&q, &id); err != nil {
				t.Fatal(err)
			}
			if q != want.queue {
				t.Errorf("%s job %s queued in %q, want %q", want.kind, id, q, want.queue)
			}
			seen[id]++
		}
		rows.Close()
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s job %s has %d River jobs after being queued twice, want 1", want.kind, id, n)
			}
		}
		if want.kind == "vigil.backup" && len(seen) != 2 {
			t.Errorf("two backup jobs queued twice each give River jobs for %v, want bj-1 and bj-2", seen)
		}
	}
}

// TestDeadWorkersRestoreEnds: the plain restore a dead worker was running
// ends ABORTED, naming the worker and where its partial files are, whose
// removal is pending on the worker's node, with one RESTORE_JOB_FAILED; a
// live node's restore is left alone.
func TestDeadWorkersRestoreEnds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir, Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)}}
	e, cat := newTestEngine(t, cfg)
	started := time.Now().UTC().Add(-time.Minute)
	dead := catalog.Worker{ID: "node-b-1234", Node: "node-b", Host: "host-b", PID: 42, StartedAt: started, LastHeartbeatAt: started}
	theirs := vigil.RestoreJob{ID: vigil.NewID(vigil.PrefixRestoreJob), Status: vigil.RestoreRunning, RecoveryPointID: "rp-1",
		Resource: "docs", ResourceType: "directory", Node: "node-b", StartedAt: &started,
		Metadata: map[string]string{resource.MetaTargetPath: "/srv/restore-here"}}
	other := theirs
	other.ID, other.Node = vigil.NewID(vigil.PrefixRestoreJob), "node-c"
	for _, j := range []*vigil.RestoreJob{&theirs, &other} {
		if err := cat.InsertRestoreJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.endJobsOfDead(ctx, dead, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	got, _ := cat.GetRestoreJob(ctx, theirs.ID)
	if got.Status != vigil.RestoreAborted || got.CompletedAt == nil || !strings.Contains(got.StatusMessage, "node-b-1234") ||
		!strings.Contains(got.StatusMessage, "counted dead") || !strings.Contains(got.StatusMessage, "/srv/restore-here on host host-b") {
		t.Errorf("the dead worker's restore: %s %q; want ABORTED, naming the worker and its partial files", got.Status, got.StatusMessage)
	}
	if got.DeletionStatus != vigil.DeletionDeleting || !strings.Contains(got.DeletionMessage, "pending on node node-b") {
		t.Errorf("the dead worker's restore: deletion %s %q; want DELETING, pending on node node-b", got.DeletionStatus, got.DeletionMessage)
	}
	evs, err := cat.ListEvents(ctx, catalog.EventFilter{JobID: theirs.ID, Types: []vigil.EventType{vigil.EventRestoreJobFailed}})
	if err != nil || len(evs) != 1 {
		t.Errorf("the dead worker's restore has %d RESTORE_JOB_FAILED events (%v), want 1", len(evs), err)
	}
	if got, _ := cat.GetRestoreJob(ctx, other.ID); got.Status != vigil.RestoreRunning {
		t.Errorf("a live node's restore was ended: %s %q", got.Status, got.StatusMessage)
	}
}

// TestReaperJudgesNoOneAfterItsOwnOutage: when the catalog comes back
// after an outage, every heartbeat in it is old; a worker that has just
// reached the catalog again counts no one dead for that, and only once it
// has reached it for a whole heartbeat timeout does it end the jobs of a
// peer still silent.
func TestReaperJudgesNoOneAfterItsOwnOutage(t *testing.T) {
	ctx := context.Background()
	const timeout = 3 * time.Second
	cfg := &config.Config{DataDir: t.TempDir(), Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)},
		Workers: config.Workers{HeartbeatTimeout: config.Duration(timeout)}}
	e, cat := newTestEngine(t, cfg)
	silent := time.Now().UTC().Add(-10 * time.Second) // the outage began then
	peer := catalog.Worker{ID: "node-b-1234", Node: "node-b", Host: "host-b", PID: 42, StartedAt: silent.Add(-time.Minute), LastHeartbeatAt: silent}
	if err := cat.RegisterWorker(ctx, peer); err != nil {
		t.Fatal(err)
	}
	job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupRunning, Resource: "docs", ResourceType: "directory",
		Vault: "v", Node: "node-b", CreatedAt: silent, StartedAt: &silent}
	if err := cat.InsertBackupJob(ctx, &job); err != nil {
		t.Fatal(err)
	}

	// Back a moment ago: the peer's next beat may still be on its way.
	if err := e.reapDead(ctx, time.Now().UTC().Add(-timeout/3)); err != nil {
		t.Fatal(err)
	}
	if got, _ := cat.GetBackupJob(ctx, job.ID); got.Status != vigil.BackupRunning {
		t.Errorf("right after the catalog came back, the peer's backup was ended: %s %q; want it RUNNING", got.Status, got.StatusMessage)
	}
	workers, _ := cat.ListWorkers(ctx)
	for _, w := range workers {
		if w.ID == peer.ID && w.ReapedBy != "" {
			t.Errorf("right after the catalog came back, the peer was claimed dead by %s", w.ReapedBy)
		}
	}

	// Back for a whole timeout, and the peer is still silent: it is dead.
	if err := e.reapDead(ctx, time.Now().UTC().Add(-timeout-time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := cat.GetBackupJob(ctx, job.ID); got.Status != vigil.BackupAborted || !strings.Contains(got.StatusMessage, "counted dead") {
		t.Errorf("a peer silent for a timeout after the catalog came back: its backup is %s %q; want ABORTED, its worker counted dead", got.Status, got.StatusMessage)
	}
}
