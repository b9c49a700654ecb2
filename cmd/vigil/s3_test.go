package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/internal/testsvc"
	"github.com/vigil-backup/vigil/internal/units"
	"github.com/vigil-backup/vigil/treediff"
)

// withS3Vault adds a vault named offsite in the bucket at endpoint to the
// environment's config, its keys in the environment, with more settings
// ("retry_for: 1s") if given.
func withS3Vault(t *testing.T, e *testEnv, srv *testsvc.S3, endpoint string, settings ...string) {
	t.Helper()
	cfg := string(must(os.ReadFile(e.config)))
	var more string
	for _, s := range settings {
		more += "    " + s + "\n"
	}
	vault := fmt.Sprintf(`  - name: offsite
    storage: s3://%s/vigil/offsite
    endpoint: %s
    path_style: true
    insecure: true
    access_key_env: TEST_S3_ACCESS_KEY
    secret_key_env: TEST_S3_SECRET_KEY
    password_env: VIGIL_VAULT_PASSWORD
%sresources:
`, srv.Bucket, endpoint, more)
	cfg = strings.Replace(cfg, "resources:\n", vault, 1)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "TEST_S3_ACCESS_KEY="+srv.AccessKey, "TEST_S3_SECRET_KEY="+srv.SecretKey)
}

// TestS3VaultEndToEnd is a vault in S3-compatible storage (versitygw): a
// backup into it, the restore test it starts ending SUCCESSFUL, and vault
// verify reading every content back, with the S3 keys in no file, log or
// answer.
func TestS3VaultEndToEnd(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartS3(t)
	e := newTestEnv(t, `restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [docs]
    validation_window: 30s
`)
	withS3Vault(t, e, srv, srv.Endpoint)
	makeTree(t, e.path("docs"))
	// config check opens the new, empty bucket and creates nothing in it
	if r := e.run("config", "check"); r.code != 0 {
		t.Fatalf("config check with an S3 vault: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for o := range srv.Client(t).ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		t.Errorf("config check wrote %s into the bucket", o.Key)
	}
	e.serve()

	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "offsite", "--wait")
	if job.Status != vigil.BackupCompleted || job.RecoveryPointID == "" {
		t.Fatalf("backup into the S3 vault = %+v\nlog:\n%s", job, e.logText(job.ID))
	}
	test := e.waitTest(e.testOf(job.RecoveryPointID).ID)
	if test.ValidationStatus != vigil.ValidationSuccessful || test.DeletionStatus != vigil.DeletionSuccessful {
		t.Fatalf("restore test of the S3 recovery point = %+v\nlog:\n%s", test, e.logText(test.ID))
	}
	e.requireNoLeak()

	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", job.RecoveryPointID, "--wait")
	if rj.Status != vigil.RestoreCompleted {
		t.Fatalf("restore from the S3 vault = %+v\nlog:\n%s", rj, e.logText(rj.ID))
	}
	diffs, err := treediff.Compare(e.path("docs"), rj.CreatedResourceLocation, treediff.Options{ModTimes: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("tree restored from the S3 vault differs: %s", d)
	}

	out := e.mustRun("vault", "verify", "offsite", "--read-data-percent", "100")
	if !strings.Contains(out, "all file contents (") || !strings.Contains(out, "no damage found") {
		t.Errorf("vault verify of the S3 vault: %s", out)
	}
	if out := e.mustRun("vault", "list"); !strings.Contains(out, "s3://"+srv.Bucket+"/vigil/offsite") {
		t.Errorf("vault list does not show the S3 vault's storage: %s", out)
	}

	// The metrics and the console give the S3 vault's size: the bytes of
	// its objects in the bucket, measured in the background.
	var stored int64
	for o := range srv.Client(t).ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Prefix: "vigil/offsite/", Recursive: true}) {
		stored += o.Size
	}
	token := strings.TrimSpace(string(must(os.ReadFile(e.path("vigil-data/api-token")))))
	var size float64
	waitFor(t, 30*time.Second, "the S3 vault's size in the metrics", func() bool {
		_, families := e.scrape(token)
		for _, m := range families["vigil_vault_size_bytes"].GetMetric() {
			if len(m.Label) == 1 && m.Label[0].GetValue() == "offsite" {
				size = m.GetGauge().GetValue()
				return true
			}
		}
		return false
	})
	if int64(size) != stored || stored == 0 {
		t.Errorf("vigil_vault_size_bytes{vault=\"offsite\"} = %.0f, want the %d bytes of the vault's objects in the bucket", size, stored)
	}
	if page := e.consolePage("/vaults"); !strings.Contains(page, units.Bytes(stored)) || !strings.Contains(page, "measured ") {
		t.Errorf("the console's vaults page does not show the S3 vault's %s, measured when:\n%s", units.Bytes(stored), page)
	}

	e.mustRun("vault", "repair", "offsite")

	e.stop()
	grepTree(t, e.path("vigil-data"), srv.SecretKey, srv.AccessKey)
	if strings.Contains(e.serverLog.String(), srv.SecretKey) {
		t.Errorf("server log holds the S3 secret key")
	}
}

// faultyS3 is an HTTP proxy in front of an S3 server that answers 500 to
// the next fail500 requests and drops the connection of the next drop
// requests, then passes requests on.
type faultyS3 struct {
	addr    string
	fail500 atomic.Int64
	drop    atomic.Int64
	faults  atomic.Int64 // faults served so far
}

func startFaultyS3(t *testing.T, target string) *faultyS3 {
	t.Helper()
	f := &faultyS3{}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.drop.Add(-1) >= 0 {
			f.faults.Add(1)
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		f.drop.Store(0)
		if f.fail500.Add(-1) >= 0 {
			f.faults.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected fault</Message></Error>`)
			return
		}
		f.fail500.Store(0)
		proxy.ServeHTTP(w, r)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return f
}

// A backup into an S3 vault whose server answers 500s and drops
// connections for a while retries and completes; one whose server keeps
// failing ends FAILED naming the storage error and the bucket. The vault
// verifies afterwards either way.
func TestS3VaultFaults(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartS3(t)
	proxy := startFaultyS3(t, srv.Endpoint)
	e := newEnv(t, envOptions{})
	// A lasting outage fails after retry_for: short here, so that the
	// test does not wait the default 2m for it.
	withS3Vault(t, e, srv, proxy.addr, "retry_for: 1s")
	makeTree(t, e.path("docs"))
	e.serve()

	// A passing outage: a run of 500s and of dropped connections.
	proxy.fail500.Store(6)
	proxy.drop.Store(4)
	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "offsite", "--wait")
	if job.Status != vigil.BackupCompleted {
		t.Fatalf("backup through a passing S3 outage = %+v\nlog:\n%s", job, e.logText(job.ID))
	}
	if n := proxy.faults.Load(); n != 10 {
		t.Fatalf("the proxy served %d faults, want all 10 to have been met and retried", n)
	}
	e.mustRun("vault", "verify", "offsite", "--read-data-percent", "100")

	// An outage that outlasts the retries: the job fails and says where.
	os.WriteFile(e.path("docs/new.txt"), []byte("changed, so the backup must write\n"), 0o644)
	proxy.fail500.Store(1 << 40)
	r := e.run("backup", "start", "--resource", "docs", "--vault", "offsite", "--wait", "--json")
	proxy.fail500.Store(0)
	job = vigil.BackupJob{}
	json.Unmarshal([]byte(r.stdout), &job)
	if r.code != 1 || job.Status != vigil.BackupFailed || !strings.Contains(job.StatusMessage, `S3 bucket "`+srv.Bucket+`"`) ||
		!strings.Contains(job.StatusMessage, "injected fault") || !strings.Contains(job.StatusMessage, `vault "offsite"`) ||
		!strings.Contains(job.StatusMessage, "check that it is up and reachable") {
		t.Fatalf("backup through a lasting S3 outage: exit %d, job %+v, want FAILED naming the vault, the bucket and the server's error, and what to do\nstderr: %s", r.code, job, r.stderr)
	}
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list", "--resource", "docs")
	if len(rps) != 1 {
		t.Errorf("recovery points after the failed backup = %+v, want only the first", rps)
	}
	e.mustRun("vault", "verify", "offsite", "--read-data-percent", "100")
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "offsite", "--wait")
	if job.Status != vigil.BackupCompleted {
		t.Fatalf("backup after the outage = %+v\nlog:\n%s", job, e.logText(job.ID))
	}
}
