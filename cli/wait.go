package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
)

// --wait asks for a job's status every fastPoll during the job's first
// seconds, so a short job is seen to end at once, then backs off to slowPoll
// so a long one costs few requests.
const (
	fastPoll = 20 * time.Millisecond
	fastFor  = 3 * time.Second
	slowPoll = 500 * time.Millisecond
)

// poller yields the successive waits between status requests.
type poller struct {
	start time.Time
	d     time.Duration
}

func newPoller() *poller { return &poller{start: time.Now(), d: fastPoll} }

func (p *poller) next() time.Duration {
	if time.Since(p.start) > fastFor {
		p.d = min(slowPoll, p.d*3/2)
	}
	return p.d
}

// waitBackup polls a backup job until it ends, showing its progress on
// show (nil: nowhere).
func waitBackup(ctx context.Context, c *api.Client, id string, show *progress) (vigil.BackupJob, error) {
	return waitJob(ctx, id, c.BackupJob, func(j vigil.BackupJob) bool { return j.Status.Final() }, show.backup)
}

// waitRestore polls a restore job until it ends.
func waitRestore(ctx context.Context, c *api.Client, id string, show *progress) (vigil.RestoreJob, error) {
	return waitJob(ctx, id, c.RestoreJob, func(j vigil.RestoreJob) bool { return j.Status.Final() }, show.restore)
}

func waitJob[J any](ctx context.Context, id string, get func(context.Context, string) (J, error), final func(J) bool, show func(J)) (J, error) {
	for p := newPoller(); ; {
		job, err := get(ctx, id)
		if err == nil {
			show(job)
		}
		if err != nil || final(job) {
			return job, err
		}
		if err := sleep(ctx, p.next()); err != nil {
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
