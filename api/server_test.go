package api

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/worker"
)

const testToken = "test-token"

// newTestServer is the API over a real SQLite catalog and a real engine
// that is never started: requests are checked and their jobs queued, and
// no job runs.
func newTestServer(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`
data_dir: ` + filepath.Join(dir, "data") + `
node: api-test
vaults:
  - name: v
    storage: ` + filepath.Join(dir, "vault") + `
    password_env: UNUSED
resources:
  - name: docs
    type: directory
    path: ` + filepath.Join(dir, "docs") + `
  - name: app-db
    type: sqlite
    path: ` + filepath.Join(dir, "app.db") + `
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Vaults[0].Password = "api test password"
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), "", cfg.DataDir)
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	t.Cleanup(func() { cat.Close() })
	eng, err := worker.New(cfg, cat, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return NewServer(cfg, cat, eng, testToken, make(chan struct{}), nil)
}

// call sends one request with the token and returns the status and body.
func call(s *Server, method, path, body string) (int, string) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// TestStrictRequestBodies: a body is one JSON object of known, exactly
// spelt fields, or it is refused with a 400 that names the problem;
// encoding/json alone takes all of these.
func TestStrictRequestBodies(t *testing.T) {
	s := newTestServer(t)
	const valid = `{"resource": "docs", "vault": "v"}`
	for _, tc := range []struct {
		name, path, body, want string
	}{
		{"trailing garbage", "/api/v1/backup-jobs", valid + ` x`, "more after its JSON object"},
		{"two objects", "/api/v1/backup-jobs", valid + valid, "more after its JSON object"},
		{"null", "/api/v1/backup-jobs", `null`, "must be a JSON object"},
		{"an array", "/api/v1/backup-jobs", `[` + valid + `]`, "must be a JSON object"},
		{"empty", "/api/v1/backup-jobs", ``, "is empty"},
		{"key in upper case", "/api/v1/backup-jobs", `{"resource": "docs", "VAULT": "v"}`, `unknown field "VAULT": did you mean "vault"?`},
		{"key in mixed case", "/api/v1/restore-tests", `{"Resource": "docs"}`, `unknown field "Resource": did you mean "resource"?`},
		{"unknown key", "/api/v1/backup-jobs", `{"resource": "docs", "vault": "v", "expire": 5}`, `unknown field "expire"`},
		{"key twice", "/api/v1/backup-jobs", `{"resource": "docs", "vault": "v", "vault": "w"}`, `field "vault" is given twice`},
		{"wrong type", "/api/v1/backup-jobs", `{"resource": "docs", "vault": "v", "expire_after_seconds": "1h"}`, `field "expire_after_seconds" must be a whole number`},
		{"bad metadata", "/api/v1/restore-jobs", `{"recovery_point_id": "rp-1", "metadata": {"target_path": 5}}`, `field "metadata" must be an object of string values: one value is a JSON number`},
		{"unfinished", "/api/v1/backup-jobs", `{"resource": "docs", "vault"`, "not valid JSON"},
		{"verdict in upper case", "/api/v1/restore-jobs/rj-1/validation", `{"STATUS": "SUCCESSFUL"}`, `unknown field "STATUS"`},
		{"verify with trailing garbage", "/api/v1/vaults/v/verify", `{"read_data_percent": 10}]`, "more after its JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			if strings.HasSuffix(tc.path, "/validation") {
				method = http.MethodPut
			}
			code, body := call(s, method, tc.path, tc.body)
			var e Error
			json.Unmarshal([]byte(body), &e)
			if code != http.StatusBadRequest || !strings.Contains(e.Message, tc.want) {
				t.Errorf("%s %s: %d %s; want 400 saying %q", method, tc.body, code, body, tc.want)
			}
		})
	}

	// The same body, well formed, is taken.
	if code, body := call(s, http.MethodPost, "/api/v1/backup-jobs", "\n "+valid+"\n"); code != http.StatusCreated {
		t.Errorf("a valid body: %d %s", code, body)
	}
}

// TestExpiryRange: expire_after_seconds is checked before it is
// multiplied into a duration. Both negative values were once taken: the
// first gave a recovery point that never expired, the second (seconds ×
// 1e9 wraps around to a few seconds) one deleted right after its backup.
func TestExpiryRange(t *testing.T) {
	s := newTestServer(t)
	for _, secs := range []string{"-9223372036854775808", "-18446744073", "-1", "9223372036854775807", "18446744074", "3153600001"} {
		code, body := call(s, http.MethodPost, "/api/v1/backup-jobs", `{"resource": "docs", "vault": "v", "expire_after_seconds": `+secs+`}`)
		if code != http.StatusBadRequest || !strings.Contains(body, "expire_after_seconds") {
			t.Errorf("expire_after_seconds %s: %d %s; want 400 naming the field", secs, code, body)
		}
	}
	code, body := call(s, http.MethodPost, "/api/v1/backup-jobs", `{"resource": "docs", "vault": "v", "expire_after_seconds": 3600}`)
	var job vigil.BackupJob
	if err := json.Unmarshal([]byte(body), &job); code != http.StatusCreated || err != nil || job.ExpireAt == nil {
		t.Fatalf("expire_after_seconds 3600: %d %s", code, body)
	}
	if got := job.ExpireAt.Sub(job.CreatedAt); got != time.Hour {
		t.Errorf("expire_after_seconds 3600 expires %s after the backup, not 1h", got)
	}
	code, body = call(s, http.MethodPost, "/api/v1/backup-jobs", `{"resource": "docs", "vault": "v", "expire_after_seconds": 3153600000}`)
	if code != http.StatusCreated {
		t.Errorf("expire_after_seconds of 100 years: %d %s", code, body)
	}
}

// TestCopyJobRoutes: a copy is refused, saying why, when its recovery
// point, vault or expiry is wrong; copy jobs list and show as the other
// jobs do, and their logs are served.
func TestCopyJobRoutes(t *testing.T) {
	s := newTestServer(t)
	rp := vigil.RecoveryPoint{ID: "rp-copy", Vault: "v", Resource: "docs", ResourceType: "directory", Status: vigil.RecoveryPointAvailable, SnapshotID: "k0"}
	if err := s.catalog.InsertRecoveryPoint(context.Background(), &rp); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body string
		code int
		want string
	}{
		{`{"recovery_point_id": "rp-copy"}`, http.StatusBadRequest, "a vault to copy it into"},
		{`{"recovery_point_id": "rp-copy", "vault": "v"}`, http.StatusBadRequest, `in vault \"v\" already`},
		{`{"recovery_point_id": "rp-copy", "vault": "w"}`, http.StatusNotFound, `vault \"w\"`},
		{`{"recovery_point_id": "rp-none", "vault": "v"}`, http.StatusNotFound, "rp-none"},
		{`{"recovery_point_id": "rp-copy", "vault": "w", "expire_after_seconds": -1}`, http.StatusBadRequest, "expire_after_seconds"},
		{`{"recovery_point_id": "rp-copy", "VAULT": "w"}`, http.StatusBadRequest, `did you mean \"vault\"?`},
	} {
		if code, body := call(s, http.MethodPost, "/api/v1/copy-jobs", tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("POST /api/v1/copy-jobs %s: %d %s; want %d saying %q", tc.body, code, body, tc.code, tc.want)
		}
	}

	job := vigil.CopyJob{ID: "cj-1", Status: vigil.BackupCompleted, Resource: "docs", SourceVault: "v", SourceRecoveryPointID: "rp-copy", Vault: "w", RecoveryPointID: "rp-2"}
	if err := s.catalog.InsertCopyJob(context.Background(), &job); err != nil {
		t.Fatal(err)
	}
	var list []vigil.CopyJob
	if code, body := call(s, http.MethodGet, "/api/v1/copy-jobs?source_recovery_point_id=rp-copy&status=completed", ""); code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 || list[0].ID != "cj-1" {
		t.Errorf("GET /api/v1/copy-jobs: %d %s", code, body)
	}
	if code, body := call(s, http.MethodGet, "/api/v1/copy-jobs/cj-1", ""); code != http.StatusOK || !strings.Contains(body, `"recovery_point_id": "rp-2"`) {
		t.Errorf("GET /api/v1/copy-jobs/cj-1: %d %s", code, body)
	}
	if code, body := call(s, http.MethodGet, "/api/v1/copy-jobs/cj-none", ""); code != http.StatusNotFound || !strings.Contains(body, "jobs list --type copy") {
		t.Errorf("GET /api/v1/copy-jobs/cj-none: %d %s", code, body)
	}
	if code, body := call(s, http.MethodGet, "/api/v1/jobs/cj-1/logs", ""); code != http.StatusOK {
		t.Errorf("GET /api/v1/jobs/cj-1/logs: %d %s", code, body)
	}
}

// TestListPages: each list pages with limit and starting_after, the id of
// the last record of the page before; an id that names no record is a
// 400 saying what to pass.
func TestListPages(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		created := at.Add(time.Duration(i) * time.Minute)
		id := string(rune('a' + i))
		if err := s.catalog.InsertBackupJob(ctx, &vigil.BackupJob{ID: "bj-" + id, Resource: "docs", Vault: "v", CreatedAt: created}); err != nil {
			t.Fatal(err)
		}
		if err := s.catalog.InsertRestoreJob(ctx, &vigil.RestoreJob{ID: "rj-" + id, Resource: "docs", CreatedAt: created}); err != nil {
			t.Fatal(err)
		}
		if err := s.catalog.InsertRecoveryPoint(ctx, &vigil.RecoveryPoint{ID: "rp-" + id, Resource: "docs", Vault: "v", CreatedAt: created}); err != nil {
			t.Fatal(err)
		}
		if err := s.catalog.InsertCopyJob(ctx, &vigil.CopyJob{ID: "cj-" + id, Resource: "docs", SourceVault: "v", Vault: "w", CreatedAt: created}); err != nil {
			t.Fatal(err)
		}
	}
	for _, route := range []struct{ path, prefix string }{
		{"/api/v1/backup-jobs", "bj-"}, {"/api/v1/restore-jobs", "rj-"}, {"/api/v1/recovery-points", "rp-"}, {"/api/v1/copy-jobs", "cj-"},
	} {
		for query, want := range map[string][]string{
			"?limit=2": {"c", "b"},
			"?limit=2&starting_after=" + route.prefix + "b":               {"a"},
			"?starting_after=" + route.prefix + "c":                       {"b", "a"},
			"?resource=docs&limit=1&starting_after=" + route.prefix + "c": {"b"},
		} {
			code, body := call(s, http.MethodGet, route.path+query, "")
			var got []struct{ ID string }
			if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil {
				t.Fatalf("GET %s%s: %d %s", route.path, query, code, body)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, strings.TrimPrefix(r.ID, route.prefix))
			}
			if strings.Join(ids, " ") != strings.Join(want, " ") {
				t.Errorf("GET %s%s listed %v, want %v", route.path, query, ids, want)
			}
		}
		code, body := call(s, http.MethodGet, route.path+"?starting_after="+route.prefix+"gone", "")
		if code != http.StatusBadRequest || !strings.Contains(body, "starting_after") || !strings.Contains(body, "last record of the page") {
			t.Errorf("GET %s?starting_after of no record: %d %s; want 400 saying what to pass", route.path, code, body)
		}
	}
}

// TestVaultsCountAvailable: a vault's count is of its AVAILABLE recovery
// points only.
func TestVaultsCountAvailable(t *testing.T) {
	s := newTestServer(t)
	for i, status := range []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable, vigil.RecoveryPointExpired, vigil.RecoveryPointAvailable, vigil.RecoveryPointDamaged} {
		rp := vigil.RecoveryPoint{ID: vigil.NewID(vigil.PrefixRecoveryPoint), Resource: "docs", Vault: "v", Status: status}
		if i == 2 {
			rp.Vault = "elsewhere"
		}
		if err := s.catalog.InsertRecoveryPoint(context.Background(), &rp); err != nil {
			t.Fatal(err)
		}
	}
	code, body := call(s, http.MethodGet, "/api/v1/vaults", "")
	var got []vigil.VaultInfo
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil || len(got) != 1 {
		t.Fatalf("GET /api/v1/vaults: %d %s", code, body)
	}
	if got[0].RecoveryPoints != 1 {
		t.Errorf("vault v counts %d recovery points, want its 1 AVAILABLE one", got[0].RecoveryPoints)
	}
}

// TestWorkersPendingCleanup: a node's restore tests whose copy waits to be
// deleted there are listed on its latest worker only, newest first; a
// test still validating is not waiting.
func TestWorkersPendingCleanup(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, w := range []catalog.Worker{
		{ID: "w1-old", Node: "w1", StartedAt: at, LastHeartbeatAt: at},
		{ID: "w1-new", Node: "w1", StartedAt: at.Add(time.Hour), LastHeartbeatAt: at.Add(time.Hour)},
		{ID: "w2-only", Node: "w2", StartedAt: at, LastHeartbeatAt: at},
	} {
		if err := s.catalog.RegisterWorker(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	for i, j := range []vigil.RestoreJob{
		{ID: "rj-a", Node: "w1", ValidationStatus: vigil.ValidationAborted, DeletionStatus: vigil.DeletionDeleting},
		{ID: "rj-b", Node: "w1", ValidationStatus: vigil.ValidationSuccessful, DeletionStatus: vigil.DeletionFailed},
		{ID: "rj-c", Node: "w2", ValidationStatus: vigil.ValidationValidating, DeletionStatus: vigil.DeletionDeleting},
	} {
		j.RestoreTest, j.Status, j.Resource, j.CreatedAt = true, vigil.RestoreCompleted, "docs", at.Add(time.Duration(i)*time.Minute)
		if err := s.catalog.InsertRestoreJob(ctx, &j); err != nil {
			t.Fatal(err)
		}
	}
	code, body := call(s, http.MethodGet, "/api/v1/workers", "")
	var ws []Worker
	if err := json.Unmarshal([]byte(body), &ws); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/v1/workers: %d %s", code, body)
	}
	got := map[string]string{}
	for _, w := range ws {
		got[w.ID] = strings.Join(w.PendingCleanup, " ")
	}
	if want := map[string]string{"w1-new": "rj-b rj-a", "w1-old": "", "w2-only": ""}; !maps.Equal(got, want) {
		t.Errorf("pending clean-up by worker %v, want %v", got, want)
	}
}

// TestRetentionRoutes: recovery points carry the rules that keep them, and
// GET /api/v1/backup-plans/{name}/retention previews what goes.
func TestRetentionRoutes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(`
data_dir: ` + filepath.Join(dir, "data") + `
node: api-test
vaults: [{name: v, storage: ` + filepath.Join(dir, "vault") + `, password_env: UNUSED}]
resources: [{name: docs, type: directory, path: ` + dir + `}]
backup_plans:
  - {name: nightly, schedule: "0 2 * * *", timezone: UTC, resources: [docs], vault: v, retention: {keep_last: 1}}
  - {name: weekly, schedule: "0 3 * * 0", resources: [docs], vault: v}
`))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(ctx, "", cfg.DataDir)
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	t.Cleanup(func() { cat.Close() })
	eng, err := worker.New(cfg, cat, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg, cat, eng, testToken, make(chan struct{}), nil)
	var ids []string
	for day := 1; day <= 2; day++ {
		job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupCompleted, Resource: "docs", ResourceType: "directory",
			Vault: "v", CreatedBy: "nightly", CreatedAt: time.Date(2025, 5, day, 2, 0, 0, 0, time.UTC)}
		rp := vigil.RecoveryPoint{ID: vigil.NewID(vigil.PrefixRecoveryPoint), Vault: "v", Resource: "docs", ResourceType: "directory",
			Status: vigil.RecoveryPointAvailable, BackupJobID: job.ID, SnapshotID: "s", CreatedAt: job.CreatedAt}
		if err := cat.InsertBackupJob(ctx, &job); err != nil {
			t.Fatal(err)
		}
		if err := cat.InsertRecoveryPoint(ctx, &rp); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rp.ID)
	}

	code, body := call(s, http.MethodGet, "/api/v1/recovery-points", "")
	var rps []vigil.RecoveryPoint
	if err := json.Unmarshal([]byte(body), &rps); code != http.StatusOK || err != nil || len(rps) != 2 {
		t.Fatalf("list: %d %s", code, body)
	}
	if rps[0].ID != ids[1] || strings.Join(rps[0].KeptBy, ",") != "keep_last" || rps[1].KeptBy != nil {
		t.Errorf("kept_by: newest %v, oldest %v; want keep_last and none", rps[0].KeptBy, rps[1].KeptBy)
	}
	var one vigil.RecoveryPoint
	code, body = call(s, http.MethodGet, "/api/v1/recovery-points/"+ids[1], "")
	if json.Unmarshal([]byte(body), &one); strings.Join(one.KeptBy, ",") != "keep_last" {
		t.Errorf("get: %d %s, want kept_by keep_last", code, body)
	}

	code, body = call(s, http.MethodGet, "/api/v1/backup-plans/nightly/retention", "")
	var p vigil.RetentionPreview
	if err := json.Unmarshal([]byte(body), &p); code != http.StatusOK || err != nil {
		t.Fatalf("preview: %d %s", code, body)
	}
	if p.Rules != "keep_last 1" || p.Timezone != "UTC" || len(p.Keep) != 1 || len(p.Remove) != 1 || p.Remove[0].ID != ids[0] {
		t.Errorf("preview = %+v, want %s kept by keep_last 1 and %s removed", p, ids[1], ids[0])
	}
	for path, want := range map[string]string{
		"/api/v1/backup-plans/weekly/retention":  `400 backup plan "weekly" has no retention rules`,
		"/api/v1/backup-plans/monthly/retention": `404 unknown backup plan "monthly" (known: nightly, weekly)`,
	} {
		code, body := call(s, http.MethodGet, path, "")
		var e Error
		json.Unmarshal([]byte(body), &e)
		if got := fmt.Sprintf("%d %s", code, e.Message); !strings.HasPrefix(got, want) {
			t.Errorf("GET %s: %s, want %s…", path, got, want)
		}
	}
}
