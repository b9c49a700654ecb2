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
	e := w.e
	plan, ok := e.cfg.RestoreTestPlan(rj.Args.Plan)
	if !ok {
		return river.JobCancel(fmt.Errorf("restore testing plan %q is no longer configured", rj.Args.Plan))
	}
	// One transaction for all resources: a retry never queues a test of
	// the first resources twice.
	return e.catalog.InTx(ctx, func(tx *catalog.Tx) error {
		for _, name := range e.cfg.TestPlanResources(plan) {
			if err := e.runTestPlanFor(ctx, tx, plan, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// runTestPlanFor queues a restore test of one resource, choosing among its
// recovery points of the plan's selection window.
func (e *Engine) runTestPlanFor(ctx context.Context, tx *catalog.Tx, plan config.RestoreTestPlan, resource string) error {
	rps, err := tx.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{
		Resource: resource, Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}})
	if err != nil {
		return fmt.Errorf("list recovery points of %s: %w", resource, err)
	}
	since := now().Add(-time.Duration(plan.SelectionWindowDays) * 24 * time.Hour)
	var window []vigil.RecoveryPoint
	for _, rp := range rps {
		if rp.CreatedAt.After(since) {
			window = append(window, rp)
		}
	}
	if len(window) == 0 {
		e.logger.Warn("restore testing plan found nothing to test", "plan", plan.Name, "resource", resource,
			"selection_window_days", plan.SelectionWindowDays)
		return nil
	}
	rp := pickRecoveryPoint(window, plan.RecoveryPoint)
	job, err := e.queueRestoreTest(ctx, tx, rp, plan.Name)
	if err != nil {
		return err
	}
	return tx.AppendLog(ctx, job.ID, fmt.Sprintf("started by restore testing plan %s (schedule %q, %s among %d recovery points of the last %d days)",
		plan.Name, plan.Schedule, plan.RecoveryPoint, len(window), plan.SelectionWindowDays))
}
