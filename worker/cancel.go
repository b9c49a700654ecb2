package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-backup/vigil"
)

// cancelLogPrefix starts the job-log line that records a cancel request
// and who made it. The request travels to the job as River's own cancel,
// which carries no words; the job, wherever it runs, reads who from this
// line (cancelledBy).
const cancelLogPrefix = "cancel requested "

// Cancel cancels job id, by who (vigil.CancelledThroughAPI): a PENDING job ends
// ABORTED here, before it runs; a running one is cancelled where it runs,
// on this process or another worker's (River's JobCancel: notified on
// PostgreSQL, polled every two seconds on SQLite), and ends ABORTED
// there, after its clean-up. Cancel returns once the request is made,
// not when the job has ended. A job that has ended is refused with a
// *vigil.ConflictError naming its status.
func (e *Engine) Cancel(ctx context.Context, id, who string) error {
	var kinds []string
	switch {
	case strings.HasPrefix(id, vigil.PrefixBackupJob+"-"):
		job, err := e.catalog.GetBackupJob(ctx, id)
		if err != nil {
			return err
		}
		if job.Status.Final() {
			return ended("backup", id, string(job.Status), job.StatusMessage)
		}
		kinds = []string{BackupArgs{}.Kind()}
	case strings.HasPrefix(id, vigil.PrefixCopyJob+"-"):
		job, err := e.catalog.GetCopyJob(ctx, id)
		if err != nil {
			return err
		}
		if job.Status.Final() {
			return ended("copy", id, string(job.Status), job.StatusMessage)
		}
		kinds = []string{CopyArgs{}.Kind()}
	case strings.HasPrefix(id, vigil.PrefixRestoreJob+"-"):
		job, err := e.catalog.GetRestoreJob(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case job.RestoreTest && job.ValidationStatus.Final():
			return ended("restore test", id, "validation "+string(job.ValidationStatus), job.ValidationMessage)
		case !job.RestoreTest && job.Status.Final():
			return ended("restore", id, string(job.Status), job.StatusMessage)
		}
		// Restore tests queued before they had a kind of their own run
		// under the restore kind.
		kinds = []string{RestoreArgs{}.Kind(), RestoreTestArgs{}.Kind()}
	default:
		return fmt.Errorf("%w: no job %s: job ids start with bj- (backup), rj- (restore) or cj- (copy); list them with 'vigil jobs list'", vigil.ErrNotFound, id)
	}

	rj, err := e.findJob(ctx, kinds, id)
	if err != nil {
		return err
	}
	if rj == nil {
		return &vigil.ConflictError{Msg: fmt.Sprintf("job %s has no step queued or running to cancel: it is ending on its own; see 'vigil jobs show %s'", id, id)}
	}
	// Who, before the cancel: the job may read it as soon as its context
	// is cancelled.
	if err := e.catalog.AppendLog(ctx, id, cancelLogPrefix+who); err != nil {
		return err
	}
	state, err := e.cancelJob(ctx, rj.ID)
	if err != nil {
		return fmt.Errorf("cancel job %s: %w", id, err)
	}
	if state != rivertype.JobStateCancelled {
		// Running: its worker ends it. Finished meanwhile: it has its end.
		return nil
	}
	// Cancelled in the queue: no worker will ever run it, so its record
	// ends here.
	return e.endCancelled(ctx, id, who)
}

// ended is the refusal to cancel a job that has ended.
func ended(kind, id, status, msg string) error {
	if msg != "" {
		status += " (" + msg + ")"
	}
	return &vigil.ConflictError{Msg: fmt.Sprintf("%s %s has ended already, %s: there is nothing to cancel", kind, id, status)}
}

// endCancelled ends ABORTED the record of job id, whose River job was
// cancelled before it ran. A record that is no longer PENDING was moved
// on by a worker that took the job just before the cancel, and is that
// worker's to end.
func (e *Engine) endCancelled(ctx context.Context, id, who string) error {
	ctx = context.WithoutCancel(ctx)
	switch {
	case strings.HasPrefix(id, vigil.PrefixBackupJob+"-"):
		job, err := e.catalog.GetBackupJob(ctx, id)
		if err != nil || job.Status != vigil.BackupPending {
			return err
		}
		return e.backups.End(ctx, &job, vigil.BackupAborted, vigil.CancelledMessage(who, "it had not started: no recovery point was made"))
	case strings.HasPrefix(id, vigil.PrefixCopyJob+"-"):
		job, err := e.catalog.GetCopyJob(ctx, id)
		if err != nil || job.Status != vigil.BackupPending {
			return err
		}
		return e.backups.EndCopy(ctx, &job, vigil.BackupAborted, vigil.CancelledMessage(who, fmt.Sprintf("it had not started: no recovery point was made in vault %q", job.Vault)))
	default:
		job, err := e.catalog.GetRestoreJob(ctx, id)
		if err != nil || job.Status != vigil.RestorePending {
			return err
		}
		msg := vigil.CancelledMessage(who, "it had not started: nothing was restored")
		if job.RestoreTest {
			return e.tests.EndPending(ctx, &job, msg)
		}
		return e.endRestore(ctx, &job, vigil.RestoreAborted, msg, false)
	}
}

// findJob is the River job of one of kinds that carries vigil job id and
// has not ended, or nil.
func (e *Engine) findJob(ctx context.Context, kinds []string, id string) (*rivertype.JobRow, error) {
	params := river.NewJobListParams().Kinds(kinds...).First(10000).States(
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled)
	for {
		res, err := e.listJobs(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("find the queued job of %s: %w", id, err)
		}
		for _, j := range res.Jobs {
			var args struct {
				JobID string `json:"job_id"`
			}
			if json.Unmarshal(j.EncodedArgs, &args) == nil && args.JobID == id {
				return j, nil
			}
		}
		if res.LastCursor == nil || len(res.Jobs) == 0 {
			return nil, nil
		}
		params = params.After(res.LastCursor)
	}
}

// cancelledBy is how a job of this process learns who cancelled it
// (vigil.CancelledBy): only a context River cancelled on a JobCancel
// counts, and who is read from the job's log.
func (e *Engine) cancelledBy(ctx context.Context, id string) func() (string, bool) {
	return func() (string, bool) {
		if !errors.Is(context.Cause(ctx), rivertype.ErrJobCancelledRemotely) {
			return "", false
		}
		who := vigil.CancelledThroughAPI("")
		lines, err := e.catalog.Logs(context.WithoutCancel(ctx), id)
		if err != nil {
			e.logger.Error("read who cancelled a job", "job", id, "err", err)
			return who, true
		}
		for _, l := range slices.Backward(lines) {
			if w, ok := strings.CutPrefix(l.Message, cancelLogPrefix); ok {
				return w, true
			}
		}
		return who, true
	}
}
