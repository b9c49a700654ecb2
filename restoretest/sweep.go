package restoretest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/instance"
)

// Sweep finishes this node's restore tests that no worker of this process
// is running and whose copy is not known deleted: tests a crash (or a
// failed catalog write) interrupted end with a verdict, failed deletions
// are retried, and kept copies whose time is up are deleted. At start-up
// it also removes instance folders that no unfinished test owns.
func (t *Tester) Sweep(ctx context.Context, startup bool) error {
	t.mu.Lock()
	jobs, err := t.catalog.ListRestoreJobs(ctx, catalog.RestoreJobFilter{NotDeleted: true, Node: t.cfg.Current().Node})
	if err != nil {
		t.mu.Unlock()
		return fmt.Errorf("list restore tests to clean up: %w", err)
	}
	var mine []vigil.RestoreJob
	for _, job := range jobs {
		isKept := job.DeletionStatus == "" && job.KeepUntil != nil && job.ValidationStatus.Final()
		if t.running[job.ID] || isKept && now().Before(*job.KeepUntil) || givenUp(job) {
			continue // running here, still kept (its app survives restarts), or a person's now
		}
		t.running[job.ID] = true
		mine = append(mine, job)
	}
	t.mu.Unlock()

	var errs []error
	for i := range mine {
		job := &mine[i]
		err := t.finish(ctx, job)
		t.release(job.ID)
		errs = append(errs, err)
	}
	if startup {
		// Instances whose job says they are deleted, or that no job knows,
		// were left between two steps: vigil made them (they carry its
		// mark), so they go too.
		removed, err := instance.Sweep(t.Dir(), func(jobID string) bool {
			j, err := t.catalog.GetRestoreJob(ctx, jobID)
			if err != nil {
				return !errors.Is(err, vigil.ErrNotFound)
			}
			return j.DeletionStatus != vigil.DeletionSuccessful
		}, stopGrace)
		for _, id := range removed {
			t.logger.Info("removed a restore test's leftover instance", "job", id)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Free removes, at start-up and before vigil writes anything to the
// catalog, the instance folders of the restore tests this node's last run
// left unfinished, except kept copies whose time is not up: a copy that
// filled the data dir's disk would otherwise leave the catalog no room to
// record the test's end, and vigil could not start. It only reads the
// catalog; Sweep then finishes the records, finding the folders gone.
func (t *Tester) Free(ctx context.Context) error {
	jobs, err := t.catalog.ListRestoreJobs(ctx, catalog.RestoreJobFilter{NotDeleted: true, Node: t.cfg.Current().Node})
	if err != nil {
		return fmt.Errorf("list restore tests to clean up: %w", err)
	}
	var errs []error
	for _, job := range jobs {
		isKept := job.DeletionStatus == "" && job.KeepUntil != nil && job.ValidationStatus.Final()
		if isKept && now().Before(*job.KeepUntil) || givenUp(job) {
			continue
		}
		inst, err := instance.Open(t.Dir(), job.ID)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = inst.Remove(stopGrace)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove the copy of restore test %s: %w", job.ID, err))
		}
	}
	return errors.Join(errs...)
}

// finish ends a restore test no worker is running, and deletes its copy.
func (t *Tester) finish(ctx context.Context, job *vigil.RestoreJob) error {
	var events []vigil.Event
	// The verdict is announced with the deletion that follows it; a test
	// whose clean-up vigil's death cut short has none yet.
	announce, err := t.unannounced(ctx, job.ID)
	if err != nil {
		return err
	}
	from := catalog.StepOf(job)
	if !job.ValidationStatus.Final() {
		// Interrupted: the test ends with a verdict now.
		if interrupted(job) {
			events = append(events, vigil.RestoreJobEvent(vigil.EventRestoreJobFailed, job))
		}
		t.jobLog(ctx, job.ID, "%s", job.ValidationMessage)
	} else if job.KeepUntil != nil && job.DeletionStatus == "" {
		t.jobLog(ctx, job.ID, "the kept copy's time is up (%s): deleting it", job.KeepUntil.Format(time.RFC3339))
	}
	deleting(job)
	err = t.journal.Record(ctx, updateFrom(job, from), events...)
	if errors.Is(err, errEndedElsewhere) {
		return nil // moved on since it was listed: the next sweep looks again
	}
	if err != nil {
		return err
	}
	return t.delete(ctx, job, nil, nil, t.plan(job), announce)
}

// unannounced reports whether restore test id has no RESTORE_TEST_STATUS
// yet.
func (t *Tester) unannounced(ctx context.Context, id string) (bool, error) {
	evs, err := t.catalog.ListEvents(ctx, catalog.EventFilter{JobID: id, Types: []vigil.EventType{vigil.EventRestoreTestStatus}, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("look for the verdict of restore test %s: %w", id, err)
	}
	return len(evs) == 0, nil
}

// Loop runs Sweep every lifecycle.check_interval until ctx ends. Every
// vigil process runs it for its own node's tests.
func (t *Tester) Loop(ctx context.Context) {
	tick := time.NewTicker(time.Duration(t.cfg.Current().Lifecycle.CheckInterval))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := t.Sweep(ctx, false); err != nil && ctx.Err() == nil {
				t.logger.Error("clean up restore tests", "err", err)
			}
		}
	}
}

// RunPlan runs scheduled restore testing plan once: a restore test of a
// recovery point of each of its resources, chosen among those of the
// plan's selection window. One transaction holds all resources' tests: a
// retry never queues a test of the first resources twice.
func (t *Tester) RunPlan(ctx context.Context, plan config.RestoreTestPlan) error {
	return t.catalog.InTx(ctx, func(tx *catalog.Tx) error {
		for _, name := range t.cfg.Current().TestPlanResources(plan) {
			if err := t.runPlanFor(ctx, tx, plan, name); err != nil {
				return err
			}
		}
		return nil
	})
}

func (t *Tester) runPlanFor(ctx context.Context, tx *catalog.Tx, plan config.RestoreTestPlan, resource string) error {
	rps, err := tx.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{
		Resource: resource, Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}})
	if err != nil {
		return fmt.Errorf("list recovery points of %s: %w", resource, err)
	}
	since := now().Add(-time.Duration(plan.SelectionWindowDays) * 24 * time.Hour)
	var window []vigil.RecoveryPoint
	for _, rp := range rps {
		if rp.CreatedAt.After(since) && plan.TestsVault(rp.Vault) {
			window = append(window, rp)
		}
	}
	if len(window) == 0 {
		t.logger.Warn("restore testing plan found nothing to test", "plan", plan.Name, "resource", resource,
			"selection_window_days", plan.SelectionWindowDays)
		return nil
	}
	rp := pick(window, plan.RecoveryPoint)
	job, err := t.Queue(ctx, tx, rp, plan.Name)
	if err != nil {
		return err
	}
	return tx.AppendLog(ctx, job.ID, fmt.Sprintf("started by restore testing plan %s (schedule %q, %s among %d recovery points of the last %d days)",
		plan.Name, plan.Schedule, plan.RecoveryPoint, len(window), plan.SelectionWindowDays))
}

// pick chooses what a scheduled restore test restores among rps, newest
// first.
func pick(rps []vigil.RecoveryPoint, how string) vigil.RecoveryPoint {
	if how == config.RandomWithinWindow {
		return rps[rand.IntN(len(rps))]
	}
	return rps[0]
}

// EndOfDeadWorker ends restore test job, which a worker counted dead was
// running (why says which), ABORTED, and queues a new test of its
// recovery point as an interrupted test's (retry_interrupted): a live
// worker runs it, so the recovery point still gets a verdict. The copy
// cannot be deleted from here; its node's Sweep deletes it and records
// that when it starts again.
//
// The dead worker may only have been cut off, and carry on: whichever of
// the two writes first moves the test on, and the other's write, from the
// step it knew, changes nothing. A test the worker moved on since it was
// listed is read again and ended from where it is.
func (t *Tester) EndOfDeadWorker(ctx context.Context, job *vigil.RestoreJob, why string) error {
	for range 3 {
		err := t.endOfDeadWorker(ctx, job, why)
		if !errors.Is(err, errEndedElsewhere) {
			return err
		}
		if *job, err = t.catalog.GetRestoreJob(ctx, job.ID); err != nil {
			return fmt.Errorf("end restore test %s of a dead worker: %w", job.ID, err)
		}
		if job.ValidationStatus.Final() {
			return nil // judged meanwhile: only its clean-up waits for its node
		}
	}
	return fmt.Errorf("end restore test %s of a dead worker: it kept changing while it was ended; a process of its node ends it when it starts again", job.ID)
}

func (t *Tester) endOfDeadWorker(ctx context.Context, job *vigil.RestoreJob, why string) error {
	from := catalog.StepOf(job)
	var events []vigil.Event
	if workerDied(job, why) {
		events = append(events, vigil.RestoreJobEvent(vigil.EventRestoreJobFailed, job))
	}
	plan := t.plan(job)
	events = append(events, t.statusEvent(job, plan))
	err := t.journal.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error {
		if err := updateFrom(job, from)(ctx, tx); err != nil {
			return err
		}
		return t.retry(ctx, tx, job, plan)
	}, events...)
	if errors.Is(err, errEndedElsewhere) {
		return err
	}
	if err != nil {
		return fmt.Errorf("end restore test %s of a dead worker: %w", job.ID, err)
	}
	t.jobLog(ctx, job.ID, "%s; %s", job.ValidationMessage, job.DeletionMessage)
	return nil
}
