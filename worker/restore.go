package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/restoretest"
	"github.com/vigil-backup/vigil/vault"
	"github.com/vigil-backup/vigil/vault/restic"
)

// RestoreArgs carries a plain restore job on. Restore tests queued before
// they had a kind of their own (RestoreTestArgs) came under this kind too,
// and still run as restore tests.
type RestoreArgs struct {
	JobID string `json:"job_id"`
}

func (RestoreArgs) Kind() string { return "vigil.restore" }

// RestoreTestArgs carries a restore test on.
type RestoreTestArgs struct {
	JobID string `json:"job_id"`
}

func (RestoreTestArgs) Kind() string { return "vigil.restore-test" }

// RestoreMetadata returns what a restore of the recovery point accepts, with
// its defaults: the keys `--set` may override.
func (e *Engine) RestoreMetadata(ctx context.Context, rpID string) (map[string]string, error) {
	rp, err := restoretest.Restorable(ctx, e.catalog, rpID)
	if err != nil {
		return nil, err
	}
	res, err := e.Resource(rp.Resource, rp.ResourceType)
	if err != nil {
		return nil, err
	}
	return res.RestoreDefaults(rp), nil
}

// StartRestore checks the request, records a restore job and queues it, in
// one transaction. A target that is taken is refused here, before anything
// is written.
func (e *Engine) StartRestore(ctx context.Context, req vigil.RestoreRequest) (vigil.RestoreJob, error) {
	rp, err := restoretest.Restorable(ctx, e.catalog, req.RecoveryPointID)
	if err != nil {
		return vigil.RestoreJob{}, err
	}
	if f := rp.Foreign; f != nil && f.Tool == config.KindRestic {
		vc, _ := e.cfg.Current().Vault(rp.Vault)
		return vigil.RestoreJob{}, vigil.Invalidf("recovery point %s is restic snapshot %s: restore it with restic, which owns the repository "+
			"(restic -r %s restore %s --target DIR); vigil restore-tests it (vigil restore-test start --recovery-point %s)",
			rp.ID, restic.ShortID(f.ID), vc.Repository, rp.SnapshotID, rp.ID)
	}
	res, err := e.Resource(rp.Resource, rp.ResourceType)
	if err != nil {
		return vigil.RestoreJob{}, err
	}
	defaults := res.RestoreDefaults(rp)
	for k := range req.Metadata {
		if _, ok := defaults[k]; !ok && k == resource.MetaPath {
			return vigil.RestoreJob{}, vigil.Invalidf("a %s recovery point cannot be restored in part: it holds one dump of the database (%s lists it), "+
				"which a restore loads whole into a new database; leave out --path (metadata key %q)", rp.ResourceType, "vigil recovery-points ls "+rp.ID, resource.MetaPath)
		}
		if _, ok := defaults[k]; !ok {
			return vigil.RestoreJob{}, vigil.Invalidf("unknown restore metadata key %q: a %s restore accepts %s",
				k, rp.ResourceType, strings.Join(slices.Sorted(maps.Keys(defaults)), ", "))
		}
	}
	if req.CreatedBy == "" {
		req.CreatedBy = "on-demand"
	}
	job := vigil.NewRestoreJob(rp, req.CreatedBy)
	job.Metadata = maps.Clone(defaults)
	maps.Copy(job.Metadata, req.Metadata)
	for k, v := range job.Metadata {
		job.Metadata[k] = strings.ReplaceAll(v, resource.Placeholder, job.ID)
	}
	if err := res.PrepareRestore(ctx, &job, rp); err != nil {
		return vigil.RestoreJob{}, err
	}
	if p := job.Metadata[resource.MetaPath]; p != "" {
		// A path the recovery point does not hold is refused now, not by
		// a job that fails later.
		if _, _, err := e.files(ctx, rp, p, false); err != nil {
			return vigil.RestoreJob{}, err
		}
	}
	err = e.catalog.InTx(ctx, func(tx *catalog.Tx) error {
		if err := tx.InsertRestoreJob(ctx, &job); err != nil {
			return err
		}
		return e.insertTx(ctx, tx, RestoreArgs{JobID: job.ID}, nil)
	})
	if err != nil {
		return vigil.RestoreJob{}, fmt.Errorf("queue restore job: %w", err)
	}
	return job, nil
}

type restoreWorker struct {
	river.WorkerDefaults[RestoreArgs]
	e *Engine
}

// Timeout is River's JobTimeout, workers.job_timeout.
func (w *restoreWorker) Timeout(*river.Job[RestoreArgs]) time.Duration { return 0 }

func (w *restoreWorker) Work(ctx context.Context, rj *river.Job[RestoreArgs]) error {
	e := w.e
	job, err := e.restoreJob(ctx, rj.Args.JobID)
	if err != nil {
		return err
	}
	if job.RestoreTest {
		return e.tests.Run(ctx, &job)
	}
	switch {
	case job.Status.Final():
		return nil
	case job.Status == vigil.RestoreRunning:
		return e.endRestore(ctx, &job, vigil.RestoreAborted, interruptedRestore, true)
	}
	if who, ok := vigil.CancelledBy(ctx); ok {
		// Cancelled as it was taken from the queue.
		return e.endRestore(ctx, &job, vigil.RestoreAborted, vigil.CancelledMessage(who, "it had not started: nothing was restored"), false)
	}

	rp, err := e.catalog.GetRecoveryPoint(ctx, job.RecoveryPointID)
	if err != nil {
		return e.endRestore(ctx, &job, vigil.RestoreFailed, fmt.Sprintf("read recovery point %s: %v", job.RecoveryPointID, err), false)
	}
	res, err := e.Resource(job.Resource, job.ResourceType)
	if err != nil {
		return e.endRestore(ctx, &job, vigil.RestoreFailed, err.Error(), false)
	}
	if err := res.CheckTarget(&job); err != nil {
		return e.endRestore(ctx, &job, vigil.RestoreFailed, err.Error(), false)
	}
	job.Status = vigil.RestoreRunning
	job.StartedAt = ptr(now())
	job.Node = e.cfg.Current().Node
	err = e.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, &job) },
		vigil.RestoreJobEvent(vigil.EventRestoreJobStarted, &job))
	if err != nil {
		return err
	}
	e.jobLog(ctx, job.ID, "restore of recovery point %s (%s %q, vault %q) into %s started on node %s",
		rp.ID, rp.ResourceType, rp.Resource, rp.Vault, job.CreatedResourceLocation, e.cfg.Current().Node)

	storageCtx := vault.WithStorageLog(ctx, func(line string) { e.jobLog(ctx, job.ID, "%s", line) })
	v, err := e.Vault(storageCtx, rp.Vault)
	if err != nil {
		return e.endRestore(ctx, &job, vigil.RestoreFailed, err.Error(), true)
	}
	summary, err := res.Restore(storageCtx, v, rp, &job)
	if err != nil {
		// The resource removed what it had created: nothing is left to
		// clean up.
		status, msg := vigil.RestoreFailed, err.Error()
		if ctx.Err() != nil {
			status = vigil.RestoreAborted
		}
		if who, ok := vigil.CancelledBy(ctx); ok {
			msg = vigil.CancelledMessage(who, "what the restore had written into its target was removed")
		}
		return e.endRestore(ctx, &job, status, msg, false)
	}
	e.restorePauses.At(ctx, "record", func(d time.Duration) {
		e.jobLog(ctx, job.ID, "paused %s before record (%s)", d, EnvRestorePause)
	})
	if who, ok := vigil.CancelledBy(ctx); ok {
		// Cancelled once its files were written: they go, as an
		// interrupted restore's do (CleanInterrupted).
		return e.endRestore(ctx, &job, vigil.RestoreAborted, vigil.CancelledMessage(who, "what the restore had written into its target was removed"), true)
	}
	from := catalog.StepOf(&job)
	job.Status = vigil.RestoreCompleted
	job.CompletedAt = ptr(now())
	err = e.Record(ctx, updateRestoreFrom(&job, from), vigil.RestoreJobEvent(vigil.EventRestoreJobCompleted, &job))
	if errors.Is(err, errRestoreEndedElsewhere) {
		// This worker was counted dead while it restored, and another
		// ended the job ABORTED: what it wrote goes, as the job says.
		e.jobLog(ctx, job.ID, "this attempt's completion on node %s is not recorded: the restore was ended by another worker while it ran (this worker was counted dead); what it wrote is removed here", e.cfg.Current().Node)
		return e.cleanAbandoned(ctx, job.ID, res)
	}
	if err != nil {
		// Still RUNNING: the job's next attempt ends it ABORTED and
		// removes what this one wrote (CleanInterrupted).
		return fmt.Errorf("record completed restore: %w", err)
	}
	e.jobLog(ctx, job.ID, "completed in %s: %s%s", job.CompletedAt.Sub(*job.StartedAt).Round(time.Millisecond), summary, res.KeepRestore(ctx, &job))
	return nil
}

// EnvRestorePause, set in vigil's environment by tests only, holds each
// plain restore before the step it names: "record=1m" (its files are
// written, its end is not recorded yet), so that a test can kill or stop
// its worker there. The pause is written into the job's log first.
const EnvRestorePause = "VIGIL_TEST_RESTORE_PAUSE"

// errRestoreEndedElsewhere is what updateRestoreFrom returns for a restore
// that is no longer at the step this process last left it at.
var errRestoreEndedElsewhere = errors.New("the restore job was ended by another worker")

// updateRestoreFrom is the catalog write of a restore's new state, which
// this process moves on from step from: it fails with
// errRestoreEndedElsewhere, writing nothing, when another moved the job
// on meanwhile (a worker that counted this one dead ended it).
func updateRestoreFrom(job *vigil.RestoreJob, from catalog.RestoreStep) func(ctx context.Context, tx *catalog.Tx) error {
	return func(ctx context.Context, tx *catalog.Tx) error {
		ok, err := tx.UpdateRestoreJobAt(ctx, job, from)
		if err == nil && !ok {
			err = errRestoreEndedElsewhere
		}
		return err
	}
}

// cleanAbandoned removes what plain restore id wrote, which another
// worker ended while this node's worker ran it (its record's clean-up is
// pending on this node), and records that it did. It is a no-op for a
// restore whose clean-up is not pending here.
func (e *Engine) cleanAbandoned(ctx context.Context, id string, res resource.Resource) error {
	ctx = context.WithoutCancel(ctx)
	job, err := e.catalog.GetRestoreJob(ctx, id)
	if err != nil {
		return fmt.Errorf("read restore job %s: %w", id, err)
	}
	if job.RestoreTest || job.DeletionStatus != vigil.DeletionDeleting || job.Node != e.cfg.Current().Node {
		return nil
	}
	if res == nil {
		if res, err = e.Resource(job.Resource, job.ResourceType); err != nil {
			return fmt.Errorf("remove what restore job %s wrote: %w", id, err)
		}
	}
	detail := res.CleanInterrupted(ctx, &job)
	from := catalog.StepOf(&job)
	job.DeletionStatus = vigil.DeletionSuccessful
	job.DeletionMessage = "the clean-up ran on node " + e.cfg.Current().Node + ": what the restore had written into its target was looked for and removed" + detail
	err = e.Record(ctx, updateRestoreFrom(&job, from))
	if errors.Is(err, errRestoreEndedElsewhere) {
		return nil // recorded by another process of this node meanwhile
	}
	if err != nil {
		return fmt.Errorf("record the clean-up of restore job %s: %w", id, err)
	}
	e.jobLog(ctx, id, "clean-up %s: %s", job.DeletionStatus, job.DeletionMessage)
	return nil
}

// restoreJob reads the job a River job carries on.
func (e *Engine) restoreJob(ctx context.Context, id string) (vigil.RestoreJob, error) {
	job, err := e.catalog.GetRestoreJob(ctx, id)
	if errors.Is(err, vigil.ErrNotFound) {
		return job, river.JobCancel(fmt.Errorf("restore job %s is not in the catalog", id))
	}
	return job, err
}

func (e *Engine) runRestoreTest(ctx context.Context, args RestoreTestArgs) error {
	job, err := e.restoreJob(ctx, args.JobID)
	if err != nil {
		return err
	}
	return e.tests.Run(ctx, &job)
}

const interruptedRestore = "interrupted: vigil stopped while this restore was running; its partial files were removed: start the restore again"

// endRestore records a final status. A restore that vigil's death
// interrupted (interrupted: still RUNNING, by an attempt that died) leaves
// nothing behind: what it created is removed first; one that failed had
// removed it itself. A restore another worker ended meanwhile keeps that
// end.
func (e *Engine) endRestore(ctx context.Context, job *vigil.RestoreJob, status vigil.RestoreJobStatus, msg string, interrupted bool) error {
	ctx = context.WithoutCancel(ctx)
	if interrupted {
		if res, err := e.Resource(job.Resource, job.ResourceType); err == nil {
			msg += res.CleanInterrupted(ctx, job)
		} else {
			msg += fmt.Sprintf(" (what it had created could not be looked for: %v)", err)
		}
	}
	from := catalog.StepOf(job)
	job.Status = status
	job.StatusMessage = msg
	job.CompletedAt = ptr(now())
	err := e.Record(ctx, updateRestoreFrom(job, from), vigil.RestoreJobEvent(vigil.EventRestoreJobFailed, job))
	if errors.Is(err, errRestoreEndedElsewhere) {
		e.jobLog(ctx, job.ID, "this attempt's end (%s: %s) on node %s is not recorded: the restore was ended by another worker while it ran", status, msg, e.cfg.Current().Node)
		return e.cleanAbandoned(ctx, job.ID, nil)
	}
	if err != nil {
		return fmt.Errorf("record restore job status: %w", err)
	}
	e.jobLog(ctx, job.ID, "%s: %s", status, msg)
	return nil
}

// StartRestoreTest queues an on-demand restore test of a resource.
func (e *Engine) StartRestoreTest(ctx context.Context, req vigil.RestoreTestRequest) (vigil.RestoreJob, error) {
	return e.tests.Start(ctx, req)
}

// ReportValidation takes a verdict from validation logic outside vigil for
// a restore test that is validating and has an external validator.
func (e *Engine) ReportValidation(ctx context.Context, id string, status vigil.ValidationStatus, message string) (vigil.RestoreJob, error) {
	return e.tests.ReportValidation(ctx, id, status, message)
}
