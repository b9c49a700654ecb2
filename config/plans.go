package config

import (
	"time"

	"github.com/vigil-backup/vigil"
)

// Plans lists the backup plans, then the restore testing plans, each with
// its pause from pauses and its next scheduled run after at (none while
// paused: a paused plan starts nothing).
func (c *Config) Plans(at time.Time, pauses map[vigil.PlanRef]vigil.PlanPause) []vigil.Plan {
	var out []vigil.Plan
	add := func(p vigil.Plan, next func(time.Time) time.Time) {
		if pause, ok := pauses[p.PlanRef]; ok {
			p.Paused = &pause
		} else if next != nil {
			t := next(at).UTC()
			p.NextRun = &t
		}
		if p.Resources == nil {
			p.Resources = []string{}
		}
		out = append(out, p)
	}
	for _, p := range c.BackupPlans {
		var next func(time.Time) time.Time
		if p.Cron != nil {
			next = p.Cron.Next
		}
		add(vigil.Plan{PlanRef: vigil.PlanRef{Kind: vigil.BackupPlanKind, Name: p.Name}, Schedule: p.Schedule, Timezone: p.Timezone,
			Resources: c.PlanResources(p), Vault: p.Vault}, next)
	}
	for _, p := range c.RestoreTesting {
		var next func(time.Time) time.Time
		if p.Cron != nil {
			next = p.Cron.Next
		}
		add(vigil.Plan{PlanRef: vigil.PlanRef{Kind: vigil.RestoreTestPlanKind, Name: p.Name}, Schedule: p.Schedule, Timezone: p.Timezone,
			OnBackupCompleted: p.OnBackupCompleted, Resources: c.TestPlanResources(p)}, next)
	}
	return out
}

// PlanRefs returns the plans called name: a backup plan, a restore
// testing plan, or both when they share it.
func (c *Config) PlanRefs(name string) []vigil.PlanRef {
	var out []vigil.PlanRef
	if _, ok := c.BackupPlan(name); ok {
		out = append(out, vigil.PlanRef{Kind: vigil.BackupPlanKind, Name: name})
	}
	if _, ok := c.RestoreTestPlan(name); ok {
		out = append(out, vigil.PlanRef{Kind: vigil.RestoreTestPlanKind, Name: name})
	}
	return out
}

// PlanNames lists every plan's name, backup plans first, each once.
func (c *Config) PlanNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range c.BackupPlans {
		if !seen[p.Name] {
			seen[p.Name] = true
			out = append(out, p.Name)
		}
	}
	for _, p := range c.RestoreTesting {
		if !seen[p.Name] {
			seen[p.Name] = true
			out = append(out, p.Name)
		}
	}
	return out
}
