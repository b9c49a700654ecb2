package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// TestRetentionEndToEnd: a plan's real backups, the oldest of them
// restore-tested, are dated over several days while vigil is down (the only thing not done
// by vigil itself: days cannot be waited for). Then `vigil retention
// preview` says what keep_daily 2 keeps and what goes, the last good
// point kept though it is the oldest, `vigil recovery-points list` shows
// the same in KEPT BY, and the lifecycle pass at the next start removes
// exactly what the preview listed. `vigil config check` refuses rules
// next to a fixed expiry.
func TestRetentionEndToEnd(t *testing.T) {
	t.Parallel()
	dsn, _, _ := postgresSchema(t)
	// Six runs, two seconds apart, in one minute of this year only: the
	// plan makes its backups and then nothing more is queued.
	start := time.Now().UTC().Add(8 * time.Second).Truncate(time.Second)
	if start.Second() > 48 {
		start = start.Truncate(time.Minute).Add(time.Minute + time.Second)
	}
	var secs []string
	for i := 0; i < 6; i++ {
		secs = append(secs, fmt.Sprint(start.Second()+2*i))
	}
	schedule := fmt.Sprintf("%s %d %d %d %d *", strings.Join(secs, ","), start.Minute(), start.Hour(), start.Day(), int(start.Month()))
	last := start.Add(10 * time.Second)
	plan := func(retention string) string {
		return fmt.Sprintf(`backup_plans:
  - name: nightly
    schedule: %q
    timezone: UTC
    resources: [docs]
    vault: lab-vault
%s`, schedule, retention)
	}
	e := newEnv(t, envOptions{catalog: dsn, extra: plan("")})
	if err := os.MkdirAll(e.path("docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("docs/index.html"), []byte("<h1>docs</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("migrate")
	e.serve()
	time.Sleep(time.Until(last.Add(time.Second)))
	var backups []vigil.BackupJob
	waitFor(t, 2*time.Minute, "the plan's backups to end", func() bool {
		e.mustJSON(&backups, "jobs", "list", "--type", "backup")
		return len(backups) >= 4 && !slices.ContainsFunc(backups, func(j vigil.BackupJob) bool { return !j.Status.Final() })
	})
	// Only the oldest point is proven: the newer ones were never tested,
	// so the oldest is the resource's last good point.
	oldest := backups[len(backups)-1]
	var test vigil.RestoreJob
	e.mustJSON(&test, "restore-test", "start", "--resource", "docs", "--recovery-point", oldest.RecoveryPointID, "--wait")
	if test.ValidationStatus != vigil.ValidationSuccessful {
		t.Fatalf("restore test of %s: %s %q", oldest.RecoveryPointID, test.ValidationStatus, test.ValidationMessage)
	}
	e.stop()

	// Date the points half a day apart, the last good one long before.
	ctx := context.Background()
	cat, err := catalog.Open(ctx, dsn, e.path("vigil-data"))
	if err != nil {
		t.Fatalf("open the catalog: %v", err)
	}
	rps, err := cat.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{Plan: "nightly", Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}})
	if err != nil {
		t.Fatal(err)
	}
	good, err := cat.LastGoodRecoveryPoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lastGood := good["docs"]
	if len(rps) < 4 || lastGood != oldest.RecoveryPointID {
		t.Fatalf("%d recovery points, last good %q: want 4 or more, and %s the last good one", len(rps), lastGood, oldest.RecoveryPointID)
	}
	newest := time.Date(2025, 5, 3, 2, 0, 0, 0, time.UTC)
	var dated []string // newest first, the last good one left out
	for _, rp := range rps {
		if rp.ID == lastGood {
			rp.CreatedAt = time.Date(2025, 4, 1, 2, 0, 0, 0, time.UTC)
		} else {
			rp.CreatedAt = newest.Add(-12 * time.Hour * time.Duration(len(dated)))
			dated = append(dated, rp.ID)
		}
		if err := cat.UpdateRecoveryPoint(ctx, &rp); err != nil {
			t.Fatal(err)
		}
	}
	cat.Close()

	// Rules next to a fixed expiry are refused before anything runs.
	if err := os.WriteFile(e.config, []byte(strings.Replace(mustRead(t, e.config), plan(""),
		plan("    expire_days: 30\n    retention: {keep_daily: 2}\n"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.run("config", "check"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "backup_plans[0].retention: the plan also has expire_days or expire_after") {
		t.Fatalf("config check of rules with expire_days: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(e.config, []byte(strings.Replace(mustRead(t, e.config), "    expire_days: 30\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun("config", "check")

	// The API alone, no jobs: nothing is removed while we look.
	e.serve("--workers", "0")
	var preview vigil.RetentionPreview
	e.mustJSON(&preview, "retention", "preview", "--plan", "nightly")
	ids := func(rps []vigil.RecoveryPoint) []string {
		var out []string
		for _, rp := range rps {
			out = append(out, rp.ID+" "+strings.Join(rp.KeptBy, ","))
		}
		return out
	}
	wantKeep := []string{dated[0] + " keep_daily", dated[1] + " keep_daily", lastGood + " last good"}
	var wantRemove []string
	for _, id := range dated[2:] {
		wantRemove = append(wantRemove, id+" ")
	}
	if !slices.Equal(ids(preview.Keep), wantKeep) || !slices.Equal(ids(preview.Remove), wantRemove) {
		t.Fatalf("preview keeps %v and removes %v; want %v and %v", ids(preview.Keep), ids(preview.Remove), wantKeep, wantRemove)
	}
	out := e.mustRun("retention", "preview", "--plan", "nightly")
	for _, want := range []string{"backup plan nightly: keep_daily 2 (days counted in UTC)", "keep 3 recovery points:",
		fmt.Sprintf("remove %d recovery points at the next lifecycle pass:", len(wantRemove)), "last good", "no rule keeps it"} {
		if !strings.Contains(out, want) {
			t.Errorf("retention preview does not say %q:\n%s", want, out)
		}
	}
	out = e.mustRun("recovery-points", "list")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, lastGood) && !strings.HasSuffix(line, "last good") ||
			strings.HasPrefix(line, dated[0]) && !strings.HasSuffix(line, "keep_daily") {
			t.Errorf("recovery-points list line %q lacks its KEPT BY", line)
		}
	}
	if !strings.Contains(out, "KEPT BY") {
		t.Errorf("recovery-points list has no KEPT BY column:\n%s", out)
	}
	e.stop()

	// The lifecycle pass at start removes what the preview said.
	e.serve()
	removed := func(id string) bool { return slices.Contains(wantRemove, id+" ") }
	waitFor(t, time.Minute, "the lifecycle pass to remove the points the preview listed", func() bool {
		var all []vigil.RecoveryPoint
		e.mustJSON(&all, "recovery-points", "list")
		for _, rp := range all {
			if removed(rp.ID) != (rp.Status == vigil.RecoveryPointExpired) {
				return false
			}
		}
		return true
	})
	var all []vigil.RecoveryPoint
	e.mustJSON(&all, "recovery-points", "list")
	for _, rp := range all {
		if !removed(rp.ID) && rp.Status != vigil.RecoveryPointAvailable {
			t.Errorf("recovery point %s is %s; the preview kept it", rp.ID, rp.Status)
		}
		if removed(rp.ID) {
			if logs := e.mustRun("logs", rp.BackupJobID); !strings.Contains(logs, "no retention rule of backup plan nightly (keep_daily 2, days counted in UTC) keeps it") {
				t.Errorf("the log of %s does not say why its point went:\n%s", rp.BackupJobID, logs)
			}
		}
	}
	e.mustJSON(&preview, "retention", "preview", "--plan", "nightly")
	if len(preview.Remove) != 0 {
		t.Errorf("after the pass the preview still removes %v", ids(preview.Remove))
	}
	e.stop()
}
