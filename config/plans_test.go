package config_test

import (
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
)

// TestPlans: each plan's next run in its time zone, none for a plan on
// each backup only, none while paused; a name shared by a backup plan and
// a restore testing plan names both.
func TestPlans(t *testing.T) {
	cfg, err := config.Parse([]byte(`
vaults:
  - {name: v, storage: /v, password_env: P}
resources:
  - {name: docs, type: directory, path: /srv/docs}
backup_plans:
  - {name: nightly, schedule: '0 2 * * *', timezone: Europe/Paris, resources: [docs], vault: v}
  - {name: hourly, schedule: '0 * * * *', timezone: UTC, resources: [docs], vault: v}
restore_testing:
  - {name: nightly, schedule: '30 4 * * *', timezone: UTC, resources: [docs]}
  - {name: every-backup, on_backup_completed: true, resources: [docs]}
`))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 7, 1, 10, 15, 0, 0, time.UTC)
	hourly := vigil.PlanRef{Kind: vigil.BackupPlanKind, Name: "hourly"}
	plans := cfg.Plans(at, map[vigil.PlanRef]vigil.PlanPause{hourly: {PausedBy: "ann", PausedAt: at}})
	want := []struct {
		ref  vigil.PlanRef
		next time.Time
	}{
		{vigil.PlanRef{Kind: vigil.BackupPlanKind, Name: "nightly"}, time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC)}, // 02:00 in Paris, summer time
		{hourly, time.Time{}},
		{vigil.PlanRef{Kind: vigil.RestoreTestPlanKind, Name: "nightly"}, time.Date(2026, 7, 2, 4, 30, 0, 0, time.UTC)},
		{vigil.PlanRef{Kind: vigil.RestoreTestPlanKind, Name: "every-backup"}, time.Time{}},
	}
	if len(plans) != len(want) {
		t.Fatalf("plans = %+v, want %d", plans, len(want))
	}
	for i, w := range want {
		p := plans[i]
		var next time.Time
		if p.NextRun != nil {
			next = *p.NextRun
		}
		if p.PlanRef != w.ref || !next.Equal(w.next) || len(p.Resources) != 1 {
			t.Errorf("plan %d = %+v (next %v), want %v next %v", i, p, next, w.ref, w.next)
		}
	}
	if plans[1].Paused == nil || plans[1].Paused.PausedBy != "ann" {
		t.Errorf("hourly = %+v, want paused by ann", plans[1])
	}
	if refs := cfg.PlanRefs("nightly"); len(refs) != 2 {
		t.Errorf("PlanRefs(nightly) = %v, want the backup plan and the restore testing plan", refs)
	}
	if names := cfg.PlanNames(); len(names) != 3 {
		t.Errorf("PlanNames = %v, want nightly, hourly, every-backup", names)
	}
}
