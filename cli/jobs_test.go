package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/worker"
)

// TestJobsListPages: `vigil jobs list` pages as the API does, with
// --limit and --starting-after, whose id says which type of job to list;
// an id of another type than --type is refused before anything is asked.
func TestJobsListPages(t *testing.T) {
	dir := t.TempDir()
	cfg, cat := testCatalog(t, "data_dir: "+filepath.Join(dir, "data")+"\n")
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		created := at.Add(time.Duration(i) * time.Minute)
		if err := cat.InsertCopyJob(ctx, &vigil.CopyJob{ID: "cj-" + id, Resource: "docs", SourceVault: "v", Vault: "w", CreatedAt: created}); err != nil {
			t.Fatal(err)
		}
		if err := cat.InsertBackupJob(ctx, &vigil.BackupJob{ID: "bj-" + id, Resource: "docs", Vault: "v", CreatedAt: created}); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := worker.New(cfg, cat, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewServer(cfg, cat, eng, "cli-token", make(chan struct{}), nil))
	t.Cleanup(srv.Close)

	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(ctx, append([]string{"--server", srv.URL, "--token", "cli-token", "--json", "jobs", "list"}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "copy", "--limit", "2"}, "cj-c cj-b"},
		{[]string{"--starting-after", "cj-b"}, "cj-a"},
		{[]string{"--type", "copy", "--starting-after", "cj-c", "--limit", "1"}, "cj-b"},
		{[]string{"--starting-after", "bj-c", "--limit", "5"}, "bj-b bj-a"},
	} {
		code, stdout, stderr := run(tt.args...)
		var jobs []struct{ ID string }
		if err := json.Unmarshal([]byte(stdout), &jobs); code != 0 || err != nil {
			t.Fatalf("jobs list %v: exit %d, %s%s", tt.args, code, stdout, stderr)
		}
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if strings.Join(ids, " ") != tt.want {
			t.Errorf("jobs list %v listed %v, want %s", tt.args, ids, tt.want)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "backup", "--starting-after", "cj-b"}, "cj-b is a copy job id"},
		{[]string{"--starting-after", "xx-1"}, "not a job id"},
		{[]string{"--type", "copy", "--starting-after", "cj-gone"}, "no copy job has this id"},
	} {
		if code, stdout, stderr := run(tt.args...); code != ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("jobs list %v: exit %d, %s%s; want exit %d saying %q", tt.args, code, stdout, stderr, ExitUsage, tt.want)
		}
	}
}

// testCatalog parses yaml as the config and opens the SQLite catalog in
// its data_dir, closed when the test ends.
func testCatalog(t *testing.T, yaml string) (*config.Config, *catalog.Catalog) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), "", cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cfg, cat
}
