package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/internal/units"
)

type restoreTestStartOptions struct {
	Resource      string
	RecoveryPoint string
	Plan          string
	Wait          bool
}

func newRestoreTestCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "restore-test", Short: "Prove a backup restorable: restore it into a new copy, validate, delete"}
	var opts restoreTestStartOptions
	start := &cobra.Command{
		Use:   "start --resource NAME [--recovery-point ID] [--plan NAME] [--wait]",
		Short: "Start a restore test of a resource's latest (or a given) recovery point",
		Long: `Start a restore test: restore the recovery point into a brand-new copy of the
resource (a new folder; for an app, a new process on a free port), run the
resource's validators, then delete the copy. The job's validation_status is the
verdict; deletion_status says whether the copy was cleaned up.

With --wait, the exit code is 0 only when validation is SUCCESSFUL and the copy
was deleted.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRestoreTestStart(cmd.Context(), g, opts)
		},
	}
	f := start.Flags()
	f.StringVar(&opts.Resource, "resource", "", "resource to test (required)")
	f.StringVar(&opts.RecoveryPoint, "recovery-point", "", "recovery point to test (default: the resource's latest)")
	f.StringVar(&opts.Plan, "plan", "", "use this restore testing plan's settings (default: on-demand, 5m validation window)")
	f.BoolVar(&opts.Wait, "wait", false, "wait for the verdict and the clean-up")
	start.MarkFlagRequired("resource")
	cmd.AddCommand(start)
	return cmd
}

func runRestoreTestStart(ctx context.Context, g *globalOptions, opts restoreTestStartOptions) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	job, err := c.StartRestoreTest(ctx, api.StartRestoreTestRequest{Resource: opts.Resource, RecoveryPointID: opts.RecoveryPoint, Plan: opts.Plan})
	if err != nil {
		return err
	}
	if !opts.Wait {
		return g.printRestoreJobs([]vigil.RestoreJob{job}, false)
	}
	if job, err = waitRestoreTest(ctx, c, job.ID, g.newProgress()); err != nil {
		return err
	}
	if err := g.printRestoreJobs([]vigil.RestoreJob{job}, false); err != nil {
		return err
	}
	return restoreTestEnded(job)
}

// waitRestoreTest polls a restore test until it has a verdict and its copy
// is deleted (or kept for inspection).
func waitRestoreTest(ctx context.Context, c *api.Client, id string, show *progress) (vigil.RestoreJob, error) {
	return waitJob(ctx, id, c.RestoreJob, vigil.RestoreJob.Ended, show.restore)
}

// restoreTestEnded turns anything but a SUCCESSFUL, cleaned-up test into
// exit code 1.
func restoreTestEnded(j vigil.RestoreJob) error {
	switch {
	case j.ValidationStatus != vigil.ValidationSuccessful:
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("restore test %s: validation %s: %s (see 'vigil logs %s')", j.ID, j.ValidationStatus, j.ValidationMessage, j.ID)}
	case j.DeletionStatus != vigil.DeletionSuccessful:
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("restore test %s passed validation but its copy was not deleted: %s", j.ID, j.DeletionMessage)}
	}
	return nil
}

func (g *globalOptions) printRestoreJobs(jobs []vigil.RestoreJob, list bool) error {
	if g.JSON {
		if !list {
			return g.printJSON(jobs[0])
		}
		return g.printJSON(jobs)
	}
	if !list {
		return g.printRestoreJob(jobs[0])
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tKIND\tSTATUS\tVALIDATION\tDELETION\tRECOVERY POINT\tRESOURCE\tLOCATION\tCREATED\tTOTAL\tMESSAGE")
	for _, j := range jobs {
		kind, validation, deletion, total, msg := "restore", "-", "-", "-", j.StatusMessage
		if j.RestoreTest {
			kind = "test"
			validation = orDash(string(j.ValidationStatus))
			deletion = orDash(string(j.DeletionStatus))
			if j.KeepUntil != nil && j.DeletionStatus == "" {
				deletion = "KEPT"
			}
			if j.TotalSeconds > 0 {
				total = fmt.Sprintf("%.2fs", j.TotalSeconds)
			}
			if j.ValidationMessage != "" {
				msg = j.ValidationMessage
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(j.ID), kind, printable(string(j.Status)), printable(validation), printable(deletion),
			printable(j.RecoveryPointID), printable(j.Resource), printable(j.CreatedResourceLocation), formatTime(&j.CreatedAt), total, printable(firstLine(msg)))
	}
	return w.Flush()
}

// printRestoreJob shows one restore job, field by field.
func (g *globalOptions) printRestoreJob(j vigil.RestoreJob) error {
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%s:\t%s\n", printable(k), printable(v))
		}
	}
	row("id", j.ID)
	if j.RestoreTest {
		row("kind", "restore test")
	} else {
		row("kind", "restore")
	}
	row("status", string(j.Status))
	row("status message", j.StatusMessage)
	row("resource", j.Resource+" ("+j.ResourceType+")")
	row("recovery point", j.RecoveryPointID)
	row("created resource", j.CreatedResourceID)
	row("location", j.CreatedResourceLocation)
	row("created by", j.CreatedBy)
	row("node", j.Node)
	row("created", formatTime(&j.CreatedAt))
	row("completed", formatTime(j.CompletedAt))
	if j.RestoreTest {
		row("validation", orDash(string(j.ValidationStatus)))
		row("validation message", j.ValidationMessage)
		row("deletion", orDash(string(j.DeletionStatus)))
		row("deletion message", j.DeletionMessage)
		if j.KeepUntil != nil {
			row("kept until", formatTime(j.KeepUntil))
		}
		row("timings", fmt.Sprintf("restore %.3fs, start %.3fs, validation %.3fs, clean-up %.3fs; total (RTO) %.3fs",
			j.RestoreSeconds, j.StartSeconds, j.ValidationSeconds, j.CleanupSeconds, j.TotalSeconds))
		row("recovery point age", fmt.Sprintf("%.0fs", j.RecoveryPointAgeSeconds))
		if j.VaultReadBytes > 0 || j.WrittenBytes > 0 {
			row("bytes", fmt.Sprintf("%d read from the vault (%s), %d written (%s)",
				j.VaultReadBytes, units.Bytes(j.VaultReadBytes), j.WrittenBytes, units.Bytes(j.WrittenBytes)))
		}
	}
	for k, v := range j.Metadata {
		row("metadata "+k, v)
	}
	return w.Flush()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
