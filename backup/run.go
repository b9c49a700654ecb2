package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/disk"
	"github.com/vigil-backup/vigil/vault"
)

// Snapshot tags written into the vault, so that the vault alone tells which
// recovery point, job and resource each snapshot is.
const (
	TagRecoveryPoint = "vigil:recovery-point"
	TagBackupJob     = "vigil:backup-job"
	TagResource      = "vigil:resource"
	TagResourceType  = "vigil:resource-type"
)

// Start records a backup job and queues it, in one transaction.
func (b *Runner) Start(ctx context.Context, req vigil.BackupRequest) (vigil.BackupJob, error) {
	res, ok := b.cfg.Current().Resource(req.Resource)
	if !ok {
		return vigil.BackupJob{}, &vigil.UnknownNameError{Kind: "resource", Name: req.Resource, Known: b.cfg.Current().ResourceNames()}
	}
	if res.Source != nil {
		return vigil.BackupJob{}, vigil.Invalidf("resource %s is backed up by another tool into vault %q: vigil only restore-tests it (vigil restore-test start --resource %s)", res.Name, res.Source.Vault, res.Name)
	}
	if req.Vault == "" {
		// With one vault of vigil's own there is nothing to choose.
		var own []string
		for _, v := range b.cfg.Current().Vaults {
			if !v.Foreign() {
				own = append(own, v.Name)
			}
		}
		if len(own) != 1 {
			return vigil.BackupJob{}, vigil.Invalidf("a backup of %s needs a vault: name one of %s (vigil backup start --vault NAME)", res.Name, strings.Join(own, ", "))
		}
		req.Vault = own[0]
	}
	v, ok := b.cfg.Current().Vault(req.Vault)
	if !ok {
		return vigil.BackupJob{}, &vigil.UnknownNameError{Kind: "vault", Name: req.Vault, Known: b.cfg.Current().VaultNames()}
	}
	if v.Foreign() {
		return vigil.BackupJob{}, vigil.Invalidf("vault %q is a %s repository that another tool writes: vigil only reads it; back up into a vault of vigil's own", v.Name, v.Kind)
	}
	if req.OnDemand && req.Expiry == 0 {
		req.Expiry = v.DefaultExpiry()
	}
	if req.Expiry < 0 {
		return vigil.BackupJob{}, vigil.Invalidf("expiry must not be negative")
	}
	if req.Expiry > vigil.MaxExpiry {
		return vigil.BackupJob{}, vigil.Invalidf("expiry must be at most 100 years; give none to keep the recovery point forever")
	}
	if req.CreatedBy == "" {
		req.CreatedBy = "on-demand"
	}
	job := vigil.BackupJob{
		ID:           vigil.NewID(vigil.PrefixBackupJob),
		Status:       vigil.BackupPending,
		Resource:     res.Name,
		ResourceType: res.Type,
		Vault:        req.Vault,
		CreatedBy:    req.CreatedBy,
		CreatedAt:    now(),
	}
	if req.Expiry > 0 {
		job.ExpireAt = ptr(job.CreatedAt.Add(req.Expiry))
	}
	err := b.catalog.InTx(ctx, func(tx *catalog.Tx) error {
		if err := tx.InsertBackupJob(ctx, &job); err != nil {
			return err
		}
		return b.journal.QueueBackup(ctx, tx, job.ID)
	})
	if err != nil {
		return vigil.BackupJob{}, fmt.Errorf("queue backup job: %w", err)
	}
	return job, nil
}

// Run carries backup job id on: it backs the resource up and lists the
// recovery point once the vault has flushed it. A job that already ended
// is left alone; one found RUNNING was cut short by vigil's death and
// ends ABORTED. An error is for the caller to retry (the catalog could
// not be written); one wrapping vigil.ErrNotFound will never succeed.
func (b *Runner) Run(ctx context.Context, id string) error {
	job, err := b.catalog.GetBackupJob(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case job.Status.Final():
		return nil // already ended, e.g. by the worker at start-up
	case job.Status == vigil.BackupRunning:
		// A previous attempt died mid-way (its process was killed).
		return b.End(ctx, &job, vigil.BackupAborted, Interrupted)
	}
	if who, ok := vigil.CancelledBy(ctx); ok {
		// Cancelled as it was taken from the queue.
		return b.End(context.WithoutCancel(ctx), &job, vigil.BackupAborted, vigil.CancelledMessage(who, "it had not started: no recovery point was made"))
	}

	job.Status = vigil.BackupRunning
	job.StartedAt = ptr(now())
	job.Node = b.cfg.Current().Node
	err = b.journal.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateBackupJob(ctx, &job) },
		vigil.BackupJobEvent(vigil.EventBackupJobStarted, &job))
	if err != nil {
		return err
	}

	cfg, ok := b.cfg.Current().Resource(job.Resource)
	if !ok {
		return b.End(ctx, &job, vigil.BackupFailed,
			fmt.Sprintf("resource %q is not in the config of node %s (%s): add it back, or, if it was just added, reload this node's vigil (vigil reload, or SIGHUP to vigil worker) so it reads the file again",
				job.Resource, b.cfg.Current().Node, b.cfg.Current().Path))
	}
	res, err := b.resources.Open(cfg)
	if err != nil {
		return b.End(ctx, &job, vigil.BackupFailed, err.Error())
	}
	b.jobLog(ctx, job.ID, "backup of %s %q (%s) into vault %q started on node %s", cfg.Type, cfg.Name, res.Location(), job.Vault, b.cfg.Current().Node)

	storageCtx := vault.WithStorageLog(ctx, b.storageLog(ctx, job.ID))
	v, err := b.vaults.Vault(storageCtx, job.Vault)
	if err != nil {
		return b.End(ctx, &job, vigil.BackupFailed, err.Error())
	}

	rp := vigil.RecoveryPoint{
		ID:           vigil.NewID(vigil.PrefixRecoveryPoint),
		Vault:        job.Vault,
		Resource:     job.Resource,
		ResourceType: job.ResourceType,
		Status:       vigil.RecoveryPointAvailable,
		BackupJobID:  job.ID,
		CreatedAt:    *job.StartedAt,
		ExpireAt:     job.ExpireAt,
	}
	tracker := b.trackProgress(ctx, &job)
	opts := vault.BackupOptions{
		Resource: cfg.Name,
		Tags: map[string]string{
			TagRecoveryPoint: rp.ID,
			TagBackupJob:     job.ID,
			TagResource:      cfg.Name,
			TagResourceType:  cfg.Type,
		},
		Description: "vigil backup job " + job.ID,
		Progress:    tracker.set,
	}
	var (
		result vault.BackupResult
		info   *vigil.DatabaseInfo
	)
	// A before_backup that fails (the application could not be flushed
	// or frozen) fails the backup: its snapshot would not be the
	// consistent one the hook is there for.
	if failed := b.runHook(ctx, &job, cfg, "before_backup", cfg.BeforeBackup); failed != "" {
		err = errors.New(failed + "; the backup did not start: fix the hook, or run it by hand in " + hookDir(cfg, b.cfg.Current().DataDir) + " to see why")
	} else {
		result, info, err = res.Backup(storageCtx, v, opts)
	}
	rp.Database = info
	tracker.stop()
	job.PercentDone, job.Bytes, job.Files = tracker.last()
	// after_backup runs whatever became of the backup, also when vigil is
	// stopping: it may thaw what before_backup froze. Its failure is
	// told in the job's message but changes no status: the snapshot is
	// as good as it was.
	status := vigil.BackupCompleted
	switch {
	case err != nil && ctx.Err() != nil:
		status = vigil.BackupAborted
	case err != nil:
		status = vigil.BackupFailed
	}
	afterFailed := b.runHook(context.WithoutCancel(ctx), &job, cfg, "after_backup", cfg.AfterBackup, "VIGIL_BACKUP_STATUS="+string(status))
	withAfter := func(msg string) string {
		if afterFailed == "" {
			return msg
		}
		return msg + "; then " + afterFailed
	}
	if err != nil {
		// What was read is not stored: a failed job reports no bytes and
		// no files, and its log says how far it got.
		if job.Bytes > 0 || job.Files > 0 {
			b.jobLog(ctx, job.ID, "read %d bytes in %d files before it ended; none of it is kept as a recovery point", job.Bytes, job.Files)
		}
		job.Bytes, job.Files = 0, 0
		if who, ok := vigil.CancelledBy(ctx); ok {
			return b.End(context.WithoutCancel(ctx), &job, vigil.BackupAborted, withAfter(vigil.CancelledMessage(who, "no recovery point was listed, and what was read is not kept")))
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return b.End(context.WithoutCancel(ctx), &job, vigil.BackupAborted, withAfter(fmt.Sprintf("the backup did not end within workers.job_timeout (%s); no recovery point was listed: raise workers.job_timeout in the config above the longest backup, then start it again",
				time.Duration(b.cfg.Current().Workers.JobTimeout))))
		}
		if ctx.Err() != nil {
			return b.End(ctx, &job, vigil.BackupAborted, withAfter("vigil was stopped during the backup; no recovery point was listed: start the backup again"))
		}
		msg := err.Error()
		if vc, ok := b.cfg.Current().Vault(job.Vault); ok && disk.Full(err) {
			msg += fmt.Sprintf("; %s once the failed write was given up: no recovery point was listed; free space there (expire old recovery points, then let vault maintenance give their space back) or move the vault to a larger disk, and back up again",
				disk.Describe(vc.Storage))
		}
		return b.End(ctx, &job, vigil.BackupFailed, withAfter(msg))
	}

	b.backupPauses.At(ctx, "record", func(d time.Duration) {
		b.jobLog(ctx, job.ID, "paused %s before record (%s)", d, EnvBackupPause)
	})
	if who, ok := vigil.CancelledBy(ctx); ok {
		// Cancelled after the vault had the snapshot: no recovery point
		// will name it, so it goes.
		what := "its snapshot was deleted from the vault; no recovery point was listed"
		if err := v.DeleteSnapshot(context.WithoutCancel(ctx), result.SnapshotID); err != nil {
			what = fmt.Sprintf("no recovery point was listed, but deleting its snapshot failed (%v): delete it with the kopia CLI (kopia snapshot delete %s --delete)", err, result.SnapshotID)
		}
		job.Bytes, job.Files = 0, 0
		return b.End(context.WithoutCancel(ctx), &job, vigil.BackupAborted, withAfter(vigil.CancelledMessage(who, what)))
	}
	// The vault has flushed the snapshot: only now is the recovery point
	// listed, together with the job's completion.
	done := now()
	rp.SnapshotID = result.SnapshotID
	rp.SizeBytes = result.Bytes
	rp.Files = result.Files
	rp.Skipped = skippedOf(result.Skipped)
	rp.CompletedAt = &done
	job.Status = vigil.BackupCompleted
	job.StatusMessage = ""
	if afterFailed != "" {
		job.StatusMessage = "the backup completed, then " + afterFailed
	}
	job.RecoveryPointID = rp.ID
	job.Bytes, job.Files, job.PercentDone = result.Bytes, result.Files, 100
	job.CompletedAt = &done
	// The restore tests and the plan's copies of the new recovery point
	// are queued in the same transaction: a completed backup is never left
	// untested or uncopied because vigil died right after it.
	err = b.journal.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error {
		// The job first, which fails if it was ended elsewhere: then no
		// recovery point is listed for it.
		if err := updateRunning(ctx, tx, &job); err != nil {
			return err
		}
		if err := tx.InsertRecoveryPoint(ctx, &rp); err != nil {
			return err
		}
		if err := b.queuePlanCopies(ctx, tx, &job, rp); err != nil {
			return err
		}
		if err := b.tests.QueueOnBackup(ctx, tx, &rp); err != nil {
			return err
		}
		// The job's last lines go with its completion: whoever sees it
		// COMPLETED reads them too.
		for _, line := range completedLines(job, rp, result, cfg) {
			if err := tx.AppendLog(ctx, job.ID, line); err != nil {
				return err
			}
		}
		return nil
	}, vigil.BackupJobEvent(vigil.EventBackupJobCompleted, &job))
	if errors.Is(err, errEndedElsewhere) {
		// No recovery point will ever name this snapshot: it goes, or it
		// would hold its space and be counted in the vault for good.
		what := "it was deleted from the vault, whose next maintenance gives its space back"
		if err := v.DeleteSnapshot(context.WithoutCancel(ctx), result.SnapshotID); err != nil {
			what = fmt.Sprintf("deleting it from the vault failed (%v): delete it with the kopia CLI (kopia snapshot delete %s --delete)", err, result.SnapshotID)
		}
		b.jobLog(ctx, job.ID, "this attempt's snapshot %s is not listed: the job was ended while it ran (its worker was counted dead); %s", result.SnapshotID, what)
		return nil
	}
	if err != nil {
		return fmt.Errorf("record completed backup: %w", err)
	}
	return nil
}

// completedLines are the log lines of a completed backup: what it dumped,
// what it skipped, and what it stored.
func completedLines(job vigil.BackupJob, rp vigil.RecoveryPoint, result vault.BackupResult, cfg config.Resource) []string {
	snapshotID := result.SnapshotID
	var lines []string
	if d := rp.Database; d != nil {
		var rows int64
		for _, t := range d.Tables {
			rows += t.Rows
		}
		lines = append(lines, fmt.Sprintf("dump of %s %s (server %s): %d tables, %d rows", d.Engine, d.Database, d.Server, len(d.Tables), rows))
	}
	if rp.Skipped != nil {
		lines = append(lines, describeSkipped(rp.Skipped))
	}
	if result.Excluded.Total > 0 || len(cfg.Exclude) > 0 || cfg.ExcludeIfPresent != "" || cfg.OneFileSystem || cfg.ExcludeLargerThan > 0 {
		lines = append(lines, describeExcluded(result.Excluded, cfg))
	}
	return append(lines, fmt.Sprintf("completed in %s: %d files, %d bytes; recovery point %s (snapshot %s)",
		job.CompletedAt.Sub(*job.StartedAt).Round(time.Millisecond), job.Files, job.Bytes, rp.ID, snapshotID))
}

// EnvBackupPause, set in vigil's environment by tests only, holds each
// backup before the step it names: "record=1m" (its snapshot is in the
// vault, its recovery point not listed yet), so that a test can kill or
// stop its worker there. The pause is written into the job's log first.
const EnvBackupPause = "VIGIL_TEST_BACKUP_PAUSE"

const Interrupted = "interrupted: vigil stopped while this backup was running; no recovery point was listed for it: start the backup again"

// errEndedElsewhere is what updateRunning returns for a job that is no
// longer RUNNING under this attempt.
var errEndedElsewhere = errors.New("the backup job was ended elsewhere")

// updateRunning writes job, which must still be RUNNING under the attempt
// that started it (job.StartedAt), or fails with errEndedElsewhere.
func updateRunning(ctx context.Context, tx *catalog.Tx, job *vigil.BackupJob) error {
	if job.StartedAt == nil {
		return tx.UpdateBackupJob(ctx, job)
	}
	ok, err := tx.UpdateRunningBackupJob(ctx, job, *job.StartedAt)
	if err == nil && !ok {
		err = errEndedElsewhere
	}
	return err
}

// End records a final status. The job's River work then ends without a
// retry: a failed backup is a verdict for a person, not a transient error.
func (b *Runner) End(ctx context.Context, job *vigil.BackupJob, status vigil.BackupJobStatus, msg string) error {
	job.Status = status
	job.StatusMessage = msg
	job.CompletedAt = ptr(now())
	err := b.journal.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return updateRunning(ctx, tx, job) },
		vigil.BackupJobEvent(vigil.EventBackupJobFailed, job))
	if errors.Is(err, errEndedElsewhere) {
		return nil // it has its final status already
	}
	if err != nil {
		return fmt.Errorf("record backup job status: %w", err)
	}
	b.jobLog(ctx, job.ID, "%s: %s", status, msg)
	return nil
}

// progressTracker keeps the latest progress of a running backup or copy
// and hands it to its write from time to time, off the vault's hot path.
type progressTracker struct {
	mu       sync.Mutex
	p        vault.Progress
	done     chan struct{}
	finished chan struct{}
}

// track starts a progressTracker that calls write every progressEvery
// until stop or the end of ctx.
func (b *Runner) track(ctx context.Context, write func(percent float64, bytes, files int64)) *progressTracker {
	t := &progressTracker{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(t.finished)
		tick := time.NewTicker(b.progressEvery)
		defer tick.Stop()
		for {
			select {
			case <-t.done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				write(t.last())
			}
		}
	}()
	return t
}

func (b *Runner) trackProgress(ctx context.Context, job *vigil.BackupJob) *progressTracker {
	snapshot := *job
	return b.track(ctx, func(percent float64, bytes, files int64) {
		snapshot.PercentDone, snapshot.Bytes, snapshot.Files = percent, bytes, files
		if _, err := b.catalog.UpdateRunningBackupJob(ctx, &snapshot, *snapshot.StartedAt); err != nil {
			b.logger.Warn("record backup progress", "job", job.ID, "err", err)
		}
	})
}

func (t *progressTracker) set(p vault.Progress) {
	t.mu.Lock()
	t.p = p
	t.mu.Unlock()
}

func (t *progressTracker) stop() {
	close(t.done)
	<-t.finished
}

func (t *progressTracker) last() (percent float64, bytes, files int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p.TotalBytes > 0 {
		percent = min(99, 100*float64(t.p.Bytes)/float64(t.p.TotalBytes))
	}
	return percent, t.p.Bytes, t.p.Files
}
