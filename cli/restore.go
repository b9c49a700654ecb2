package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
)

type restoreStartOptions struct {
	RecoveryPoint string
	Path          string
	Set           []string
	Wait          bool
}

func newRestoreCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "restore", Short: "Start restores"}
	var opts restoreStartOptions
	start := &cobra.Command{
		Use:   "start --recovery-point ID [--path sub/dir] [--set key=value ...]",
		Short: "Restore a recovery point into a NEW resource",
		Long: `Restore a recovery point into a new resource: by default a new folder under
<data_dir>/restores/<restore job id>. 'vigil recovery-points metadata ID' lists
the keys --set accepts, with their defaults (for a directory: target_path, which
must be a new or empty folder).

--path restores one file or folder of a directory or app recovery point
(metadata key path): it is written at the same path below target_path, inside
its parent folders, as restic's restore --include does. 'vigil recovery-points
ls ID' shows the paths.

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRestoreStart(cmd, g, opts)
		},
	}
	f := start.Flags()
	f.StringVar(&opts.RecoveryPoint, "recovery-point", "", "recovery point to restore (required)")
	f.StringVar(&opts.Path, "path", "", "restore only this file or folder of the recovery point (same as --set path=…)")
	f.StringArrayVar(&opts.Set, "set", nil, "override restore metadata, key=value (repeatable)")
	f.BoolVar(&opts.Wait, "wait", false, "wait until the job ends; exit 1 unless it COMPLETED")
	start.MarkFlagRequired("recovery-point")
	cmd.AddCommand(start)
	return cmd
}

func runRestoreStart(cmd *cobra.Command, g *globalOptions, opts restoreStartOptions) error {
	meta := map[string]string{}
	for _, kv := range opts.Set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError(fmt.Errorf("--set %q: write it as key=value", kv))
		}
		meta[k] = v
	}
	if opts.Path != "" {
		if p, ok := meta["path"]; ok && p != opts.Path {
			return usageError(fmt.Errorf("--path %q and --set path=%q disagree: give the path once", opts.Path, p))
		}
		meta["path"] = opts.Path
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	job, err := c.StartRestore(ctx, api.StartRestoreRequest{RecoveryPointID: opts.RecoveryPoint, Metadata: meta})
	if err != nil {
		return err
	}
	if opts.Wait {
		if job, err = waitRestore(ctx, c, job.ID, g.newProgress()); err != nil {
			return err
		}
	}
	if err := g.printRestoreJobs([]vigil.RestoreJob{job}, false); err != nil {
		return err
	}
	if opts.Wait {
		return jobEnded("restore", job.ID, string(job.Status), job.StatusMessage)
	}
	return nil
}
