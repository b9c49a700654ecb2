package worker

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/vigil-backup/vigil"
)

// PlanArgs runs one backup plan once: a backup job for each of its resources.
// River's periodic jobs insert it on the plan's schedule, on the elected
// leader only, so many workers never start a plan twice.
type PlanArgs struct {
	Plan string `json:"plan"`
}

func (PlanArgs) Kind() string { return "vigil.plan" }

func (e *Engine) runBackupPlan(ctx context.Context, args PlanArgs) error {
	ref := vigil.PlanRef{Kind: vigil.BackupPlanKind, Name: args.Plan}
	return runPlan(ctx, e, ref, "backup plan", e.cfg.Current().BackupPlan, e.backups.RunPlan)
}

// TestPlanArgs runs one scheduled restore testing plan once: a restore
// test of a recovery point of each of its resources.
type TestPlanArgs struct {
	Plan string `json:"plan"`
}

func (TestPlanArgs) Kind() string { return "vigil.test-plan" }

func (e *Engine) runTestPlan(ctx context.Context, args TestPlanArgs) error {
	ref := vigil.PlanRef{Kind: vigil.RestoreTestPlanKind, Name: args.Plan}
	return runPlan(ctx, e, ref, "restore testing plan", e.cfg.Current().RestoreTestPlan, e.tests.RunPlan)
}

// runPlan runs the plan ref, or ends its job for good when the plan left
// the configuration. A paused plan's run is skipped, with a line in the
// server's log and a count in the pause (vigil plans list shows it): the
// pause is in the catalog, so every process on it skips the plan.
func runPlan[P any](ctx context.Context, e *Engine, ref vigil.PlanRef, kind string, lookup func(string) (P, bool), run func(context.Context, P) error) error {
	plan, ok := lookup(ref.Name)
	if !ok {
		return river.JobCancel(fmt.Errorf("%s %q is no longer configured", kind, ref.Name))
	}
	paused, err := e.catalog.SkipIfPaused(ctx, ref, now())
	if err != nil {
		return err
	}
	if paused {
		e.logger.Info("skipped a scheduled run of a paused plan: resume it with vigil plans resume", "kind", kind, "plan", ref.Name)
		return nil
	}
	return run(ctx, plan)
}
