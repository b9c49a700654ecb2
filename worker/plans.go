package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// PlanArgs runs one backup plan once: a backup job for each of its resources.
// River's periodic jobs insert it on the plan's schedule, on the elected
// leader only, so many workers never start a plan twice.
type PlanArgs struct {
	Plan string `json:"plan"`
}

func (PlanArgs) Kind() string { return "vigil.plan" }

type planWorker struct {
	river.WorkerDefaults[PlanArgs]
	e *Engine
}

func (w *planWorker) Timeout(*river.Job[PlanArgs]) time.Duration { return time.Minute }

func (w *planWorker) Work(ctx context.Context, rj *river.Job[PlanArgs]) error {
	e := w.e
	var plan *config.BackupPlan
	for i := range e.cfg.BackupPlans {
		if e.cfg.BackupPlans[i].Name == rj.Args.Plan {
			plan = &e.cfg.BackupPlans[i]
		}
	}
	if plan == nil {
		return river.JobCancel(fmt.Errorf("backup plan %q is no longer configured", rj.Args.Plan))
	}
	for _, name := range e.cfg.PlanResources(*plan) {
		if err := e.runPlanFor(ctx, plan, name); err != nil {
			return err
		}
	}
	return nil
}

// unfinishedBackup lists the statuses of a backup that has not ended.
var unfinishedBackup = []vigil.BackupJobStatus{vigil.BackupCreated, vigil.BackupPending, vigil.BackupRunning}

// runPlanFor starts the plan's backup of one resource, unless a backup of it
// is still under way: then the skip goes into that job's log instead, so a
// slow backup never piles up a queue of others behind it.
func (e *Engine) runPlanFor(ctx context.Context, plan *config.BackupPlan, resource string) error {
	busy, err := e.catalog.ListBackupJobs(ctx, catalog.BackupJobFilter{Resource: resource, Status: unfinishedBackup, Limit: 1})
	if err != nil {
		return fmt.Errorf("list unfinished backups of %s: %w", resource, err)
	}
	if len(busy) > 0 {
		e.jobLog(ctx, busy[0].ID, "plan %s: skipped a scheduled backup of %q because this backup is still %s",
			plan.Name, resource, busy[0].Status)
		return nil
	}
	job, err := e.StartBackup(ctx, vigil.BackupRequest{
		Resource:  resource,
		Vault:     plan.Vault,
		Expiry:    plan.Expiry(),
		CreatedBy: plan.Name,
	})
	if err != nil {
		return fmt.Errorf("plan %s: start backup of %s: %w", plan.Name, resource, err)
	}
	e.jobLog(ctx, job.ID, "started by backup plan %s (schedule %q)", plan.Name, plan.Schedule)
	return nil
}

// TestPlanArgs runs one scheduled restore testing plan once: a restore
// test of a recovery point of each of its resources.
type TestPlanArgs struct {
	Plan string `json:"plan"`
}

func (TestPlanArgs) Kind() string { return "vigil.test-plan" }

type testPlanWorker struct {
	river.WorkerDefaults[TestPlanArgs]
	e *Engine
}

func (w *testPlanWorker) Timeout(*river.Job[TestPlanArgs]) time.Duration { return time.Minute }

func (w *testPlanWorker) Work(ctx context.Context, rj *river.Job[TestPlanArgs]) error {
	plan, ok := w.e.cfg.RestoreTestPlan(rj.Args.Plan)
	if !ok {
		return river.JobCancel(fmt.Errorf("restore testing plan %q is no longer configured", rj.Args.Plan))
	}
	return w.e.tests.RunPlan(ctx, plan)
}
