package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
)

// --wait asks for a job's status first every minPoll, backing off to
// maxPoll: short jobs are seen to end at once, long ones cost few requests.
const (
	minPoll = 10 * time.Millisecond
	maxPoll = 500 * time.Millisecond
)

func nextPoll(d time.Duration) time.Duration { return min(maxPoll, d*3/2) }

// waitBackup polls a backup job until it ends.
func waitBackup(ctx context.Context, c *api.Client, id string) (vigil.BackupJob, error) {
	for d := minPoll; ; d = nextPoll(d) {
		job, err := c.BackupJob(ctx, id)
		if err != nil || job.Status.Final() {
			return job, err
		}
		if err := sleep(ctx, d); err != nil {
			return job, err
		}
	}
}

// waitRestore polls a restore job until it ends.
func waitRestore(ctx context.Context, c *api.Client, id string) (vigil.RestoreJob, error) {
	for d := minPoll; ; d = nextPoll(d) {
		job, err := c.RestoreJob(ctx, id)
		if err != nil || job.Status.Final() {
			return job, err
		}
		if err := sleep(ctx, d); err != nil {
			return job, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("stopped waiting (the job goes on in the server): %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// jobEnded turns a job that ended other than COMPLETED into exit code 1.
func jobEnded(kind, id, status, msg string) error {
	if status == "COMPLETED" {
		return nil
	}
	if msg != "" {
		msg = ": " + msg
	}
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%s job %s ended %s%s (see 'vigil logs %s')", kind, id, status, msg, id)}
}
