package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/internal/units"
)

type backupStartOptions struct {
	Resource    string
	Vault       string
	ExpireDays  int
	ExpireAfter time.Duration
	Wait        bool
}

func newBackupCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Start backups"}
	var opts backupStartOptions
	start := &cobra.Command{
		Use:   "start --resource NAME [--vault NAME]",
		Short: "Start an on-demand backup of a resource into a vault",
		Long: `Start an on-demand backup of a resource into a vault. --vault may be left
out when the server has one vault. The recovery point is kept for
--expire-days or --expire-after, else for the vault's expire_days or
expire_after, else forever.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBackupStart(cmd, g, opts)
		},
	}
	f := start.Flags()
	f.StringVar(&opts.Resource, "resource", "", "resource to back up (required)")
	f.StringVar(&opts.Vault, "vault", "", "vault to store the recovery point in (needed when there is more than one)")
	f.IntVar(&opts.ExpireDays, "expire-days", 0, "delete the recovery point after this many days")
	f.DurationVar(&opts.ExpireAfter, "expire-after", 0, "delete the recovery point after this long (e.g. 36h)")
	f.BoolVar(&opts.Wait, "wait", false, "wait until the job ends; exit 1 unless it COMPLETED")
	start.MarkFlagRequired("resource")
	cmd.AddCommand(start)
	return cmd
}

func runBackupStart(cmd *cobra.Command, g *globalOptions, opts backupStartOptions) error {
	expiry, err := backupExpiry(opts)
	if err != nil {
		return usageError(err)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	job, err := c.StartBackup(ctx, api.StartBackupRequest{
		Resource:           opts.Resource,
		Vault:              opts.Vault,
		ExpireAfterSeconds: int64(expiry / time.Second),
	})
	if err != nil {
		return err
	}
	if opts.Wait {
		if job, err = waitBackup(ctx, c, job.ID, g.newProgress()); err != nil {
			return err
		}
	}
	if err := g.printBackupJobs([]vigil.BackupJob{job}, false); err != nil {
		return err
	}
	if opts.Wait {
		return jobEnded("backup", job.ID, string(job.Status), job.StatusMessage)
	}
	return nil
}

// backupExpiry checks --expire-days and --expire-after, days before they
// are multiplied into a duration that could wrap around.
func backupExpiry(opts backupStartOptions) (time.Duration, error) {
	if opts.ExpireDays != 0 && opts.ExpireAfter != 0 {
		return 0, fmt.Errorf("give --expire-days or --expire-after, not both")
	}
	if opts.ExpireAfter != 0 {
		if opts.ExpireAfter < time.Second || opts.ExpireAfter > vigil.MaxExpiry {
			return 0, fmt.Errorf("--expire-after %s is out of range: give from 1s to %s (100 years); leave it out for the vault's default expiry (none: kept forever)", opts.ExpireAfter, vigil.MaxExpiry)
		}
		return opts.ExpireAfter, nil
	}
	return vigil.ExpiryOf("--expire-days", int64(opts.ExpireDays), 24*time.Hour)
}

// printBackupJobs prints a table, or JSON: an array when list is set, else
// the one record.
func (g *globalOptions) printBackupJobs(jobs []vigil.BackupJob, list bool) error {
	if g.JSON {
		if !list {
			return g.printJSON(jobs[0])
		}
		return g.printJSON(jobs)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATUS\tRESOURCE\tVAULT\tRECOVERY POINT\tSIZE\tFILES\tCREATED BY\tCREATED\tMESSAGE")
	for _, j := range jobs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", printable(j.ID), printable(string(j.Status)), printable(j.Resource), printable(j.Vault),
			printable(orDash(j.RecoveryPointID)), units.Bytes(j.Bytes), j.Files, printable(j.CreatedBy), formatTime(&j.CreatedAt), printable(j.StatusMessage))
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
