package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/worker"
)

// TestRetentionPreviewAndKeptBy: `vigil retention preview --plan P` lists
// what is kept by which rule and what goes, and `vigil recovery-points
// list` shows the same rules in its KEPT BY column.
func TestRetentionPreviewAndKeptBy(t *testing.T) {
	dir := t.TempDir()
	cfg, cat := testCatalog(t, `
data_dir: `+filepath.Join(dir, "data")+`
vaults: [{name: v, storage: `+filepath.Join(dir, "vault")+`, password_env: UNUSED}]
resources: [{name: docs, type: directory, path: `+dir+`}]
backup_plans:
  - {name: nightly, schedule: "0 2 * * *", timezone: UTC, resources: [docs], vault: v, retention: {keep_last: 1, keep_daily: 2}}
`)
	ctx := context.Background()
	for i, at := range []string{"2025-05-01T02:00:00Z", "2025-05-02T02:00:00Z", "2025-05-02T14:00:00Z", "2025-05-03T02:00:00Z"} {
		created, _ := time.Parse(time.RFC3339, at)
		job := vigil.BackupJob{ID: "bj-" + string(rune('a'+i)), Status: vigil.BackupCompleted, Resource: "docs", Vault: "v", CreatedBy: "nightly", CreatedAt: created}
		if err := cat.InsertBackupJob(ctx, &job); err != nil {
			t.Fatal(err)
		}
		rp := vigil.RecoveryPoint{ID: "rp-" + string(rune('a'+i)), Vault: "v", Resource: "docs", ResourceType: "directory",
			Status: vigil.RecoveryPointAvailable, BackupJobID: job.ID, CreatedAt: created}
		if err := cat.InsertRecoveryPoint(ctx, &rp); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := worker.New(cfg, cat, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewServer(cfg, cat, eng, "cli-token", make(chan struct{}), nil))
	t.Cleanup(srv.Close)
	run := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := Main(ctx, append([]string{"--server", srv.URL, "--token", "cli-token"}, args...), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}

	code, out := run("retention", "preview", "--plan", "nightly")
	if code != 0 {
		t.Fatalf("retention preview: exit %d, %s", code, out)
	}
	for _, want := range []string{
		`backup plan nightly: keep_last 1, keep_daily 2 \(days counted in UTC\)`,
		`keep 2 recovery points:`,
		`rp-d +AVAILABLE +docs +v .* keep_last, keep_daily\n`,
		`rp-c +AVAILABLE +docs +v .* keep_daily\n`,
		`remove 2 recovery points at the next lifecycle pass:`,
		`rp-b .* no rule keeps it\n`,
		`rp-a .* no rule keeps it\n`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("preview does not match %q:\n%s", want, out)
		}
	}

	code, out = run("recovery-points", "list")
	if code != 0 || !strings.Contains(out, "KEPT BY") {
		t.Fatalf("recovery-points list: exit %d, %s", code, out)
	}
	for _, want := range []string{`rp-d .* keep_last, keep_daily\n`, `rp-c .* keep_daily\n`, `rp-b .* -\n`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("list does not match %q:\n%s", want, out)
		}
	}

	if code, out = run("retention", "preview"); code != ExitUsage || !strings.Contains(out, "needs --plan") {
		t.Errorf("preview without --plan: exit %d, %s", code, out)
	}
	if code, out = run("retention", "preview", "--plan", "weekly"); code == 0 || !strings.Contains(out, `unknown backup plan "weekly" (known: nightly)`) {
		t.Errorf("preview of an unknown plan: exit %d, %s", code, out)
	}
}
