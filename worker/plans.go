package worker

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
)

// PlanArgs runs one backup plan once: a backup job for each of its resources.
// River's periodic jobs insert it on the plan's schedule, on the elected
// leader only, so many workers never start a plan twice.
type PlanArgs struct {
	Plan string `json:"plan"`
}

func (PlanArgs) Kind() string { return "vigil.plan" }

func (e *Engine) runBackupPlan(ctx context.Context, args PlanArgs) error {
	return runPlan(ctx, "backup plan", args.Plan, e.cfg.BackupPlan, e.backups.RunPlan)
}

// TestPlanArgs runs one scheduled restore testing plan once: a restore
// test of a recovery point of each of its resources.
type TestPlanArgs struct {
	Plan string `json:"plan"`
}

func (TestPlanArgs) Kind() string { return "vigil.test-plan" }

func (e *Engine) runTestPlan(ctx context.Context, args TestPlanArgs) error {
	return runPlan(ctx, "restore testing plan", args.Plan, e.cfg.RestoreTestPlan, e.tests.RunPlan)
}

// runPlan runs the plan called name, or ends its job for good when the
// plan left the configuration.
func runPlan[P any](ctx context.Context, kind, name string, lookup func(string) (P, bool), run func(context.Context, P) error) error {
	plan, ok := lookup(name)
	if !ok {
		return river.JobCancel(fmt.Errorf("%s %q is no longer configured", kind, name))
	}
	return run(ctx, plan)
}
