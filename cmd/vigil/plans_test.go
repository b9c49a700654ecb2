package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// TestBackupStartVaultDefaults: with one vault, `vigil backup start` needs
// no --vault, and the recovery point takes the vault's expire_days when
// the command gives no expiry.
func TestBackupStartVaultDefaults(t *testing.T) {
	e := newEnv(t, envOptions{})
	setConfig(t, e, "password_env: VIGIL_VAULT_PASSWORD\n", "password_env: VIGIL_VAULT_PASSWORD\n    expire_days: 3\n")
	makeTree(t, e.path("docs"))
	e.serve()

	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--wait")
	if job.Status != vigil.BackupCompleted || job.Vault != "lab-vault" {
		t.Fatalf("backup job = %+v, want COMPLETED into lab-vault", job)
	}
	var rp vigil.RecoveryPoint
	e.mustJSON(&rp, "recovery-points", "show", job.RecoveryPointID)
	if rp.ExpireAt == nil || rp.ExpireAt.Sub(rp.CreatedAt).Round(time.Minute) != 72*time.Hour {
		t.Fatalf("recovery point expires %v, created %v: want 3 days later (the vault's expire_days)", rp.ExpireAt, rp.CreatedAt)
	}
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--expire-after", "2h", "--wait")
	e.mustJSON(&rp, "recovery-points", "show", job.RecoveryPointID)
	if rp.ExpireAt == nil || rp.ExpireAt.Sub(rp.CreatedAt).Round(time.Minute) != 2*time.Hour {
		t.Fatalf("recovery point expires %v, created %v: want the command's 2h", rp.ExpireAt, rp.CreatedAt)
	}
}

// setConfig replaces old with new in the environment's config file.
func setConfig(t *testing.T, e *testEnv, old, new string) {
	t.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("config has no %q:\n%s", old, b)
	}
	if err := os.WriteFile(e.config, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPlansPauseResume: `vigil plans list` shows each plan's next run; a
// paused backup plan starts no scheduled backups and a paused restore
// testing plan no test of a new backup (the backup's log says so), the
// skips are counted and logged by the server, the pause outlasts a
// restart, and a resumed plan runs again. Shell completion offers the
// config's names and the server's jobs.
func TestPlansPauseResume(t *testing.T) {
	e := newTestEnv(t, `backup_plans:
  - name: often
    schedule: "@every 2s"
    resources: [docs]
    vault: lab-vault
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [docs]
  - name: weekly
    schedule: "0 3 * * 0"
    timezone: UTC
    resources: [docs]
`)
	e.serve()

	plans := e.plans()
	if len(plans) != 3 {
		t.Fatalf("plans = %+v, want often, every-backup and weekly", plans)
	}
	if p := plans["weekly"]; p.NextRun == nil || p.NextRun.Weekday() != time.Sunday || p.NextRun.Hour() != 3 || p.Paused != nil {
		t.Errorf("weekly = %+v, want its next run on a Sunday at 03:00 UTC, not paused", p)
	}
	if p := plans["every-backup"]; p.NextRun != nil || !p.OnBackupCompleted || p.Kind != vigil.RestoreTestPlanKind {
		t.Errorf("every-backup = %+v, want a restore testing plan on each backup without a next run", p)
	}
	if p := plans["often"]; p.NextRun == nil || p.Kind != vigil.BackupPlanKind {
		t.Errorf("often = %+v, want a backup plan with a next run", p)
	}
	table := e.mustRun("plans", "list")
	for _, want := range []string{"NEXT RUN", "often", "@every 2s", "weekly", "0 3 * * 0 (UTC)", "on each backup", "active"} {
		if !strings.Contains(table, want) {
			t.Errorf("plans list does not show %q:\n%s", want, table)
		}
	}

	if r := e.run("plans", "pause", "nightly"); r.code != 2 || !strings.Contains(r.stderr, "often") {
		t.Errorf("pause of an unknown plan: exit %d, %q; want 2 and the known names", r.code, r.stderr)
	}
	e.mustRun("plans", "pause", "often")
	e.mustRun("plans", "pause", "every-backup")
	// A run that had begun before the pause may still start its backup.
	time.Sleep(time.Second)
	before := e.planBackups("often")

	job := e.backup("docs")
	if log := e.logText(job.ID); !strings.Contains(log, "restore testing plan every-backup is paused") {
		t.Errorf("the backup's log does not say the paused plan tested nothing:\n%s", log)
	}
	var tests []vigil.RestoreJob
	e.mustJSON(&tests, "jobs", "list", "--type", "restore")
	if len(tests) != 0 {
		t.Errorf("a paused restore testing plan queued %+v", tests)
	}
	time.Sleep(5 * time.Second)
	if after := e.planBackups("often"); after != before {
		t.Errorf("the paused plan started %d backups", after-before)
	}
	plans = e.plans()
	if p := plans["often"].Paused; p == nil || p.SkippedRuns < 1 || p.PausedBy == "" || plans["often"].NextRun != nil {
		t.Errorf("often = %+v, want paused with skipped runs and no next run", plans["often"])
	}
	if p := plans["every-backup"].Paused; p == nil || p.SkippedRuns != 1 {
		t.Errorf("every-backup = %+v, want paused with the one skipped test", plans["every-backup"])
	}
	if !strings.Contains(e.serverLog.String(), "skipped a scheduled run of a paused plan") {
		t.Errorf("the server's log does not mention the skipped runs:\n%s", e.serverLog)
	}

	// Shell completion, while there are jobs to complete.
	for args, want := range map[string][]string{
		"backup start --resource ": {"docs", "missing"},
		"backup start --vault ":    {"lab-vault"},
		"plans pause ":             {"often", "every-backup", "weekly"},
		"jobs show ":               {job.ID + "\tbackup of docs, COMPLETED"},
	} {
		out := e.mustRun(append([]string{"__complete"}, append(strings.Fields(args), "")...)...)
		for _, w := range want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("vigil __complete %s'' does not offer %q:\n%s", args, w, out)
			}
		}
	}

	paused := plans["often"].Paused.PausedAt
	e.stop()
	e.serve()
	plans = e.plans()
	if p := plans["often"].Paused; p == nil || !p.PausedAt.Equal(paused) {
		t.Fatalf("after a restart often = %+v, want still paused since %v", plans["often"], paused)
	}
	e.mustRun("plans", "resume", "often")
	deadline := time.Now().Add(30 * time.Second)
	for e.planBackups("often") == before {
		if time.Now().After(deadline) {
			t.Fatalf("the resumed plan started no backup in 30s; server log:\n%s", e.serverLog)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// plans returns `vigil plans list` by name.
func (e *testEnv) plans() map[string]vigil.Plan {
	e.t.Helper()
	var list []vigil.Plan
	e.mustJSON(&list, "plans", "list")
	out := map[string]vigil.Plan{}
	for _, p := range list {
		out[p.Name] = p
	}
	return out
}

// planBackups counts the backup jobs plan started.
func (e *testEnv) planBackups(plan string) int {
	e.t.Helper()
	var jobs []vigil.BackupJob
	e.mustJSON(&jobs, "jobs", "list", "--type", "backup")
	n := 0
	for _, j := range jobs {
		if j.CreatedBy == plan {
			n++
		}
	}
	return n
}

// TestPlanPauseSharedOnPostgres: on a PostgreSQL catalog, a pause made
// through `vigil serve --workers 0` stops `vigil worker`, another process,
// from starting the plan: the pause is in the catalog, not in a process.
func TestPlanPauseSharedOnPostgres(t *testing.T) {
	dsn, _, _ := postgresSchema(t)
	e := newEnv(t, envOptions{catalog: dsn, extra: `node: api-node
backup_plans:
  - name: often
    schedule: "@every 2s"
    resources: [docs]
    vault: lab-vault
`})
	makeTree(t, e.path("docs"))
	e.mustRun("migrate")
	e.serve("--workers", "0")
	w := e.startWorker("--node", "w1")
	waitFor(t, time.Minute, "the worker to run the plan", func() bool { return e.planBackups("often") > 0 })

	e.mustRun("plans", "pause", "often")
	time.Sleep(time.Second)
	before := e.planBackups("often")
	time.Sleep(6 * time.Second)
	if after := e.planBackups("often"); after != before {
		t.Errorf("the worker started %d backups of a plan paused through serve", after-before)
	}
	if !strings.Contains(w.log.String(), "skipped a scheduled run of a paused plan") {
		t.Errorf("the worker's log does not mention the skipped runs:\n%s", w.log)
	}
	if p := e.plans()["often"].Paused; p == nil || p.SkippedRuns < 2 {
		t.Errorf("often's pause = %+v, want at least 2 skipped runs in 6s of a 2s schedule", p)
	}
	e.mustRun("plans", "resume", "often")
	waitFor(t, 30*time.Second, "the worker to run the resumed plan", func() bool { return e.planBackups("often") > before })
}
