package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// TestPlanPauses: a pause is per kind and name, a second pause keeps the
// first, skipped runs count only while paused, and resume forgets it.
func TestPlanPauses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		nightly := vigil.PlanRef{Kind: vigil.BackupPlanKind, Name: "nightly"}
		sameName := vigil.PlanRef{Kind: vigil.RestoreTestPlanKind, Name: "nightly"}
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

		skipped, err := c.SkipIfPaused(ctx, nightly, at)
		requireNoError(t, err)
		if skipped {
			t.Fatal("a plan never paused was skipped")
		}
		requireNoError(t, c.PausePlan(ctx, nightly, "ann@host", at))
		requireNoError(t, c.PausePlan(ctx, nightly, "bob@host", at.Add(time.Hour)))
		for i := range 2 {
			skipped, err := c.SkipIfPaused(ctx, nightly, at.Add(time.Duration(i+2)*time.Hour))
			requireNoError(t, err)
			if !skipped {
				t.Fatal("a paused plan was not skipped")
			}
		}
		if skipped, _ := c.SkipIfPaused(ctx, sameName, at); skipped {
			t.Fatal("the restore testing plan of the same name was skipped too")
		}
		pauses, err := c.PlanPauses(ctx)
		requireNoError(t, err)
		p, ok := pauses[nightly]
		if len(pauses) != 1 || !ok || p.PausedBy != "ann@host" || !p.PausedAt.Equal(at) || p.SkippedRuns != 2 ||
			p.LastSkippedAt == nil || !p.LastSkippedAt.Equal(at.Add(3*time.Hour)) {
			t.Fatalf("pauses = %+v, want nightly's first pause with 2 skipped runs, the last at 15:00", pauses)
		}

		was, err := c.ResumePlan(ctx, nightly)
		requireNoError(t, err)
		again, err := c.ResumePlan(ctx, nightly)
		requireNoError(t, err)
		if !was || again {
			t.Errorf("resume reported paused %v, then %v; want true, then false", was, again)
		}
		if pauses, _ := c.PlanPauses(ctx); len(pauses) != 0 {
			t.Errorf("after resume, pauses = %+v", pauses)
		}
	})
}
