package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
)

type jobsCancelOptions struct {
	Reason string
	NoWait bool
}

func newJobsCancelCommand(g *globalOptions) *cobra.Command {
	var opts jobsCancelOptions
	cmd := &cobra.Command{
		Use:   "cancel ID [--reason TEXT] [--no-wait]",
		Short: "Cancel a queued or running backup, restore, restore test or copy",
		Long: `Cancel a job. A queued one ends ABORTED at once, before it runs; a running one
is stopped where it runs, on this server or on a 'vigil worker', and ends
ABORTED once it has cleaned up: a backup lists no recovery point, a restore
removes what it wrote into its target, a restore test deletes its copy (and
no new test of the recovery point is queued). The status message says
"cancelled through the API", followed by --reason when given.

The command waits until the job has ended and shows it; --no-wait returns
once the cancel is requested. A job that has ended already is refused (exit 1).

` + exitCodesHelp,
		Args: exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobsCancel(cmd.Context(), g, args[0], opts)
		},
	}
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why, for the job's status message")
	cmd.Flags().BoolVar(&opts.NoWait, "no-wait", false, "return once the cancel is requested, without waiting for the job to end")
	return cmd
}

func runJobsCancel(ctx context.Context, g *globalOptions, id string, opts jobsCancelOptions) error {
	if jobTypeOf(id) == "" {
		return usageError(fmt.Errorf("%q is not a job id: backup job ids start with bj-, restore job ids with rj-, copy job ids with cj- (see 'vigil jobs list')", id))
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	res, err := c.CancelJob(ctx, id, opts.Reason)
	if err != nil {
		return err
	}
	if opts.NoWait {
		if g.JSON {
			return g.printJSON(res)
		}
		fmt.Fprintf(g.stdout, "cancel of %s requested: it is %s; 'vigil jobs show %s' tells when it has ended\n", id, res.Status, id)
		return nil
	}
	var status vigil.BackupJobStatus
	switch {
	case strings.HasPrefix(id, vigil.PrefixBackupJob+"-"):
		job, err := waitJob(ctx, id, c.BackupJob, func(j vigil.BackupJob) bool { return j.Status.Final() }, func(vigil.BackupJob) {})
		if err != nil {
			return err
		}
		status = job.Status
		err = g.printBackupJobs([]vigil.BackupJob{job}, false)
		if err != nil {
			return err
		}
	case strings.HasPrefix(id, vigil.PrefixCopyJob+"-"):
		job, err := waitJob(ctx, id, c.CopyJob, func(j vigil.CopyJob) bool { return j.Status.Final() }, func(vigil.CopyJob) {})
		if err != nil {
			return err
		}
		status = job.Status
		if err := g.printCopyJobs([]vigil.CopyJob{job}, false); err != nil {
			return err
		}
	default:
		return waitCancelledRestore(ctx, g, c, id)
	}
	if status != vigil.BackupAborted {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("job %s ended %s before the cancel reached it", id, status)}
	}
	return nil
}

// waitCancelledRestore waits for a cancelled restore or restore test to
// end (a test: its copy deleted too) and shows it.
func waitCancelledRestore(ctx context.Context, g *globalOptions, c *api.Client, id string) error {
	job, err := waitJob(ctx, id, c.RestoreJob, vigil.RestoreJob.Ended, func(vigil.RestoreJob) {})
	if err != nil {
		return err
	}
	if err := g.printRestoreJobs([]vigil.RestoreJob{job}, false); err != nil {
		return err
	}
	aborted := job.Status == vigil.RestoreAborted
	if job.RestoreTest {
		aborted = job.ValidationStatus == vigil.ValidationAborted
	}
	if !aborted {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("job %s ended before the cancel reached it", id)}
	}
	return nil
}
