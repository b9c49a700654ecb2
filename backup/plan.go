package backup

import (
	"context"
	"fmt"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// unfinished lists the statuses of a backup that has not ended.
var unfinished = []vigil.BackupJobStatus{vigil.BackupCreated, vigil.BackupPending, vigil.BackupRunning}

// RunPlan runs backup plan once: a backup job for each of its resources.
func (b *Runner) RunPlan(ctx context.Context, plan config.BackupPlan) error {
	for _, name := range b.cfg.Current().PlanResources(plan) {
		if err := b.runPlanFor(ctx, plan, name); err != nil {
			return err
		}
	}
	return nil
}

// runPlanFor starts the plan's backup of one resource, unless a backup of it
// is still under way: then the skip goes into that job's log instead, so a
// slow backup never piles up a queue of others behind it.
func (b *Runner) runPlanFor(ctx context.Context, plan config.BackupPlan, resource string) error {
	busy, err := b.catalog.ListBackupJobs(ctx, catalog.BackupJobFilter{Resource: resource, Status: unfinished, Limit: 1})
	if err != nil {
		return fmt.Errorf("list unfinished backups of %s: %w", resource, err)
	}
	if len(busy) > 0 {
		b.jobLog(ctx, busy[0].ID, "plan %s: skipped a scheduled backup of %q because this backup is still %s",
			plan.Name, resource, busy[0].Status)
		return nil
	}
	job, err := b.Start(ctx, vigil.BackupRequest{
		Resource:  resource,
		Vault:     plan.Vault,
		Expiry:    plan.Expiry(),
		CreatedBy: plan.Name,
	})
	if err != nil {
		return fmt.Errorf("plan %s: start backup of %s: %w", plan.Name, resource, err)
	}
	b.jobLog(ctx, job.ID, "started by backup plan %s (schedule %q)", plan.Name, plan.Schedule)
	return nil
}
