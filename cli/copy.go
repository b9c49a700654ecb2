package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/internal/units"
)

type copyOptions struct {
	To          string
	ExpireDays  int
	ExpireAfter time.Duration
	Wait        bool
}

func newRecoveryPointsCopyCommand(g *globalOptions) *cobra.Command {
	var opts copyOptions
	cmd := &cobra.Command{
		Use:   "copy ID --to VAULT",
		Short: "Copy a recovery point into another vault, as a recovery point of its own there",
		Long: `Copy a recovery point into another vault (a copy job). Only what that vault
lacks is stored. The copy is a recovery point of its own, linked to its
source (source_recovery_point_id), kept forever unless --expire-days or
--expire-after gives it an expiry, counted from now.

` + exitCodesHelp,
		Args: exactArgs(1, "a recovery point id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCopy(cmd.Context(), g, args[0], opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.To, "to", "", "vault to copy the recovery point into (required)")
	f.IntVar(&opts.ExpireDays, "expire-days", 0, "delete the copy after this many days")
	f.DurationVar(&opts.ExpireAfter, "expire-after", 0, "delete the copy after this long (e.g. 36h)")
	f.BoolVar(&opts.Wait, "wait", false, "wait until the copy job ends; exit 1 unless it COMPLETED")
	cmd.MarkFlagRequired("to")
	return cmd
}

func runCopy(ctx context.Context, g *globalOptions, id string, opts copyOptions) error {
	expiry, err := backupExpiry(backupStartOptions{ExpireDays: opts.ExpireDays, ExpireAfter: opts.ExpireAfter})
	if err != nil {
		return usageError(err)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	job, err := c.StartCopy(ctx, api.StartCopyRequest{RecoveryPointID: id, Vault: opts.To, ExpireAfterSeconds: int64(expiry / time.Second)})
	if err != nil {
		return err
	}
	if opts.Wait {
		show := g.newProgress()
		job, err = waitJob(ctx, job.ID, c.CopyJob, func(j vigil.CopyJob) bool { return j.Status.Final() }, show.copyJob)
		if err != nil {
			return err
		}
	}
	if err := g.printCopyJobs([]vigil.CopyJob{job}, false); err != nil {
		return err
	}
	if opts.Wait {
		return jobEnded("copy", job.ID, string(job.Status), job.StatusMessage)
	}
	return nil
}

// printCopyJobs prints a table, or JSON: an array when list is set, else
// the one record.
func (g *globalOptions) printCopyJobs(jobs []vigil.CopyJob, list bool) error {
	if g.JSON {
		if !list {
			return g.printJSON(jobs[0])
		}
		return g.printJSON(jobs)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATUS\tRESOURCE\tFROM\tSOURCE POINT\tTO\tRECOVERY POINT\tSIZE\tCREATED BY\tCREATED\tMESSAGE")
	for _, j := range jobs {
		rp := j.RecoveryPointID
		if j.Status != vigil.BackupCompleted {
			rp = ""
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(j.ID), printable(string(j.Status)), printable(j.Resource),
			printable(j.SourceVault), printable(j.SourceRecoveryPointID), printable(j.Vault), printable(orDash(rp)), units.Bytes(j.Bytes),
			printable(j.CreatedBy), formatTime(&j.CreatedAt), printable(j.StatusMessage))
	}
	return w.Flush()
}
