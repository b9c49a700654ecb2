package listing_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/console"
	"github.com/vigil-backup/vigil/metrics"
	"github.com/vigil-backup/vigil/worker"
)

// The catalog's size. A year of work: a backup of one of the resources
// every five minutes, as many restore jobs (nine in ten of them restore
// tests), and a recovery point per completed backup.
const (
	backupJobs  = 100_000
	restoreJobs = 100_000
	resources   = 50
	pageSize    = 50
	// deepPage is how many records a deep page starts after.
	deepPage = 50_000
)

var vaultNames = []string{"local", "nas", "offsite"}

// defaultTestDatabaseURL is the PostgreSQL the benchmark fills, in a fresh
// schema it drops at the end, unless TEST_DATABASE_URL names another.
const defaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

const token = "listing-bench-token"

// dropIndexesEnv, when set to a space-separated list of index names, drops
// those indexes after the fill: bench/listing.sh passes the indexes of
// migration 012, to measure the catalog as it was before them.
const dropIndexesEnv = "VIGIL_LISTING_DROP_INDEXES"

// keepEnv set to 1 keeps the filled catalogs after the run, and says where
// they are, for EXPLAIN by hand.
const keepEnv = "VIGIL_LISTING_KEEP"

// filled is a catalog holding the records, served over HTTP.
type filled struct {
	api, console, metrics *httptest.Server
	cookie                string
	// Ids the requests name: the record a deep page starts after, a
	// recovery point with restore tests.
	deepBackupJob, deepRestoreJob, deepRecoveryPoint       string
	newestBackupJob, newestRestoreJob, newestRecoveryPoint string
	testedRecoveryPoint                                    string
}

var (
	fillOnce sync.Map // dialect → *filledOnce
)

type filledOnce struct {
	once sync.Once
	f    *filled
	err  error
}

// BenchmarkListing times each list a client or a person asks for, as an
// HTTP request answered in full, on a catalog filled once per dialect and
// process (the fill is not timed).
func BenchmarkListing(b *testing.B) {
	for _, dialect := range []string{catalog.DialectSQLite, catalog.DialectPostgres} {
		b.Run(dialect, func(b *testing.B) {
			f := fillFor(b, dialect)
			for _, r := range requests(f) {
				b.Run(r.name, func(b *testing.B) {
					srv := f.api
					switch {
					case strings.HasPrefix(r.name, "console"):
						srv = f.console
					case strings.HasPrefix(r.name, "metrics"):
						srv = f.metrics
					}
					// One untimed request checks the answer and warms the
					// connection and the database's caches.
					body := get(b, srv, r.path, f.cookie)
					if r.check != nil {
						r.check(b, body)
					}
					b.ResetTimer()
					for b.Loop() {
						get(b, srv, r.path, f.cookie)
					}
				})
			}
		})
	}
}

// request is one timed GET.
type request struct {
	name, path string
	check      func(b *testing.B, body []byte)
}

func requests(f *filled) []request {
	page := fmt.Sprintf("limit=%d", pageSize)
	return []request{
		{"api/backup-jobs/first-page", "/api/v1/backup-jobs?" + page, fullPage},
		{"api/backup-jobs/deep-page", "/api/v1/backup-jobs?starting_after=" + f.deepBackupJob + "&" + page, deep(f.deepBackupJob, f.newestBackupJob)},
		{"api/backup-jobs/resource", "/api/v1/backup-jobs?resource=res-07&" + page, fullPage},
		{"api/backup-jobs/vault", "/api/v1/backup-jobs?vault=nas&" + page, fullPage},
		{"api/backup-jobs/status", "/api/v1/backup-jobs?status=FAILED&" + page, fullPage},
		{"api/backup-jobs/two-statuses", "/api/v1/backup-jobs?status=FAILED&status=ABORTED&" + page, fullPage},
		{"api/backup-jobs/resource-status", "/api/v1/backup-jobs?resource=res-07&status=COMPLETED&" + page, fullPage},
		{"api/backup-jobs/created-by", "/api/v1/backup-jobs?created_by=on-demand&" + page, fullPage},

		{"api/restore-jobs/first-page", "/api/v1/restore-jobs?" + page, fullPage},
		{"api/restore-jobs/deep-page", "/api/v1/restore-jobs?starting_after=" + f.deepRestoreJob + "&" + page, deep(f.deepRestoreJob, f.newestRestoreJob)},
		{"api/restore-jobs/resource", "/api/v1/restore-jobs?resource=res-07&" + page, fullPage},
		{"api/restore-jobs/status", "/api/v1/restore-jobs?status=FAILED&" + page, fullPage},
		{"api/restore-jobs/restore-tests", "/api/v1/restore-jobs?restore_test=true&" + page, fullPage},
		{"api/restore-jobs/resource-tests", "/api/v1/restore-jobs?resource=res-07&restore_test=true&" + page, fullPage},
		{"api/restore-jobs/recovery-point", "/api/v1/restore-jobs?recovery_point_id=" + f.testedRecoveryPoint + "&" + page, someRecords},
		{"api/restore-jobs/recovery-point-tests", "/api/v1/restore-jobs?recovery_point_id=" + f.testedRecoveryPoint + "&restore_test=true&" + page, someRecords},
		{"api/restore-jobs/status-tests", "/api/v1/restore-jobs?status=ABORTED&restore_test=true&" + page, fullPage},

		{"api/recovery-points/first-page", "/api/v1/recovery-points?" + page, fullPage},
		{"api/recovery-points/deep-page", "/api/v1/recovery-points?starting_after=" + f.deepRecoveryPoint + "&" + page, deep(f.deepRecoveryPoint, f.newestRecoveryPoint)},
		{"api/recovery-points/vault", "/api/v1/recovery-points?vault=nas&" + page, fullPage},
		{"api/recovery-points/resource", "/api/v1/recovery-points?resource=res-07&" + page, fullPage},
		{"api/recovery-points/status", "/api/v1/recovery-points?status=AVAILABLE&" + page, fullPage},
		{"api/recovery-points/vault-status", "/api/v1/recovery-points?vault=nas&status=AVAILABLE&" + page, fullPage},
		{"api/recovery-points/vault-resource-status", "/api/v1/recovery-points?vault=nas&resource=res-07&status=AVAILABLE&" + page, fullPage},
		{"api/vaults", "/api/v1/vaults", nil},

		{"console/overview", "/", nil},
		{"console/jobs-backup", "/jobs?tab=backup", nil},
		{"console/jobs-backup-filtered", "/jobs?tab=backup&resource=res-07&status=FAILED&since=30d", nil},
		{"console/jobs-restore", "/jobs?tab=restore", nil},
		{"console/recovery-points", "/recovery-points", nil},
		{"console/resources", "/resources", nil},
		{"console/vaults", "/vaults", nil},

		{"metrics/scrape", "/metrics", nil},
	}
}

func fullPage(b *testing.B, body []byte) {
	b.Helper()
	if n := len(records(b, body)); n != pageSize {
		b.Fatalf("got %d records, want a full page of %d", n, pageSize)
	}
}

func someRecords(b *testing.B, body []byte) {
	b.Helper()
	if len(records(b, body)) == 0 {
		b.Fatal("got no records")
	}
}

// deep checks a deep page is full and holds neither the record it starts
// after nor the newest.
func deep(after, newest string) func(b *testing.B, body []byte) {
	return func(b *testing.B, body []byte) {
		b.Helper()
		fullPage(b, body)
		for _, r := range records(b, body) {
			if r.ID == after || r.ID == newest {
				b.Fatalf("the page starting after %s holds %s: starting_after was not honoured", after, r.ID)
			}
		}
	}
}

func records(b *testing.B, body []byte) []struct{ ID string } {
	b.Helper()
	var out []struct{ ID string }
	if err := json.Unmarshal(body, &out); err != nil {
		b.Fatalf("decode %.200s: %v", body, err)
	}
	return out
}

// get sends one request and reads its answer to the end.
func get(b *testing.B, srv *httptest.Server, path, cookie string) []byte {
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.AddCookie(&http.Cookie{Name: "vigil_session", Value: cookie})
	resp, err := srv.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %.300s", path, resp.StatusCode, body)
	}
	return body
}

func fillFor(b *testing.B, dialect string) *filled {
	v, _ := fillOnce.LoadOrStore(dialect, &filledOnce{})
	fo := v.(*filledOnce)
	fo.once.Do(func() { fo.f, fo.err = fill(dialect) })
	if fo.err != nil {
		b.Fatalf("fill the %s catalog: %v", dialect, fo.err)
	}
	return fo.f
}

// fill opens an empty catalog, fills it and serves it. What it makes (a
// temporary folder, a PostgreSQL schema) lasts until the process ends,
// as every run of -count shares it; the schema is dropped in TestMain.
func fill(dialect string) (*filled, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vigil-listing-")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	dsn := ""
	if dialect == catalog.DialectPostgres {
		if dsn, err = newSchema(ctx); err != nil {
			return nil, err
		}
	}
	cfg, err := benchConfig(dir, dsn)
	if err != nil {
		return nil, err
	}
	cat, err := catalog.Open(ctx, cfg.Catalog, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { cat.Close() })

	start := time.Now()
	f, err := insertRecords(ctx, cat)
	if err != nil {
		return nil, err
	}
	if names := strings.Fields(os.Getenv(dropIndexesEnv)); len(names) > 0 {
		for _, name := range names {
			if err := execSQL(ctx, cat, "DROP INDEX "+name); err != nil {
				return nil, fmt.Errorf("drop index %s: %w", name, err)
			}
		}
	}
	if dialect == catalog.DialectPostgres {
		// autovacuum vacuums and analyses tables this size within a
		// minute of the fill (which lets index-only scans skip the
		// table); the benchmark does not wait for it. SQLite gets
		// nothing: vigil does not ANALYZE it.
		if err := execSQL(ctx, cat, "VACUUM ANALYZE"); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(os.Stderr, "listing: filled the %s catalog in %.1f s\n", dialect, time.Since(start).Seconds())
	if os.Getenv(keepEnv) == "1" {
		fmt.Fprintf(os.Stderr, "listing: kept: data_dir %s, catalog %q\n", cfg.DataDir, cfg.Catalog)
	}

	eng, err := worker.New(cfg, cat, worker.Options{}) // never started: no job runs
	if err != nil {
		return nil, err
	}
	f.api = httptest.NewServer(api.NewServer(cfg, cat, eng, token, make(chan struct{}), nil))
	f.console = httptest.NewServer(console.New(cfg, cat, eng, token, make(chan struct{}), nil))
	f.metrics = httptest.NewServer(metrics.Handler(metrics.NewCollector(cfg, cat, nil, nil)))
	cleanups = append(cleanups, f.api.Close, f.console.Close, f.metrics.Close)
	if f.cookie, err = signIn(f.console); err != nil {
		return nil, err
	}
	return f, nil
}

var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	if os.Getenv(keepEnv) == "1" {
		os.Exit(code)
	}
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

func benchConfig(dir, dsn string) (*config.Config, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\nnode: listing-bench\n", filepath.Join(dir, "data"))
	if dsn != "" {
		fmt.Fprintf(&b, "catalog: %q\n", dsn)
	}
	b.WriteString("vaults:\n")
	for _, v := range vaultNames {
		fmt.Fprintf(&b, "  - {name: %s, storage: %s, password_env: UNUSED}\n", v, filepath.Join(dir, v))
	}
	b.WriteString("resources:\n")
	for i := range resources {
		fmt.Fprintf(&b, "  - {name: res-%02d, type: directory, path: %s}\n", i, filepath.Join(dir, "src", fmt.Sprint(i)))
	}
	cfg, err := config.Parse([]byte(b.String()))
	if err != nil {
		return nil, err
	}
	for i := range cfg.Vaults {
		cfg.Vaults[i].Password = "unused"
	}
	return cfg, os.MkdirAll(cfg.DataDir, 0o700)
}

// newSchema makes an empty schema and returns a URL selecting it.
func newSchema(ctx context.Context) (string, error) {
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = defaultTestDatabaseURL
	}
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL unreachable (TEST_DATABASE_URL, default %s): start it or point TEST_DATABASE_URL at one: %w", defaultTestDatabaseURL, err)
	}
	defer admin.Close(ctx)
	schema := fmt.Sprintf("vigil_listing_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", err
	}
	cleanups = append(cleanups, func() {
		admin, err := pgx.Connect(context.Background(), base)
		if err != nil {
			fmt.Fprintf(os.Stderr, "listing: drop schema %s: %v\n", schema, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "listing: drop schema %s: %v\n", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func signIn(srv *httptest.Server) (string, error) {
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.PostForm(srv.URL+"/login", url.Values{"token": {token}})
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "vigil_session" {
			return ck.Value, nil
		}
	}
	return "", fmt.Errorf("sign in to the console: %d, no session cookie", resp.StatusCode)
}

func execSQL(ctx context.Context, cat *catalog.Catalog, stmt string) error {
	if db := cat.SQLDB(); db != nil {
		_, err := db.ExecContext(ctx, stmt)
		return err
	}
	_, err := cat.PGXPool().Exec(ctx, stmt)
	return err
}

// The columns the fill writes, in the catalog's tables.
var (
	backupJobColumns = []string{"id", "status", "status_message", "resource", "resource_type", "vault", "recovery_point_id",
		"bytes", "files", "percent_done", "created_by", "node", "expire_at", "created_at", "started_at", "completed_at"}
	recoveryPointColumns = []string{"id", "vault", "resource", "resource_type", "status", "size_bytes", "files",
		"backup_job_id", "snapshot_id", "created_at", "completed_at", "expire_at", "status_message"}
	restoreJobColumns = []string{"id", "status", "status_message", "recovery_point_id", "resource", "resource_type",
		"created_resource_id", "created_resource_location", "created_by", "node", "created_at", "started_at", "completed_at",
		"restore_test", "validation_status", "validation_message", "deletion_status", "deletion_message",
		"restore_seconds", "start_seconds", "validation_seconds", "cleanup_seconds", "total_seconds",
		"recovery_point_age_seconds", "plan"}
)

// insertRecords writes the records, generated from a fixed seed so that
// every run lists the same catalog, and returns the ids the requests name.
func insertRecords(ctx context.Context, cat *catalog.Catalog) (*filled, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	id := func(prefix string) string {
		var b [8]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return prefix + "-" + hex.EncodeToString(b[:])
	}
	now := time.Now().UTC()
	year := 365 * 24 * time.Hour
	first := now.Add(-year)
	step := year / backupJobs
	us := func(t time.Time) int64 { return t.UnixMicro() }

	var (
		jobs, points, restores [][]any
		f                      filled
	)
	type point struct {
		id, resource string
		at           time.Time
	}
	var pointList []point
	for i := range backupJobs {
		created := first.Add(time.Duration(i) * step)
		res := rng.IntN(resources)
		resource, vault := fmt.Sprintf("res-%02d", res), vaultNames[res%len(vaultNames)]
		jobID := id("bj")
		status, message, rpID := "COMPLETED", "", ""
		switch r := rng.Float64(); {
		case i >= backupJobs-3:
			status = "RUNNING"
		case r < 0.03:
			status, message = "FAILED", "back up res: read /src: permission denied: give vigil read access"
		case r < 0.04:
			status, message = "ABORTED", "vigil stopped during the backup"
		}
		createdBy := "plan:nightly"
		if rng.IntN(20) == 0 {
			createdBy = "on-demand"
		}
		started, completed := created.Add(time.Second), created.Add(40*time.Second)
		var completedAt any = us(completed)
		if status == "RUNNING" {
			completedAt = nil
		}
		expire := created.Add(90 * 24 * time.Hour)
		if status == "COMPLETED" {
			rpID = id("rp")
			rpStatus := "AVAILABLE"
			if expire.Before(now) {
				rpStatus = "EXPIRED"
			}
			points = append(points, []any{rpID, vault, resource, "directory", rpStatus, int64(1 << 20), int64(300),
				jobID, hex.EncodeToString([]byte(rpID)), us(started), us(completed), us(expire), ""})
			pointList = append(pointList, point{rpID, resource, started})
		}
		jobs = append(jobs, []any{jobID, status, message, resource, "directory", vault, rpID,
			int64(1 << 20), int64(300), 100.0, createdBy, "listing-bench", us(expire), us(created), us(started), completedAt})
	}
	// The newest first, as the lists go: the record deepPage-1 from the
	// top is the one a deep page starts after.
	f.deepBackupJob = jobs[len(jobs)-deepPage][0].(string)
	f.deepRecoveryPoint = points[len(points)-deepPage][0].(string)
	f.newestBackupJob, f.newestRecoveryPoint = jobs[len(jobs)-1][0].(string), points[len(points)-1][0].(string)

	tested := map[string]int{}
	restoreStep := year / restoreJobs
	next := 0 // points before next were completed before the restore job
	for i := range restoreJobs {
		created := first.Add(time.Hour + time.Duration(i)*restoreStep)
		for next < len(pointList) && pointList[next].at.Before(created) {
			next++
		}
		if next == 0 {
			continue
		}
		// A recent point, as tests pick the latest within a window.
		rp := pointList[max(0, next-1-rng.IntN(min(next, 200)))]
		jobID := id("rj")
		test := rng.IntN(10) != 0
		status, message := "COMPLETED", ""
		validation, deletion, createdBy, plan := "", "", "on-demand", ""
		if test {
			tested[rp.id]++
			validation, deletion, createdBy, plan = "SUCCESSFUL", "SUCCESSFUL", "nightly", "nightly"
			switch r := rng.Float64(); {
			case r < 0.03:
				validation, message = "FAILED", "validator http: GET / answered 500"
			case r < 0.04:
				validation, message = "TIMED_OUT", "the copy did not answer within the validation window"
			case r < 0.05:
				status, validation, message = "ABORTED", "ABORTED", "vigil stopped during the test"
			}
		} else if rng.IntN(30) == 0 {
			status, message = "FAILED", "restore: target folder is not empty"
		}
		started, completed := created.Add(time.Second), created.Add(20*time.Second)
		restores = append(restores, []any{jobID, status, message, rp.id, rp.resource, "directory",
			"copy-" + jobID, "/var/lib/vigil/restores/" + jobID, createdBy, "listing-bench", us(created), us(started), us(completed),
			boolInt(test), validation, message, deletion, "",
			12.5, 0.01, 0.3, 0.2, 13.0, created.Sub(rp.at).Seconds(), plan})
	}
	f.deepRestoreJob = restores[len(restores)-deepPage][0].(string)
	f.newestRestoreJob = restores[len(restores)-1][0].(string)
	// The oldest point tested a few times: the worst case for a plan
	// that walks the tests newest first.
	for _, p := range pointList {
		if tested[p.id] >= 3 {
			f.testedRecoveryPoint = p.id
			break
		}
	}

	for _, t := range []struct {
		table   string
		columns []string
		rows    [][]any
	}{
		{"vigil_backup_job", backupJobColumns, jobs},
		{"vigil_recovery_point", recoveryPointColumns, points},
		{"vigil_restore_job", restoreJobColumns, restores},
	} {
		if err := bulkInsert(ctx, cat, t.table, t.columns, t.rows); err != nil {
			return nil, fmt.Errorf("fill %s: %w", t.table, err)
		}
	}
	return &f, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// bulkInsert writes rows in one transaction: COPY on PostgreSQL, and on
// SQLite INSERTs of many rows each.
func bulkInsert(ctx context.Context, cat *catalog.Catalog, table string, columns []string, rows [][]any) error {
	if pool := cat.PGXPool(); pool != nil {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(rows))
			return err
		})
	}
	// The fill's own connection gets a cache that holds the tables'
	// indexes, which random ids otherwise make it read again and again;
	// it goes back to SQLite's default before anything is timed.
	conn, err := cat.SQLDB().Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -262144"); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, "PRAGMA cache_size = -2000")
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const perStatement = 200
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ") + ")"
	for len(rows) > 0 {
		n := min(perStatement, len(rows))
		stmt := "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
		var args []any
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return tx.Commit()
}
