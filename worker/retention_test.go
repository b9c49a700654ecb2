package worker

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/backup"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

// TestRetentionRemovesWhatThePreviewSaid: on SQLite and on PostgreSQL,
// the lifecycle job removes exactly the points the preview listed, by the
// path of a fixed expiry (snapshot deleted, EXPIRED,
// RECOVERY_POINT_EXPIRED), keeps the resource's last good point although
// no rule keeps it, and leaves points the plan did not make alone.
func TestRetentionRemovesWhatThePreviewSaid(t *testing.T) {
	forEachCatalog(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		dir := t.TempDir()
		src := filepath.Join(dir, "docs")
		os.MkdirAll(src, 0o755)
		cfg, err := config.Parse([]byte(`
node: node-a
lifecycle: {check_interval: 1h}
vaults: [{name: v, storage: ` + filepath.Join(dir, "vault") + `, password_env: UNUSED}]
resources: [{name: docs, type: directory, path: ` + src + `}]
backup_plans:
  - {name: nightly, schedule: "0 2 * * *", timezone: UTC, resources: [docs], vault: v, retention: {keep_daily: 2}}
`))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DataDir, cfg.Vaults[0].Password = filepath.Join(dir, "data"), "secret"
		cat, err := catalog.Open(ctx, dsn, cfg.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cat.Close() })
		e, err := New(cfg, cat, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer e.closeVaults(ctx)

		// backedUp makes a real backup and dates its point at when.
		backedUp := func(createdBy, when string) vigil.RecoveryPoint {
			t.Helper()
			if err := os.WriteFile(filepath.Join(src, "now.txt"), []byte(when), 0o644); err != nil {
				t.Fatal(err)
			}
			bj, err := e.StartBackup(ctx, vigil.BackupRequest{Resource: "docs", Vault: "v", CreatedBy: createdBy})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.backups.Run(ctx, bj.ID); err != nil {
				t.Fatal(err)
			}
			bj, err = cat.GetBackupJob(ctx, bj.ID)
			if err != nil || bj.Status != vigil.BackupCompleted {
				t.Fatalf("backup %+v, %v", bj, err)
			}
			rp, err := cat.GetRecoveryPoint(ctx, bj.RecoveryPointID)
			if err != nil {
				t.Fatal(err)
			}
			if rp.CreatedAt, err = time.Parse("2006-01-02 15:04", when); err != nil {
				t.Fatal(err)
			}
			if err := cat.UpdateRecoveryPoint(ctx, &rp); err != nil {
				t.Fatal(err)
			}
			return rp
		}
		onDemand := backedUp("on-demand", "2025-04-01 11:00")
		oldest := backedUp("nightly", "2025-04-28 11:00")
		backedUp("nightly", "2025-04-29 11:00")
		day1 := backedUp("nightly", "2025-05-01 11:00")
		backedUp("nightly", "2025-05-02 11:00")
		newest := backedUp("nightly", "2025-05-02 23:00")

		// The oldest is the last good one: its restore test passed.
		test := vigil.NewRestoreJob(oldest, "test")
		test.RestoreTest, test.Status, test.ValidationStatus = true, vigil.RestoreCompleted, vigil.ValidationSuccessful
		if err := cat.InsertRestoreJob(ctx, &test); err != nil {
			t.Fatal(err)
		}

		preview, err := e.RetentionPreview(ctx, "nightly")
		if err != nil {
			t.Fatal(err)
		}
		kept := map[string]string{}
		for _, rp := range preview.Keep {
			kept[rp.ID] = strings.Join(rp.KeptBy, "+")
		}
		if want := map[string]string{newest.ID: "keep_daily", day1.ID: "keep_daily", oldest.ID: "last good"}; !mapsEqual(kept, want) {
			t.Fatalf("preview keeps %v, want %v", kept, want)
		}
		var removeIDs []string
		for _, rp := range preview.Remove {
			removeIDs = append(removeIDs, rp.ID)
		}
		if len(removeIDs) != 2 {
			t.Fatalf("preview removes %v, want the 2 May 11:00 and 29 April points", removeIDs)
		}
		keptBy, err := e.RetentionKeptBy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(keptBy[newest.ID], "+"); got != "keep_daily" || keptBy[onDemand.ID] != nil {
			t.Fatalf("kept by: newest %q, on-demand %v; want keep_daily and nothing", got, keptBy[onDemand.ID])
		}

		if err := e.expireAll(ctx, ExpireArgs{}); err != nil {
			t.Fatal(err)
		}
		v, err := e.Vault(ctx, "v")
		if err != nil {
			t.Fatal(err)
		}
		all, err := cat.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, rp := range all {
			gone := slices.Contains(removeIDs, rp.ID)
			if want := map[bool]vigil.RecoveryPointStatus{true: vigil.RecoveryPointExpired, false: vigil.RecoveryPointAvailable}[gone]; rp.Status != want {
				t.Errorf("recovery point %s (%s) is %s, want %s", rp.ID, rp.CreatedAt, rp.Status, want)
			}
			snaps, err := v.SnapshotsTagged(ctx, backup.TagRecoveryPoint, rp.ID)
			if err != nil {
				t.Fatal(err)
			}
			if gone != (len(snaps) == 0) {
				t.Errorf("recovery point %s removed %v, but its snapshots in the vault are %v", rp.ID, gone, snaps)
			}
		}
		events, err := cat.ListEvents(ctx, catalog.EventFilter{Types: []vigil.EventType{vigil.EventRecoveryPointExpired}})
		if err != nil {
			t.Fatal(err)
		}
		var expired []string
		for _, ev := range events {
			expired = append(expired, ev.RecoveryPointID)
			if !strings.Contains(ev.Message, "no retention rule of backup plan nightly (keep_daily 2, days counted in UTC) keeps it") {
				t.Errorf("event message %q does not say which rules let the point go", ev.Message)
			}
		}
		slices.Sort(expired)
		slices.Sort(removeIDs)
		if !slices.Equal(expired, removeIDs) {
			t.Errorf("RECOVERY_POINT_EXPIRED for %v, want for %v", expired, removeIDs)
		}

		// The rules are settled: the next pass removes nothing.
		if preview, err = e.RetentionPreview(ctx, "nightly"); err != nil || len(preview.Remove) != 0 {
			t.Fatalf("preview after the pass removes %v (%v), want none", preview.Remove, err)
		}
	})
}

func TestRetentionPreviewRefusesAPlanWithoutRules(t *testing.T) {
	cfg, err := config.Parse([]byte(`
node: node-a
vaults: [{name: v, storage: /v, password_env: UNUSED}]
resources: [{name: docs, type: directory, path: /srv/docs}]
backup_plans: [{name: nightly, schedule: "0 2 * * *", resources: [docs], vault: v, expire_days: 7}]
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	e, _ := newTestEngine(t, cfg)
	_, err = e.RetentionPreview(context.Background(), "nightly")
	if err == nil || !strings.Contains(err.Error(), `backup plan "nightly" has no retention rules`) {
		t.Errorf("preview of a plan without rules: %v", err)
	}
	_, err = e.RetentionPreview(context.Background(), "weekly")
	if err == nil || err.Error() != `unknown backup plan "weekly" (known: nightly)` {
		t.Errorf("preview of an unknown plan: %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// forEachCatalog runs test on an empty SQLite catalog and on an empty
// PostgreSQL schema (TEST_DATABASE_URL, default the local test database),
// as the catalog's own tests do. An unreachable PostgreSQL fails the test.
func forEachCatalog(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Run(catalog.DialectSQLite, func(t *testing.T) { test(t, "") })
	t.Run(catalog.DialectPostgres, func(t *testing.T) { test(t, testsvc.PostgresSchema(t)) })
}
