package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
)

// PausePlan records plan as paused by by at at. Pausing a paused plan
// changes nothing: it keeps its first pause and its count of skipped runs.
func (r records) PausePlan(ctx context.Context, plan vigil.PlanRef, by string, at time.Time) error {
	_, err := r.db.exec(ctx, `INSERT INTO vigil_plan_pause (kind, name, paused_at, paused_by) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, name) DO NOTHING`, string(plan.Kind), plan.Name, micros(at), by)
	if err != nil {
		return fmt.Errorf("pause plan %s: %w", plan.Name, err)
	}
	return nil
}

// ResumePlan forgets plan's pause, and reports whether it was paused.
func (r records) ResumePlan(ctx context.Context, plan vigil.PlanRef) (bool, error) {
	n, err := r.db.exec(ctx, `DELETE FROM vigil_plan_pause WHERE kind = ? AND name = ?`, string(plan.Kind), plan.Name)
	if err != nil {
		return false, fmt.Errorf("resume plan %s: %w", plan.Name, err)
	}
	return n > 0, nil
}

// SkipIfPaused reports whether plan is paused and, if it is, counts a
// skipped run at at: the one read and write a scheduled run makes before
// it starts anything.
func (r records) SkipIfPaused(ctx context.Context, plan vigil.PlanRef, at time.Time) (bool, error) {
	n, err := r.db.exec(ctx, `UPDATE vigil_plan_pause SET skipped_runs = skipped_runs + 1, last_skipped_at = ?
		WHERE kind = ? AND name = ?`, micros(at), string(plan.Kind), plan.Name)
	if err != nil {
		return false, fmt.Errorf("read pause of plan %s: %w", plan.Name, err)
	}
	return n > 0, nil
}

// PlanPauses returns every paused plan's pause.
func (r records) PlanPauses(ctx context.Context) (map[vigil.PlanRef]vigil.PlanPause, error) {
	rows, err := r.db.query(ctx, `SELECT kind, name, paused_at, paused_by, skipped_runs, last_skipped_at FROM vigil_plan_pause`)
	if err != nil {
		return nil, fmt.Errorf("list paused plans: %w", err)
	}
	defer rows.Close()
	out := map[vigil.PlanRef]vigil.PlanPause{}
	for rows.Next() {
		var (
			kind, name string
			p          vigil.PlanPause
			at         int64
			last       *int64
		)
		if err := rows.Scan(&kind, &name, &at, &p.PausedBy, &p.SkippedRuns, &last); err != nil {
			return nil, fmt.Errorf("list paused plans: %w", err)
		}
		p.PausedAt, p.LastSkippedAt = fromMicros(at), fromMicrosOrNull(last)
		out[vigil.PlanRef{Kind: vigil.PlanKind(kind), Name: name}] = p
	}
	return out, rows.Err()
}
