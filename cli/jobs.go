package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
)

func newJobsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Short: "List and inspect backup, restore and copy jobs"}
	var typ, status, startingAfter string
	var limit int
	list := &cobra.Command{
		Use:   "list [--type backup|restore|copy] [--status S] [--limit N] [--starting-after ID]",
		Short: "List jobs, newest first",
		Long: `List jobs, newest first: backup, restore and copy jobs, or those of one
--type. --limit N lists at most N of each type; for the next page, pass
--starting-after the id of the last job listed, which says the type.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if typ != "" && typ != vigil.JobTypeBackup && typ != vigil.JobTypeRestore && typ != vigil.JobTypeCopy {
				return usageError(fmt.Errorf("--type %q: use backup, restore or copy", typ))
			}
			if startingAfter != "" {
				// An id pages one list: the others have no record of it.
				of := jobTypeOf(startingAfter)
				switch {
				case of == "":
					return usageError(fmt.Errorf("--starting-after %q is not a job id: pass the id of the last job of the page you have (bj-…, rj-… or cj-…)", startingAfter))
				case typ != "" && typ != of:
					return usageError(fmt.Errorf("--starting-after %s is a %s job id, and --type is %s: pass the id of the last %s job you have, or leave --type out", startingAfter, of, typ, typ))
				}
				typ = of
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if status != "" {
				q.Set("status", strings.ToUpper(status))
			}
			if cmd.Flags().Changed("limit") {
				q.Set("limit", strconv.Itoa(limit))
			}
			if startingAfter != "" {
				q.Set("starting_after", startingAfter)
			}
			var backups []vigil.BackupJob
			var restores []vigil.RestoreJob
			var copies []vigil.CopyJob
			if typ == "" || typ == vigil.JobTypeBackup {
				if backups, err = c.BackupJobs(cmd.Context(), q); err != nil {
					return err
				}
			}
			if typ == "" || typ == vigil.JobTypeRestore {
				if restores, err = c.RestoreJobs(cmd.Context(), q); err != nil {
					return err
				}
			}
			if typ == "" || typ == vigil.JobTypeCopy {
				if copies, err = c.CopyJobs(cmd.Context(), q); err != nil {
					return err
				}
			}
			switch {
			case typ == vigil.JobTypeBackup:
				return g.printBackupJobs(backups, true)
			case typ == vigil.JobTypeRestore:
				return g.printRestoreJobs(restores, true)
			case typ == vigil.JobTypeCopy:
				return g.printCopyJobs(copies, true)
			case g.JSON:
				return g.printJSON(mergeJobs(backups, restores, copies))
			}
			if err := g.printBackupJobs(backups, true); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout)
			if err := g.printRestoreJobs(restores, true); err != nil {
				return err
			}
			if len(copies) == 0 {
				return nil // no copy rules: no empty third table
			}
			fmt.Fprintln(g.stdout)
			return g.printCopyJobs(copies, true)
		},
	}
	list.Flags().StringVar(&typ, "type", "", "backup, restore or copy")
	list.Flags().StringVar(&status, "status", "", "only jobs with this status, e.g. COMPLETED")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many jobs of each type (0: all)")
	list.Flags().StringVar(&startingAfter, "starting-after", "", "list the jobs after this job id, of its type: the next page")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one job (bj-… a backup, rj-… a restore, cj-… a copy)",
		Args:  exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			id := args[0]
			switch {
			case strings.HasPrefix(id, vigil.PrefixBackupJob+"-"):
				job, err := c.BackupJob(cmd.Context(), id)
				if err != nil {
					return err
				}
				return g.printBackupJobs([]vigil.BackupJob{job}, false)
			case strings.HasPrefix(id, vigil.PrefixRestoreJob+"-"):
				job, err := c.RestoreJob(cmd.Context(), id)
				if err != nil {
					return err
				}
				return g.printRestoreJobs([]vigil.RestoreJob{job}, false)
			case strings.HasPrefix(id, vigil.PrefixCopyJob+"-"):
				job, err := c.CopyJob(cmd.Context(), id)
				if err != nil {
					return err
				}
				return g.printCopyJobs([]vigil.CopyJob{job}, false)
			}
			return usageError(fmt.Errorf("%q is not a job id: backup job ids start with bj-, restore job ids with rj-, copy job ids with cj- (see 'vigil jobs list')", id))
		},
	}
	cmd.AddCommand(list, show, newJobsCancelCommand(g))
	return cmd
}

// jobTypeOf is the type of job whose ids start as id does, or "".
func jobTypeOf(id string) string {
	switch {
	case strings.HasPrefix(id, vigil.PrefixBackupJob+"-"):
		return vigil.JobTypeBackup
	case strings.HasPrefix(id, vigil.PrefixRestoreJob+"-"):
		return vigil.JobTypeRestore
	case strings.HasPrefix(id, vigil.PrefixCopyJob+"-"):
		return vigil.JobTypeCopy
	}
	return ""
}

// mergeJobs lists both kinds of job newest first, each record with its own
// field names plus job_type.
func mergeJobs(backups []vigil.BackupJob, restores []vigil.RestoreJob, copies []vigil.CopyJob) []map[string]any {
	var out []map[string]any
	add := func(typ string, v any) {
		b, _ := json.Marshal(v)
		var m map[string]any
		json.Unmarshal(b, &m)
		m["job_type"] = typ
		out = append(out, m)
	}
	for _, j := range backups {
		add(vigil.JobTypeBackup, j)
	}
	for _, j := range restores {
		add(vigil.JobTypeRestore, j)
	}
	for _, j := range copies {
		add(vigil.JobTypeCopy, j)
	}
	slices.SortStableFunc(out, func(a, b map[string]any) int {
		return strings.Compare(b["created_at"].(string), a["created_at"].(string))
	})
	if out == nil {
		out = []map[string]any{}
	}
	return out
}
