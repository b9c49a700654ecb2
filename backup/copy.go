package backup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/internal/testpause"
	"github.com/vigil-backup/vigil/vault"
)

// Tags a copy's snapshot carries besides a backup's: the copy job that
// made it and the recovery point it was copied from.
const (
	TagCopyJob             = "vigil:copy-job"
	TagSourceRecoveryPoint = "vigil:source-recovery-point"
)

// MaxCopyResumes is how many times a copy job that vigil's death cut short
// is taken up again before it ends ABORTED: a copy that kills vigil each
// time must not loop forever.
const MaxCopyResumes = 3

// errCopyEnded says that another run of the copy job recorded its end
// first.
var errCopyEnded = errors.New("the copy job already ended")

// StartCopy records a copy job of a recovery point into another vault and
// queues it, in one transaction.
func (b *Runner) StartCopy(ctx context.Context, req vigil.CopyRequest) (vigil.CopyJob, error) {
	rp, err := b.catalog.GetRecoveryPoint(ctx, req.RecoveryPointID)
	if errors.Is(err, vigil.ErrNotFound) {
		return vigil.CopyJob{}, &vigil.UnknownNameError{Kind: "recovery point", Name: req.RecoveryPointID, Known: b.recentRecoveryPoints(ctx)}
	}
	if err != nil {
		return vigil.CopyJob{}, fmt.Errorf("read recovery point: %w", err)
	}
	to, ok := b.cfg.Current().Vault(req.Vault)
	if !ok {
		return vigil.CopyJob{}, &vigil.UnknownNameError{Kind: "vault", Name: req.Vault, Known: b.cfg.Current().VaultNames()}
	}
	if to.Foreign() {
		return vigil.CopyJob{}, vigil.Invalidf("vault %q is a %s repository that another tool writes: vigil only reads it; copy into a vault of vigil's own", to.Name, to.Kind)
	}
	if rp.Foreign != nil {
		return vigil.CopyJob{}, vigil.Invalidf("recovery point %s is a %s snapshot in foreign vault %q: copy it with that tool (restic copy, kopia snapshot copy), which owns the repository", rp.ID, rp.Foreign.Tool, rp.Vault)
	}
	if rp.Status != vigil.RecoveryPointAvailable {
		return vigil.CopyJob{}, vigil.Invalidf("recovery point %s is %s, not AVAILABLE: copy another one (vigil recovery-points list --resource %s)", rp.ID, rp.Status, rp.Resource)
	}
	if rp.Vault == req.Vault {
		return vigil.CopyJob{}, vigil.Invalidf("recovery point %s is in vault %q already: copy it into another vault (%v)", rp.ID, rp.Vault, b.cfg.Current().VaultNames())
	}
	if req.Expiry < 0 || req.Expiry > vigil.MaxExpiry {
		return vigil.CopyJob{}, vigil.Invalidf("expiry must be from 0 to 100 years; give none to keep the copy forever")
	}
	if req.CreatedBy == "" {
		req.CreatedBy = "on-demand"
	}
	var job vigil.CopyJob
	err = b.catalog.InTx(ctx, func(tx *catalog.Tx) error {
		job, err = b.queueCopy(ctx, tx, rp, req.Vault, req.Expiry, req.CreatedBy)
		return err
	})
	if err != nil {
		return vigil.CopyJob{}, fmt.Errorf("queue copy job: %w", err)
	}
	return job, nil
}

func (b *Runner) recentRecoveryPoints(ctx context.Context) []string {
	rps, err := b.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}, Limit: 10})
	if err != nil {
		return nil
	}
	var ids []string
	for _, rp := range rps {
		ids = append(ids, rp.ID)
	}
	return ids
}

// queueCopy records a copy job of rp into vault and queues it, in tx. The
// copy's recovery point id is chosen here, once.
func (b *Runner) queueCopy(ctx context.Context, tx *catalog.Tx, rp vigil.RecoveryPoint, vault string, expiry time.Duration, createdBy string) (vigil.CopyJob, error) {
	job := vigil.CopyJob{
		ID:                    vigil.NewID(vigil.PrefixCopyJob),
		Status:                vigil.BackupPending,
		Resource:              rp.Resource,
		ResourceType:          rp.ResourceType,
		SourceVault:           rp.Vault,
		SourceRecoveryPointID: rp.ID,
		Vault:                 vault,
		RecoveryPointID:       vigil.NewID(vigil.PrefixRecoveryPoint),
		CreatedBy:             createdBy,
		CreatedAt:             now(),
	}
	if expiry > 0 {
		job.ExpireAt = ptr(job.CreatedAt.Add(expiry))
	}
	if err := tx.InsertCopyJob(ctx, &job); err != nil {
		return job, err
	}
	return job, b.journal.QueueCopy(ctx, tx, job.ID)
}

// queuePlanCopies queues the copies that the plan of backup job wants of
// its new recovery point, in the transaction that lists it.
func (b *Runner) queuePlanCopies(ctx context.Context, tx *catalog.Tx, job *vigil.BackupJob, rp vigil.RecoveryPoint) error {
	plan, ok := b.cfg.Current().BackupPlan(job.CreatedBy)
	if !ok {
		return nil
	}
	for _, rule := range plan.CopyTo {
		cj, err := b.queueCopy(ctx, tx, rp, rule.Vault, rule.Expiry(), plan.Name)
		if err != nil {
			return fmt.Errorf("queue copy into vault %s: %w", rule.Vault, err)
		}
		if err := tx.AppendLog(ctx, job.ID, fmt.Sprintf("backup plan %s queued copy job %s of recovery point %s into vault %q", plan.Name, cj.ID, rp.ID, rule.Vault)); err != nil {
			return err
		}
	}
	return nil
}

// RunCopy carries copy job id on, in its attempt-th run. It copies the
// source recovery point's snapshot into the job's vault and lists the
// copy under the job's recovery point id once the vault has flushed it,
// with the restore tests that plans want for it.
//
// It is idempotent: a job found RUNNING was cut short by vigil's death
// and is taken up again; a snapshot tagged with the job's recovery point
// id found in the vault is that run's copy, and is listed instead of
// copying again; and the copy's id is inserted once, so no run ever
// lists a second recovery point. An error is for the caller to retry;
// one wrapping vigil.ErrNotFound will never succeed.
func (b *Runner) RunCopy(ctx context.Context, id string, attempt int) error {
	job, err := b.catalog.GetCopyJob(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case job.Status.Final():
		return nil
	case job.Status == vigil.BackupRunning:
		if attempt > MaxCopyResumes+1 {
			return b.EndCopy(ctx, &job, vigil.BackupAborted, fmt.Sprintf(
				"interrupted: vigil stopped during this copy %d times; no recovery point was made in vault %q: start the copy again (vigil recovery-points copy %s --to %s)",
				attempt-1, job.Vault, job.SourceRecoveryPointID, job.Vault))
		}
		b.jobLog(ctx, job.ID, "taken up again on node %s (run %d): vigil stopped while the copy ran", b.cfg.Current().Node, attempt)
		job.Node = b.cfg.Current().Node
		if err := b.catalog.UpdateCopyJob(ctx, &job); err != nil {
			return err
		}
	default:
		job.Status = vigil.BackupRunning
		job.StartedAt = ptr(now())
		job.Node = b.cfg.Current().Node
		err = b.journal.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateCopyJob(ctx, &job) },
			vigil.CopyJobEvent(vigil.EventCopyJobStarted, &job))
		if err != nil {
			return err
		}
		b.jobLog(ctx, job.ID, "copy of recovery point %s (%s %q) from vault %q into vault %q started on node %s",
			job.SourceRecoveryPointID, job.ResourceType, job.Resource, job.SourceVault, job.Vault, b.cfg.Current().Node)
	}

	again := fmt.Sprintf("start the copy again (vigil recovery-points copy %s --to %s)", job.SourceRecoveryPointID, job.Vault)
	src, err := b.catalog.GetRecoveryPoint(ctx, job.SourceRecoveryPointID)
	if errors.Is(err, vigil.ErrNotFound) {
		return b.EndCopy(ctx, &job, vigil.BackupFailed, fmt.Sprintf("recovery point %s is no longer in the catalog: nothing to copy", job.SourceRecoveryPointID))
	}
	if err != nil {
		return err
	}
	if src.Status != vigil.RecoveryPointAvailable {
		return b.EndCopy(ctx, &job, vigil.BackupFailed, fmt.Sprintf("recovery point %s is %s, not AVAILABLE, so it was not copied: copy another recovery point of %s", src.ID, src.Status, src.Resource))
	}
	from, err := b.vaults.Vault(ctx, src.Vault)
	if err != nil {
		return b.EndCopy(ctx, &job, vigil.BackupFailed, err.Error())
	}
	to, err := b.vaults.Vault(ctx, job.Vault)
	if err != nil {
		return b.EndCopy(ctx, &job, vigil.BackupFailed, err.Error())
	}

	begin := now()
	snapshotID, err := b.copySnapshot(ctx, &job, src, from, to)
	if err != nil {
		if who, ok := vigil.CancelledBy(ctx); ok {
			return b.EndCopy(context.WithoutCancel(ctx), &job, vigil.BackupAborted, vigil.CancelledMessage(who, fmt.Sprintf("no recovery point was made in vault %q", job.Vault)))
		}
		if ctx.Err() != nil {
			return b.EndCopy(ctx, &job, vigil.BackupAborted, fmt.Sprintf("vigil was stopped during the copy; no recovery point was made in vault %q: %s", job.Vault, again))
		}
		return b.EndCopy(ctx, &job, vigil.BackupFailed, fmt.Sprintf("%v; no recovery point was made in vault %q: %s once the cause is fixed", err, job.Vault, again))
	}
	if d := b.pause(ctx, job.ID, "record"); d > 0 && ctx.Err() != nil {
		if who, ok := vigil.CancelledBy(ctx); ok {
			// Its snapshot is in the vault already: no recovery point
			// will name it, so it goes.
			what := fmt.Sprintf("no recovery point was made in vault %q, and the copied snapshot was deleted", job.Vault)
			if err := to.DeleteSnapshot(context.WithoutCancel(ctx), snapshotID); err != nil {
				what = fmt.Sprintf("no recovery point was made in vault %q, but deleting the copied snapshot failed (%v): delete it with the kopia CLI (kopia snapshot delete %s --delete)", job.Vault, err, snapshotID)
			}
			return b.EndCopy(context.WithoutCancel(ctx), &job, vigil.BackupAborted, vigil.CancelledMessage(who, what))
		}
		return b.EndCopy(ctx, &job, vigil.BackupAborted, fmt.Sprintf("vigil was stopped during the copy; no recovery point was made in vault %q: %s", job.Vault, again))
	}

	done := now()
	rp := vigil.RecoveryPoint{
		ID:           job.RecoveryPointID,
		Vault:        job.Vault,
		Resource:     src.Resource,
		ResourceType: src.ResourceType,
		Status:       vigil.RecoveryPointAvailable,
		SizeBytes:    src.SizeBytes,
		Files:        src.Files,
		BackupJobID:  src.BackupJobID,
		SnapshotID:   snapshotID,
		// A copy holds the source's data as it was when it was backed
		// up: its age, which restore tests measure, is the source's.
		CreatedAt:             src.CreatedAt,
		CompletedAt:           &done,
		ExpireAt:              job.ExpireAt,
		Database:              src.Database,
		Skipped:               src.Skipped,
		SourceRecoveryPointID: src.ID,
		CopyJobID:             job.ID,
	}
	job.Status, job.StatusMessage = vigil.BackupCompleted, ""
	job.Bytes, job.Files, job.PercentDone = src.SizeBytes, src.Files, 100
	job.CompletedAt = &done
	err = b.journal.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error {
		cur, err := tx.GetCopyJob(ctx, job.ID)
		if err != nil {
			return err
		}
		if cur.Status.Final() {
			return errCopyEnded
		}
		if err := tx.InsertRecoveryPoint(ctx, &rp); err != nil {
			return err
		}
		if err := tx.UpdateCopyJob(ctx, &job); err != nil {
			return err
		}
		return b.tests.QueueOnBackup(ctx, tx, &rp)
	}, vigil.CopyJobEvent(vigil.EventCopyJobCompleted, &job))
	if err != nil {
		b.dropUnlisted(ctx, to, job.RecoveryPointID, snapshotID)
		if errors.Is(err, errCopyEnded) {
			return nil
		}
		return fmt.Errorf("record completed copy: %w", err)
	}
	b.jobLog(ctx, job.ID, "completed in %s: %d files, %d bytes; recovery point %s in vault %q (snapshot %s)",
		done.Sub(begin).Round(time.Millisecond), rp.Files, rp.SizeBytes, rp.ID, rp.Vault, snapshotID)
	return nil
}

// copySnapshot returns the snapshot in to that holds the copy: one an
// earlier run of the job saved, or a new one.
func (b *Runner) copySnapshot(ctx context.Context, job *vigil.CopyJob, src vigil.RecoveryPoint, from, to *vault.Vault) (string, error) {
	found, err := to.SnapshotsTagged(ctx, TagRecoveryPoint, job.RecoveryPointID)
	if err != nil {
		return "", err
	}
	if len(found) > 0 {
		// Runs that raced each other could each have saved one; one is
		// kept, and the rest would only hold space.
		for _, extra := range found[1:] {
			if err := to.DeleteSnapshot(ctx, extra); err != nil {
				b.jobLog(ctx, job.ID, "could not delete the extra copy %s: %v", extra, err)
			}
		}
		b.jobLog(ctx, job.ID, "vault %q holds this job's copy already (snapshot %s), saved before vigil stopped: it is listed instead of copying again", job.Vault, found[0])
		return found[0], nil
	}
	b.pause(ctx, job.ID, "copy")
	stop := b.trackCopy(ctx, job)
	res, err := to.CopyFrom(ctx, from, src.SnapshotID, vault.CopyOptions{
		Progress: stop.set,
		Tags: map[string]string{
			TagRecoveryPoint:       job.RecoveryPointID,
			TagBackupJob:           src.BackupJobID,
			TagResource:            src.Resource,
			TagResourceType:        src.ResourceType,
			TagCopyJob:             job.ID,
			TagSourceRecoveryPoint: src.ID,
		},
		Description: "vigil copy job " + job.ID,
	})
	stop.stop()
	if err != nil {
		return "", err
	}
	b.jobLog(ctx, job.ID, "copied snapshot %s of vault %q into vault %q as snapshot %s: read %d of its %d bytes, the rest unchanged since an earlier copy; only what the vault lacked was stored",
		src.SnapshotID, src.Vault, job.Vault, res.SnapshotID, res.HashedBytes, res.Bytes)
	return res.SnapshotID, nil
}

// trackCopy writes a running copy's progress to its record from time to
// time.
func (b *Runner) trackCopy(ctx context.Context, job *vigil.CopyJob) *progressTracker {
	snapshot := *job
	return b.track(ctx, func(percent float64, bytes, files int64) {
		snapshot.PercentDone, snapshot.Bytes, snapshot.Files = percent, bytes, files
		if err := b.catalog.UpdateCopyJob(ctx, &snapshot); err != nil {
			b.logger.Warn("record copy progress", "job", job.ID, "err", err)
		}
	})
}

// dropUnlisted deletes snapshot id from v unless the catalog lists it as
// recovery point rpID: a copy that lost the race to be recorded must not
// keep its data.
func (b *Runner) dropUnlisted(ctx context.Context, v *vault.Vault, rpID, id string) {
	ctx = context.WithoutCancel(ctx)
	if rp, err := b.catalog.GetRecoveryPoint(ctx, rpID); err == nil && rp.SnapshotID == id {
		return
	} else if err != nil && !errors.Is(err, vigil.ErrNotFound) {
		return // the catalog cannot tell: keep it rather than lose a listed copy
	}
	if err := v.DeleteSnapshot(ctx, id); err != nil {
		b.logger.Warn("delete an unlisted copy", "vault", v.Name(), "snapshot", id, "err", err)
	}
}

// EndCopy records a copy job's final status other than COMPLETED.
func (b *Runner) EndCopy(ctx context.Context, job *vigil.CopyJob, status vigil.BackupJobStatus, msg string) error {
	job.Status = status
	job.StatusMessage = msg
	job.CompletedAt = ptr(now())
	job.Bytes, job.Files = 0, 0
	err := b.journal.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error {
		cur, err := tx.GetCopyJob(ctx, job.ID)
		if err != nil {
			return err
		}
		if cur.Status.Final() {
			return errCopyEnded
		}
		return tx.UpdateCopyJob(ctx, job)
	}, vigil.CopyJobEvent(vigil.EventCopyJobFailed, job))
	if errors.Is(err, errCopyEnded) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record copy job status: %w", err)
	}
	b.jobLog(ctx, job.ID, "%s: %s", status, msg)
	return nil
}

// EnvCopyPause, set in vigil's environment by tests only, makes each copy
// job pause at the steps it names, "copy=2s,record=1m", so that a test can
// kill vigil at a chosen step: copy (the job is RUNNING, nothing copied
// yet), record (the copy is saved in the vault, not yet in the catalog).
// Each pause is written into the job's log first.
const EnvCopyPause = "VIGIL_TEST_COPY_PAUSE"

func copyPauses() (testpause.Steps, error) { return testpause.Read(EnvCopyPause, "copy", "record") }

// pause waits at step if EnvCopyPause says so, or until ctx ends.
func (b *Runner) pause(ctx context.Context, jobID, step string) time.Duration {
	return b.pauses.At(ctx, step, func(d time.Duration) {
		b.jobLog(ctx, jobID, "paused %s before %s (%s)", d, step, EnvCopyPause)
	})
}
