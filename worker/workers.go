package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
)

// The queues of the long job kinds, each with its own number of jobs at
// once (config workers.*), so that hours of backups never hold up restore
// tests, nor the reverse. Everything else (plans, expiry, maintenance)
// runs in River's default queue, and notification deliveries in
// queueNotify.
const (
	queueBackup      = "backup"
	queueRestore     = "restore"
	queueRestoreTest = "restore_test"
)

// uniqueWhileLive lets one River job per vigil job exist until it ends,
// whoever inserts it again: a retried API call, a rescue, a sweep. A job
// that could be queued twice could run twice at once.
var uniqueWhileLive = river.UniqueOpts{
	ByArgs:  true,
	ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateRetryable},
}

func (BackupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueBackup, UniqueOpts: uniqueWhileLive}
}

func (RestoreArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueRestore, UniqueOpts: uniqueWhileLive}
}

func (RestoreTestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueRestoreTest, UniqueOpts: uniqueWhileLive}
}

// concurrency is how many jobs of each kind this process runs at once:
// what the config's workers section says, and n for a kind it leaves out.
// A kind at 0 gets no queue here, so other processes run it. Jobs of any
// other kind share n ("other").
func concurrency(w config.Workers, n int) map[string]int {
	c := map[string]int{"other": n}
	for kind, set := range map[string]*int{queueBackup: w.Backup, queueRestore: w.Restore, queueRestoreTest: w.RestoreTest} {
		c[kind] = n
		if set != nil {
			c[kind] = *set
		}
	}
	return c
}

// queues are River's queues for a concurrency.
func queues(c map[string]int) map[string]river.QueueConfig {
	q := map[string]river.QueueConfig{
		river.QueueDefault: {MaxWorkers: max(c["other"], 1)},
		queueNotify:        {MaxWorkers: notifyWorkers},
	}
	for _, kind := range []string{queueBackup, queueRestore, queueRestoreTest} {
		if c[kind] > 0 {
			q[kind] = river.QueueConfig{MaxWorkers: c[kind]}
		}
	}
	return q
}

// newWorkerID is the node's name and a part unique to this process.
func newWorkerID(node string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return node + "-" + hex.EncodeToString(b[:])
}

// heartbeatInterval is how often a worker writes its heartbeat: three
// beats fit in the timeout, so one slow write never makes it look dead.
func heartbeatInterval(timeout time.Duration) time.Duration { return timeout / 3 }

// checkNodeFree refuses to start a second live process on a node: a
// process ends its node's RUNNING jobs at start (endInterrupted), which
// would end the other one's work. A worker is alive while it has not
// stopped, its heartbeat is recent, and, on this host, its process exists.
func (e *Engine) checkNodeFree(ctx context.Context) error {
	workers, err := e.catalog.ListWorkers(ctx)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	timeout := e.heartbeatTimeout()
	for _, w := range workers {
		if w.Node != e.cfg.Current().Node || w.StoppedAt != nil || now().Sub(w.LastHeartbeatAt) > timeout {
			continue
		}
		if w.Host == host && !processExists(w.PID) {
			continue // died here, before its heartbeat grew old
		}
		return fmt.Errorf("node %q already has a live worker, %s (host %s, pid %d, last heartbeat %s ago): give each vigil process its own node name (config node:, or vigil worker --node), or stop that one first",
			e.cfg.Current().Node, w.ID, w.Host, w.PID, now().Sub(w.LastHeartbeatAt).Round(time.Second))
	}
	return nil
}

func processExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// register records this process as a worker and starts its heartbeat.
func (e *Engine) register(ctx context.Context) error {
	host, _ := os.Hostname()
	at := now()
	w := catalog.Worker{ID: e.id, Node: e.cfg.Current().Node, Host: host, PID: os.Getpid(), StartedAt: at, LastHeartbeatAt: at, Concurrency: e.concurrency}
	if err := e.catalog.RegisterWorker(ctx, w); err != nil {
		return err
	}
	// Records of workers silent for a week are history, not workers.
	if _, err := e.catalog.DeleteWorkersBefore(ctx, at.Add(-7*24*time.Hour)); err != nil {
		e.logger.Warn("forget old workers", "err", err)
	}
	return nil
}

// heartbeat writes the worker's heartbeat, with the vigil jobs it runs,
// every heartbeatInterval until ctx ends. A failed write is logged and
// tried again at the next beat: the catalog may be restarting.
//
// After each beat that was written, it ends the jobs of dead workers
// (reapDead), but only once its own beats have been written without a
// break for a whole heartbeat timeout (reachedSince). While the catalog
// is away, no worker can write a heartbeat, so when it comes back every
// heartbeat is old: a reaper that judged at once would count its live
// peers dead and end their jobs. Waiting one timeout from its own return
// gives each live peer the same time to write again as the timeout
// gives it anyway; a peer still silent by then is dead, or cut off from
// the catalog on its own.
func (e *Engine) heartbeat(ctx context.Context) {
	timeout := e.heartbeatTimeout()
	tick := time.NewTicker(heartbeatInterval(timeout))
	defer tick.Stop()
	reachedSince, cutOff := now(), false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := e.beat(ctx, timeout); err != nil {
			if ctx.Err() == nil {
				e.logger.Error("write worker heartbeat", "worker", e.id, "err", err)
			}
			cutOff = true
			continue // this worker may be the one cut off: judge no one
		}
		if cutOff {
			reachedSince, cutOff = now(), false
		}
		if err := e.reapDead(ctx, reachedSince); err != nil && ctx.Err() == nil {
			e.logger.Error("end the jobs of dead workers", "err", err)
		}
	}
}

// beat writes one heartbeat. It gives up after the heartbeat timeout: a
// write hanging on a catalog that went away must not hold up the next
// beats, which are what find it back.
func (e *Engine) beat(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return e.catalog.HeartbeatWorker(ctx, e.id, now(), e.running())
}

// running returns the ids of the vigil jobs (bj-…, rj-…) this process
// works, or for a job of no vigil job, its kind. They are kept in memory
// (jobContext), not asked of the catalog: a heartbeat needs no query but
// its own write.
func (e *Engine) running() []string {
	e.workingMu.Lock()
	defer e.workingMu.Unlock()
	ids := []string{}
	for _, id := range e.working {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// WorkerID is this process's worker id, as `vigil workers list` shows it.
func (e *Engine) WorkerID() string { return e.id }

// heartbeatTimeout is workers.heartbeat_timeout, or its default for a
// config built in code.
func (e *Engine) heartbeatTimeout() time.Duration {
	if e.cfg.Current().Workers.HeartbeatTimeout <= 0 {
		return config.DefaultHeartbeatTimeout
	}
	return time.Duration(e.cfg.Current().Workers.HeartbeatTimeout)
}

// jobTimeout is workers.job_timeout, or its default for a config built in
// code.
func (e *Engine) jobTimeout() time.Duration {
	if e.cfg.Current().Workers.JobTimeout <= 0 {
		return config.DefaultJobTimeout
	}
	return time.Duration(e.cfg.Current().Workers.JobTimeout)
}

// reapDead ends the running backups of workers whose heartbeat is older
// than the heartbeat timeout, and hands their River jobs back to the
// queue, where the live workers take them and their queued work. Of the
// workers finding one dead at once, the one that claims it does this
// (ClaimDeadWorker). A dead worker whose node has a live process again is
// only claimed: that process ended its node's jobs when it started.
//
// Files and copies of a dead worker's restores and restore tests are on
// its machine: only a process of its node can remove them, when it starts
// again (the restore tests' sweep), so their records say so.
//
// reachedSince is since when this process has reached the catalog without
// a break. Until that is a heartbeat timeout ago, it judges no one: the
// others' heartbeats may be old only because the catalog was away from
// all of them (see heartbeat).
func (e *Engine) reapDead(ctx context.Context, reachedSince time.Time) error {
	at, timeout := now(), e.heartbeatTimeout()
	if at.Sub(reachedSince) < timeout {
		return nil
	}
	workers, err := e.catalog.ListWorkers(ctx)
	if err != nil {
		return err
	}
	alive := map[string]bool{e.cfg.Current().Node: true}
	for _, w := range workers {
		if w.State(at, timeout) == catalog.WorkerAlive {
			alive[w.Node] = true
		}
		if w.ID == e.id && w.ReapedBy != "" {
			// This process wrote no heartbeat for longer than the
			// timeout (stopped, frozen, cut off from the catalog), and
			// another ended its jobs; their writes from here change
			// nothing. Unless it joins the live workers again, its
			// next death would never be noticed.
			e.logger.Warn("this worker was counted dead while it was cut off, and another ended its jobs; it carries on with new ones",
				"worker", e.id, "reaped_by", w.ReapedBy, "heartbeat_timeout", timeout)
			if err := e.catalog.RejoinWorker(ctx, e.id); err != nil {
				return err
			}
		}
	}
	for _, w := range workers {
		if w.ID == e.id || w.ReapedBy != "" || w.State(at, timeout) != catalog.WorkerDead {
			continue
		}
		won, err := e.catalog.ClaimDeadWorker(ctx, w.ID, at.Add(-timeout), e.id)
		if err != nil || !won || alive[w.Node] {
			if err != nil {
				return err
			}
			continue
		}
		if err := e.endJobsOfDead(ctx, w, timeout); err != nil {
			return err
		}
	}
	return nil
}

// endJobsOfDead ends the RUNNING backups, restores and restore tests of
// dead worker w ABORTED, saying why, and requeues the River jobs it was
// running, whose next attempt finds its record ended and does nothing.
func (e *Engine) endJobsOfDead(ctx context.Context, w catalog.Worker, timeout time.Duration) error {
	backups, err := e.catalog.ListBackupJobs(ctx, catalog.BackupJobFilter{Status: []vigil.BackupJobStatus{vigil.BackupRunning}, Node: w.Node})
	if err != nil {
		return fmt.Errorf("list the backups of dead worker %s: %w", w.ID, err)
	}
	msg := fmt.Sprintf("interrupted: worker %s (host %s, pid %d) wrote no heartbeat since %s, more than workers.heartbeat_timeout (%s), and is counted dead; no recovery point was listed for this backup: start it again",
		w.ID, w.Host, w.PID, w.LastHeartbeatAt.Format(time.RFC3339), timeout)
	for _, job := range backups {
		if err := e.backups.End(ctx, &job, vigil.BackupAborted, msg); err != nil {
			return err
		}
	}
	restores, tests, err := e.endRestoresOfDead(ctx, w, timeout)
	if err != nil {
		return err
	}
	n, err := e.rescueOf(ctx, w.Node)
	if err != nil {
		return fmt.Errorf("requeue the jobs of dead worker %s: %w", w.ID, err)
	}
	e.logger.Warn("ended the jobs of a dead worker", "worker", w.ID, "host", w.Host, "backups", len(backups), "restores", restores, "restore_tests", tests, "requeued", n)
	return nil
}

// endRestoresOfDead ends the plain restores and the restore tests that
// dead worker w was running. A restore test is ended ABORTED with its
// clean-up pending on w's node, and tested again; a plain restore ends
// ABORTED, as a backup does, with the removal of what it wrote pending on
// w's node too: its files, and its hold on its target, are on w's
// machine, which this worker need not reach. A process of w's node
// removes them when it starts again (endInterrupted), or w itself, should
// it only have been cut off and carry on. Whichever of w and this worker
// writes the job first moves it on; the other's write changes nothing.
func (e *Engine) endRestoresOfDead(ctx context.Context, w catalog.Worker, timeout time.Duration) (restores, tests int, err error) {
	why := fmt.Sprintf("worker %s (host %s, pid %d) wrote no heartbeat since %s, more than workers.heartbeat_timeout (%s), and is counted dead",
		w.ID, w.Host, w.PID, w.LastHeartbeatAt.Format(time.RFC3339), timeout)
	running, err := e.catalog.ListRestoreJobs(ctx, catalog.RestoreJobFilter{Status: []vigil.RestoreJobStatus{vigil.RestoreRunning}, Node: w.Node})
	if err != nil {
		return 0, 0, fmt.Errorf("list the restores of dead worker %s: %w", w.ID, err)
	}
	for _, job := range running {
		if job.RestoreTest {
			continue // with the tests below
		}
		target := job.Metadata[resource.MetaTargetPath]
		if target == "" {
			target = job.CreatedResourceLocation
		}
		from := catalog.StepOf(&job)
		msg := fmt.Sprintf("interrupted: %s; what this restore had written into %s on host %s is removed when a vigil process of node %s starts again: start the restore again then",
			why, target, w.Host, w.Node)
		job.Status, job.StatusMessage, job.CompletedAt = vigil.RestoreAborted, msg, ptr(now())
		job.DeletionStatus = vigil.DeletionDeleting
		job.DeletionMessage = fmt.Sprintf("clean-up pending on node %s: what the restore wrote into %s is on that worker's machine, and is removed when a vigil process of node %s starts again",
			w.Node, target, w.Node)
		err := e.Record(ctx, updateRestoreFrom(&job, from), vigil.RestoreJobEvent(vigil.EventRestoreJobFailed, &job))
		if errors.Is(err, errRestoreEndedElsewhere) {
			continue // it ended on its worker meanwhile: that worker is alive after all
		}
		if err != nil {
			return restores, tests, fmt.Errorf("end restore job %s of dead worker %s: %w", job.ID, w.ID, err)
		}
		e.jobLog(ctx, job.ID, "%s: %s; %s", job.Status, msg, job.DeletionMessage)
		restores++
	}
	open, err := e.catalog.ListRestoreJobs(ctx, catalog.RestoreJobFilter{NotDeleted: true, Node: w.Node})
	if err != nil {
		return restores, 0, fmt.Errorf("list the restore tests of dead worker %s: %w", w.ID, err)
	}
	for _, job := range open {
		if job.ValidationStatus.Final() {
			continue // judged already: only its clean-up waits for its node
		}
		if err := e.tests.EndOfDeadWorker(ctx, &job, why); err != nil {
			return restores, tests, err
		}
		tests++
	}
	return restores, tests, nil
}
