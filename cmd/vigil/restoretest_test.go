package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

// pythonApp runs a real web server this project did not write.
const pythonApp = `["python3", "-m", "http.server", "{{.Port}}", "--bind", "{{.Host}}", "--directory", "{{.Dir}}"]`

// writeSite writes the web app's data: a page that says Welcome.
func writeSite(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"index.html":         "<h1>Welcome to the lab</h1>\n",
		"about/index.html":   "<p>about</p>\n",
		"data/customers.csv": strings.Repeat("1,Ada Lovelace,ada@example.com\n", 2000),
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// hookReceiver is a real HTTP endpoint that checks each delivery's
// signature itself, independently of vigil's code.
type hookReceiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	events []vigil.Event
	bad    []string
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	h := &hookReceiver{secret: secret}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get("X-Vigil-Signature") != want {
			h.bad = append(h.bad, "signature "+r.Header.Get("X-Vigil-Signature"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev vigil.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			h.bad = append(h.bad, "body "+string(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.events = append(h.events, ev)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) waitFor(t *testing.T, typ vigil.EventType, jobID string) vigil.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, ev := range h.events {
			if ev.Type == typ && ev.JobID == jobID {
				h.mu.Unlock()
				return ev
			}
		}
		bad := slices.Clone(h.bad)
		h.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("the webhook got bad deliveries: %v", bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s for %s reached the webhook", typ, jobID)
	return vigil.Event{}
}

// processesUnder lists live processes whose working folder or command line
// is inside dir: a leaked restored app shows up here.
func processesUnder(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", ent.Name(), "cwd"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		stat, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(stat[i+1:], []byte(" Z")) {
			continue // a zombie holds nothing
		}
		if strings.HasPrefix(cwd, dir) || bytes.Contains(cmdline, []byte(dir)) {
			found = append(found, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return found
}

// instancesDir is where restore tests put their copies.
func (e *testEnv) instancesDir() string { return e.path("vigil-data/restore-tests") }

// requireNoLeak checks that no restored copy is left: no process and no
// folder.
func (e *testEnv) requireNoLeak() {
	e.t.Helper()
	e.requireNoLeakIn(e.instancesDir())
}

// requireNoLeakIn is requireNoLeak for the restore tests' folder dir (a
// worker's own, for one on PostgreSQL).
func (e *testEnv) requireNoLeakIn(dir string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs := processesUnder(dir)
		left, _ := os.ReadDir(dir)
		if len(procs) == 0 && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var names []string
			for _, l := range left {
				names = append(names, l.Name())
			}
			e.t.Fatalf("restore tests leaked: processes %v, folders %v", procs, names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// retryOf waits for the test that was queued again after interrupted
// test job to be in the catalog, and returns it.
func (e *testEnv) retryOf(job vigil.RestoreJob) vigil.RestoreJob {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var jobs []vigil.RestoreJob
		e.mustJSON(&jobs, "jobs", "list", "--type", "restore")
		for _, j := range jobs {
			if j.RestoreTest && j.RecoveryPointID == job.RecoveryPointID && j.Plan == job.Plan && j.CreatedAt.After(job.CreatedAt) {
				return j
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no test of recovery point %s was queued again after %s was interrupted\nlog:\n%s", job.RecoveryPointID, job.ID, e.logText(job.ID))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killLeaks ends any process a failed test left, so one failure does not
// pollute the machine.
func (e *testEnv) killLeaks() {
	for _, p := range processesUnder(e.instancesDir()) {
		pid, _ := strconv.Atoi(strings.Fields(p)[0])
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func newTestEnv(t *testing.T, extra string) *testEnv {
	e := newEnv(t, envOptions{extra: extra})
	t.Cleanup(e.killLeaks)
	if err := os.MkdirAll(e.path("docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(e.path("docs/readme.txt"), []byte("docs\n"), 0o644)
	return e
}

// waitTest polls a restore test until it has a verdict and its copy is
// deleted or kept.
func (e *testEnv) waitTest(id string) vigil.RestoreJob {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var job vigil.RestoreJob
		e.mustJSON(&job, "jobs", "show", id)
		if job.ValidationStatus.Final() && (job.DeletionStatus == vigil.DeletionSuccessful || job.DeletionStatus == vigil.DeletionFailed || job.KeepUntil != nil) {
			return job
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("restore test %s did not end: %+v\nserver log:\n%s", id, job, e.serverLog)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testOf waits for the restore test of a recovery point to appear.
func (e *testEnv) testOf(rpID string) vigil.RestoreJob {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var jobs []vigil.RestoreJob
		e.mustJSON(&jobs, "jobs", "list", "--type", "restore")
		for _, j := range jobs {
			if j.RestoreTest && j.RecoveryPointID == rpID {
				return j
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no restore test of %s started", rpID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *testEnv) backup(resource string) vigil.BackupJob {
	e.t.Helper()
	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", resource, "--vault", "lab-vault", "--wait")
	return job
}

func (e *testEnv) logText(id string) string {
	e.t.Helper()
	return e.mustRun("logs", id)
}

// TestRestoreTestLab is the lab end to end: a backup of a web app this
// project did not write (python3 -m http.server) completes, the restore
// test starts by itself, restores into a new folder, starts the app on a
// new port, validates it with every kind of validator, deletes it, and
// tells a webhook, a mailbox and a command.
func TestRestoreTestLab(t *testing.T) {
	t.Parallel()
	mail := testsvc.StartMailpit(t)
	secret := "hook-secret-" + strconv.Itoa(os.Getpid())
	hook := newHookReceiver(t, secret)
	e := newTestEnv(t, fmt.Sprintf(`  - name: web-app
    type: app
    path: ./site
    run: %s
    env: {APP_MODE: restore-test}
    validate:
      - tcp: {}
      - http: {path: /, expect_status: 200, expect_body: "Welcome"}
      - command: {run: ["./check.sh"]}
      - checksum: {sample_percent: 100}
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [web-app]
    validation_window: 30s
    targets: {rto: 10m, rpo: 24h}
notifications:
  - name: ops-hook
    events: [RESTORE_TEST_STATUS, BACKUP_JOB_FAILED]
    webhook: {url: %q, secret_env: HOOK_SECRET}
  - name: ops-mail
    events: ["*"]
    email: {smtp: %q, from: "vigil@example.com", to: ["ops@example.com"]}
  - name: my-function
    events: [BACKUP_JOB_COMPLETED]
    command: ["./on-event.sh"]
`, pythonApp, hook.URL+"/hook", mail.SMTP))
	e.env = append(e.env, "HOOK_SECRET="+secret)
	writeSite(t, e.path("site"))
	writeScript(t, e.path("check.sh"), `test -f "$VIGIL_RESTORE_DIR/index.html" || { echo "index.html missing from $VIGIL_RESTORE_DIR"; exit 1; }
echo "checked $VIGIL_RESTORE_URL for $VIGIL_RESOURCE, job $VIGIL_RESTORE_JOB_ID"
env > "`+e.path("validator-env.txt")+`"
`)
	writeScript(t, e.path("on-event.sh"), `cat > "`+e.path("function-got.json")+`"`+"\n")
	e.serve()

	backup := e.backup("web-app")
	test := e.waitTest(e.testOf(backup.RecoveryPointID).ID)
	if test.ValidationStatus != vigil.ValidationSuccessful || test.DeletionStatus != vigil.DeletionSuccessful {
		t.Fatalf("restore test: %+v\nlog:\n%s", test, e.logText(test.ID))
	}
	if test.CreatedBy != "every-backup" || test.Status != vigil.RestoreCompleted || !strings.HasPrefix(test.CreatedResourceLocation, "http://127.0.0.1:") {
		t.Errorf("restore test record: %+v", test)
	}
	if test.RestoreSeconds <= 0 || test.ValidationSeconds <= 0 || test.TotalSeconds < test.RestoreSeconds || test.RecoveryPointAgeSeconds <= 0 || test.CleanupSeconds <= 0 {
		t.Errorf("durations not measured: %+v", test)
	}
	// The checksum check compared the files with the digests the restore
	// took: the recovery point was read from the vault once.
	var rp vigil.RecoveryPoint
	e.mustJSON(&rp, "recovery-points", "show", backup.RecoveryPointID)
	if test.VaultReadBytes != rp.SizeBytes || test.WrittenBytes != rp.SizeBytes || rp.SizeBytes == 0 {
		t.Errorf("the test read %d bytes from the vault and wrote %d; want the recovery point's %d, once each", test.VaultReadBytes, test.WrittenBytes, rp.SizeBytes)
	}
	if show, want := e.mustRun("jobs", "show", test.ID), fmt.Sprintf("%d read from the vault", rp.SizeBytes); !strings.Contains(show, want) {
		t.Errorf("vigil jobs show lacks %q:\n%s", want, show)
	}
	e.requireNoLeak()
	log := e.logText(test.ID)
	for _, want := range []string{"GET / HTTP", "checked http://127.0.0.1:", "checksum:", "nothing read from the vault again", "validation SUCCESSFUL",
		fmt.Sprintf("read %d bytes of file content from vault", rp.SizeBytes)} {
		if !strings.Contains(log, want) {
			t.Errorf("the job log lacks %q:\n%s", want, log)
		}
	}

	// Events, in order, with sequence numbers.
	var page api.EventPage
	e.mustJSON(&page, "events", "list")
	var types []vigil.EventType
	for i, ev := range page.Events {
		if i > 0 && ev.Seq <= page.Events[i-1].Seq {
			t.Errorf("event seqs not increasing: %d after %d", ev.Seq, page.Events[i-1].Seq)
		}
		types = append(types, ev.Type)
	}
	want := []vigil.EventType{vigil.EventBackupJobStarted, vigil.EventBackupJobCompleted, vigil.EventRestoreJobStarted,
		vigil.EventRestoreJobCompleted, vigil.EventRestoreTestStatus}
	if !slices.Equal(types, want) {
		t.Errorf("events %v, want %v", types, want)
	}

	// The webhook: signed, and reading like the lab's message.
	status := hook.waitFor(t, vigil.EventRestoreTestStatus, test.ID)
	for _, want := range []string{"Restore Test Status: SUCCESSFUL", test.RecoveryPointID, test.CreatedResourceID, "the new resource was deleted", "RTO 10m0s met"} {
		if !strings.Contains(status.Message, want) {
			t.Errorf("RESTORE_TEST_STATUS message lacks %q:\n%s", want, status.Message)
		}
	}
	// The mailbox got every event, the status among them.
	msgs := mail.WaitMessages(t, 5, 30*time.Second)
	found := false
	for _, m := range msgs {
		if strings.Contains(m.Subject, "Restore test SUCCESSFUL: web-app") && strings.Contains(m.Text, test.CreatedResourceID) {
			found = true
		}
		if !slices.Contains(m.To, "ops@example.com") {
			t.Errorf("mail to %v", m.To)
		}
	}
	if !found {
		t.Errorf("no restore test status e-mail among %d messages", len(msgs))
	}
	// The command got BACKUP_JOB_COMPLETED on stdin.
	var got vigil.Event
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(e.path("function-got.json"))
		if err == nil && json.Unmarshal(b, &got) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command notification never ran: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.Type != vigil.EventBackupJobCompleted || got.JobID != backup.ID {
		t.Errorf("command got %+v", got)
	}
	// Every delivery is recorded as delivered.
	deadline = time.Now().Add(30 * time.Second)
	for {
		e.mustJSON(&page, "events", "list")
		delivered := 0
		for _, d := range page.Deliveries {
			if d.Status == vigil.DeliveryDelivered {
				delivered++
			}
		}
		// ops-mail: 5 events, ops-hook: 1, my-function: 1.
		if delivered == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %+v", page.Deliveries)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// On demand, with the same verdict; exit 0.
	out := e.mustRun("restore-test", "start", "--resource", "web-app", "--wait")
	if !strings.Contains(out, "SUCCESSFUL") {
		t.Errorf("restore-test start --wait printed:\n%s", out)
	}
	list := e.mustRun("jobs", "list", "--type", "restore")
	if strings.Count(list, "SUCCESSFUL") < 4 { // validation and deletion of two tests
		t.Errorf("jobs list --type restore does not show the verdicts:\n%s", list)
	}
	e.requireNoLeak()

	// The secrets are nowhere vigil writes or answers, and no program it
	// starts inherits them.
	grepTree(t, e.path("vigil-data"), secret, e.password)
	if env, err := os.ReadFile(e.path("validator-env.txt")); err != nil || bytes.Contains(env, []byte(secret)) || bytes.Contains(env, []byte(e.password)) {
		t.Errorf("the validator command inherited a secret (or never ran: %v)", err)
	}
	for _, s := range []string{e.serverLog.String(), e.mustRun("events", "list", "--json"), e.mustRun("jobs", "list", "--json")} {
		if strings.Contains(s, secret) {
			t.Errorf("the webhook secret leaked into output")
		}
	}
	e.stop()
}

// TestRestoreTestVerdicts covers what bad apps get: one that exits at once,
// one that answers 500, one that never listens, and a folder whose restored
// copy passes its default checksum check. Each is cleaned up.
func TestRestoreTestVerdicts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, `  - name: exits-at-once
    type: app
    path: ./site
    run: ["sh", "-c", "echo starting up; echo 'fatal: no config in {{.Dir}}' >&2; exit 3"]
    validate:
      - http: {path: /}
  - name: answers-500
    type: app
    path: ./site
    run: ["python3", "{{.Dir}}/server500.py", "{{.Port}}"]
    validate:
      - http: {path: /health, expect_status: 200}
  - name: never-listens
    type: app
    path: ./site
    run: ["sleep", "600"]
    validate:
      - tcp: {timeout: 200ms}
  - name: forks-and-ignores-term
    type: app
    path: ./site
    run: ["sh", "-c", "trap '' TERM; (trap '' TERM; sleep 600) & exec python3 -m http.server {{.Port}} --bind {{.Host}}"]
    validate:
      - http: {path: /index.html, expect_body: "Welcome"}
restore_testing:
  - name: quick
    resources: ["*"]
    validation_window: 6s   # python3 may take seconds to start on a busy machine
`)
	writeSite(t, e.path("site"))
	// In the app's folder: an isolated copy sees no other file under /tmp.
	os.WriteFile(e.path("site/server500.py"), []byte(`import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500); self.end_headers(); self.wfile.write(b"database is down")
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
`), 0o644)
	e.serve()
	for _, r := range []string{"exits-at-once", "answers-500", "never-listens", "forks-and-ignores-term", "docs"} {
		e.backup(r)
	}

	cases := []struct {
		resource string
		status   vigil.ValidationStatus
		message  []string
		log      []string
	}{
		{"exits-at-once", vigil.ValidationFailed, []string{"exited with status 3", "fatal: no config"}, []string{"starting up"}},
		{"answers-500", vigil.ValidationFailed, []string{"expected status 200, got 500", "database is down"}, nil},
		{"never-listens", vigil.ValidationTimedOut, []string{"tcp"}, nil},
		{"forks-and-ignores-term", vigil.ValidationSuccessful, nil, nil},
		{"docs", vigil.ValidationSuccessful, nil, []string{"checksum:"}},
	}
	for _, tc := range cases {
		t.Run(tc.resource, func(t *testing.T) {
			r := e.run("restore-test", "start", "--resource", tc.resource, "--plan", "quick", "--wait", "--json")
			var job vigil.RestoreJob
			if err := json.Unmarshal([]byte(r.stdout), &job); err != nil {
				t.Fatalf("exit %d, %q, %q", r.code, r.stdout, r.stderr)
			}
			wantCode := 1
			if tc.status == vigil.ValidationSuccessful {
				wantCode = 0
			}
			if r.code != wantCode || job.ValidationStatus != tc.status || job.DeletionStatus != vigil.DeletionSuccessful {
				t.Fatalf("exit %d, validation %s (%s), deletion %s; want exit %d, %s, deleted\nstderr: %s\nlog:\n%s",
					r.code, job.ValidationStatus, job.ValidationMessage, job.DeletionStatus, wantCode, tc.status, r.stderr, e.logText(job.ID))
			}
			for _, want := range tc.message {
				if !strings.Contains(job.ValidationMessage, want) {
					t.Errorf("validation message %q lacks %q", job.ValidationMessage, want)
				}
			}
			log := e.logText(job.ID)
			for _, want := range tc.log {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if wantCode == 1 && !strings.Contains(r.stderr, string(tc.status)) {
				t.Errorf("stderr does not give the verdict: %s", r.stderr)
			}
			e.requireNoLeak()
		})
	}

	// Bad requests are refused with what to do.
	r := e.run("restore-test", "start", "--resource", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, "known:") {
		t.Errorf("unknown resource: exit %d, %s", r.code, r.stderr)
	}
	r = e.run("restore-test", "start", "--resource", "docs", "--plan", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, "quick") {
		t.Errorf("unknown plan: exit %d, %s", r.code, r.stderr)
	}
	r = e.run("restore-test", "start", "--resource", "missing")
	if r.code != 2 || !strings.Contains(r.stderr, "back it up first") {
		t.Errorf("nothing to test: exit %d, %s", r.code, r.stderr)
	}
	e.stop()
}

// apiPut calls the API as an outside validator would.
func (e *testEnv) apiPut(path string, body any) (int, string) {
	e.t.Helper()
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, "http://"+e.listen+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (e *testEnv) startTest(resource, plan string) vigil.RestoreJob {
	e.t.Helper()
	var job vigil.RestoreJob
	e.mustJSON(&job, "restore-test", "start", "--resource", resource, "--plan", plan)
	return job
}

// waitValidating waits until a restore test is validating, its app (if
// any) running.
func (e *testEnv) waitValidating(id string) vigil.RestoreJob {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var job vigil.RestoreJob
		e.mustJSON(&job, "jobs", "show", id)
		if job.ValidationStatus == vigil.ValidationValidating && (job.ResourceType != "app" || strings.HasPrefix(job.CreatedResourceLocation, "http")) {
			return job
		}
		if job.ValidationStatus.Final() || time.Now().After(deadline) {
			e.t.Fatalf("restore test %s never validated: %+v", id, job)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestoreTestExternalValidation: a verdict reported through the API
// (PutRestoreValidationResult) decides the test; none within the window
// times it out.
func TestRestoreTestExternalValidation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, `  - name: reported
    type: directory
    path: ./docs
    validate:
      - external: {}
restore_testing:
  - name: quick
    resources: ["*"]
    validation_window: 20s
  - name: short
    resources: ["*"]
    validation_window: 1s
`)
	e.serve()
	e.backup("reported")
	e.backup("docs")

	job := e.waitValidating(e.startTest("reported", "quick").ID)
	code, body := e.apiPut("/api/v1/restore-jobs/"+job.ID+"/validation", map[string]string{"status": "SUCCESSFUL", "message": "row counts match"})
	if code != 200 {
		t.Fatalf("PUT validation: %d %s", code, body)
	}
	code, body = e.apiPut("/api/v1/restore-jobs/"+job.ID+"/validation", map[string]string{"status": "FAILED"})
	if code != http.StatusConflict || !strings.Contains(body, "already has a reported verdict") {
		t.Errorf("second PUT: %d %s", code, body)
	}
	done := e.waitTest(job.ID)
	if done.ValidationStatus != vigil.ValidationSuccessful || done.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("after a SUCCESSFUL report: %+v", done)
	}

	job = e.waitValidating(e.startTest("reported", "quick").ID)
	e.apiPut("/api/v1/restore-jobs/"+job.ID+"/validation", map[string]string{"status": "FAILED", "message": "orders table is empty"})
	done = e.waitTest(job.ID)
	if done.ValidationStatus != vigil.ValidationFailed || !strings.Contains(done.ValidationMessage, "orders table is empty") {
		t.Errorf("after a FAILED report: %+v", done)
	}

	done = e.waitTest(e.startTest("reported", "short").ID)
	if done.ValidationStatus != vigil.ValidationTimedOut {
		t.Errorf("with no report: %s %s", done.ValidationStatus, done.ValidationMessage)
	}

	// Reports that do not fit are refused, saying why.
	code, body = e.apiPut("/api/v1/restore-jobs/"+done.ID+"/validation", map[string]string{"status": "SUCCESSFUL"})
	if code != http.StatusConflict || !strings.Contains(body, "not validating") {
		t.Errorf("PUT after the verdict: %d %s", code, body)
	}
	docs := e.waitTest(e.startTest("docs", "quick").ID)
	code, body = e.apiPut("/api/v1/restore-jobs/"+docs.ID+"/validation", map[string]string{"status": "SUCCESSFUL"})
	if code != http.StatusBadRequest || !strings.Contains(body, "no external validator") {
		t.Errorf("PUT for a resource without an external validator: %d %s", code, body)
	}
	code, body = e.apiPut("/api/v1/restore-jobs/"+job.ID+"/validation", map[string]string{"status": "MAYBE"})
	if code != http.StatusBadRequest {
		t.Errorf("PUT with a bad status: %d %s", code, body)
	}
	e.requireNoLeak()
	e.stop()
}

// TestRestoreTestSurvivesKill: vigil is killed with SIGKILL while a
// restored app is running under validation. The app outlives vigil (it is
// in its own process group); the next start ends the test with a verdict,
// and no process and no folder of it is left.
func TestRestoreTestSurvivesKill(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, fmt.Sprintf(`  - name: web-app
    type: app
    path: ./site
    run: %s
    validate:
      - http: {path: /}
      - external: {}
restore_testing:
  - name: slow
    resources: ["*"]
    validation_window: 10m
`, pythonApp))
	writeSite(t, e.path("site"))
	e.serve()
	e.backup("web-app")
	job := e.waitValidating(e.startTest("web-app", "slow").ID)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := getFromCopy(filepath.Join(e.instancesDir(), job.ID), job.CreatedResourceLocation)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restored app is not up: %v", err)
		}
	}

	e.kill()
	if procs := processesUnder(e.instancesDir()); len(procs) == 0 {
		t.Fatal("the restored app died with vigil: this test would prove nothing")
	}
	e.serve()
	var after vigil.RestoreJob
	e.mustJSON(&after, "jobs", "show", job.ID)
	if after.ValidationStatus != vigil.ValidationAborted || !strings.Contains(after.ValidationMessage, "interrupted") ||
		after.DeletionStatus != vigil.DeletionSuccessful {
		t.Fatalf("after the restart: validation %s (%s), deletion %s (%s)", after.ValidationStatus, after.ValidationMessage, after.DeletionStatus, after.DeletionMessage)
	}
	var page api.EventPage
	e.mustJSON(&page, "events", "list", "--type", "RESTORE_TEST_STATUS")
	if len(page.Events) != 1 || page.Events[0].JobID != job.ID {
		t.Errorf("RESTORE_TEST_STATUS after the restart: %+v", page.Events)
	}
	// Nothing was learned: the recovery point is tested again, and that
	// test is as the first would have been (its external verdict comes).
	again := e.waitValidating(e.retryOf(job).ID)
	if code, body := e.apiPut("/api/v1/restore-jobs/"+again.ID+"/validation", map[string]string{"status": "SUCCESSFUL", "message": "checked by hand"}); code != http.StatusOK {
		t.Fatalf("PUT the retry's verdict: %d %s", code, body)
	}
	if again = e.waitTest(again.ID); again.ValidationStatus != vigil.ValidationSuccessful || again.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("the test queued again: validation %s (%s), deletion %s", again.ValidationStatus, again.ValidationMessage, again.DeletionStatus)
	}
	e.requireNoLeak()
	// A new test runs normally afterwards.
	e.backup("docs")
	if done := e.waitTest(e.startTest("docs", "slow").ID); done.ValidationStatus != vigil.ValidationSuccessful {
		t.Errorf("test after the restart: %+v", done)
	}
	e.stop()
}

// TestRestoreTestPlansAndKeep: a scheduled plan picks a recovery point by
// itself; keep_on_failure keeps a failed copy running for inspection, and
// deletes it when keep_for is up; a notification endpoint that is down
// changes no verdict, and its failed deliveries are visible.
func TestRestoreTestPlansAndKeep(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, fmt.Sprintf(`  - name: broken-app
    type: app
    path: ./site
    run: %s
    validate:
      - http: {path: /missing.html}
lifecycle:
  check_interval: 1s
restore_testing:
  - name: keep-broken
    resources: [broken-app]
    validation_window: 5s
    keep_on_failure: true
    keep_for: 3s
  - name: nightly
    schedule: "@every 2s"
    resources: [docs]
    recovery_point: RANDOM_WITHIN_WINDOW
    selection_window_days: 1
notifications:
  - name: down-hook
    events: ["*"]
    webhook: {url: "http://%s/hook"}
    retry: {attempts: 3, backoff: 100ms}
`, pythonApp, freeAddr(t)))
	writeSite(t, e.path("site"))
	e.serve()
	backup := e.backup("docs")
	e.backup("broken-app")

	// The schedule starts a test of docs by itself.
	scheduled := e.waitTest(e.testOf(backup.RecoveryPointID).ID)
	if scheduled.CreatedBy != "nightly" || scheduled.ValidationStatus != vigil.ValidationSuccessful {
		t.Errorf("scheduled test: %+v", scheduled)
	}

	// The failed copy is kept, running, then deleted.
	kept := e.waitTest(e.startTest("broken-app", "keep-broken").ID)
	if kept.ValidationStatus != vigil.ValidationFailed || kept.KeepUntil == nil || kept.DeletionStatus != "" {
		t.Fatalf("kept test: %+v", kept)
	}
	resp, err := getFromCopy(filepath.Join(e.instancesDir(), kept.ID), kept.CreatedResourceLocation+"/index.html")
	if err != nil {
		t.Fatalf("the kept copy is not running: %v", err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var job vigil.RestoreJob
		e.mustJSON(&job, "jobs", "show", kept.ID)
		if job.DeletionStatus == vigil.DeletionSuccessful {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kept copy was never deleted: %+v", job)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The webhook was down all along: deliveries gave up, and say so.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var page api.EventPage
		e.mustJSON(&page, "events", "list", "--type", "RESTORE_TEST_STATUS")
		var failed []vigil.Delivery
		for _, d := range page.Deliveries {
			if d.Status == vigil.DeliveryFailed {
				failed = append(failed, d)
			}
		}
		if len(failed) > 0 {
			if failed[0].Attempts != 3 || !strings.Contains(failed[0].LastError, "gave up after 3 attempts") {
				t.Errorf("failed delivery: %+v", failed[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery recorded: %+v", page.Deliveries)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := e.mustRun("events", "list")
	if !strings.Contains(out, "down-hook:FAILED") {
		t.Errorf("vigil events list does not show the failed delivery:\n%s", out)
	}
	e.stop()
	e.killLeaks()
}

// TestRestoreTestManyAtOnce restore-tests 20 small apps at the same time
// and checks that every one passes and nothing is left behind.
func TestRestoreTestManyAtOnce(t *testing.T) {
	t.Parallel()
	const n = 20
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `  - name: tiny-%02d
    type: app
    path: ./site
    run: [%q, "sample-app", "--dir", "{{.Dir}}", "--listen", "{{.Host}}:{{.Port}}"]
    validate:
      - http: {path: /, expect_body: "Welcome"}
`, i, vigilBin)
	}
	b.WriteString("restore_testing:\n  - name: quick\n    resources: [\"*\"]\n    validation_window: 1m\n")
	e := newTestEnv(t, b.String())
	writeSite(t, e.path("site"))
	e.serve("--workers", "20")
	e.backup("tiny-00") // the others share its folder; one backup each below
	var ids []string
	for i := range n {
		if i > 0 {
			e.backup(fmt.Sprintf("tiny-%02d", i))
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job := e.startTest(fmt.Sprintf("tiny-%02d", i), "quick")
			mu.Lock()
			ids = append(ids, job.ID)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if job := e.waitTest(id); job.ValidationStatus != vigil.ValidationSuccessful || job.DeletionStatus != vigil.DeletionSuccessful {
			t.Errorf("%s: %s (%s), deletion %s (%s)", id, job.ValidationStatus, job.ValidationMessage, job.DeletionStatus, job.DeletionMessage)
		}
	}
	e.requireNoLeak()
	e.stop()
}

// TestEventsTail follows events as they happen, and lists them after a
// sequence number.
func TestEventsTail(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	e.serve()
	first := e.backup("docs")

	tail := exec.Command(vigilBin, "events", "tail", "--json")
	tail.Env = e.environ()
	out, err := tail.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { tail.Process.Kill(); tail.Wait() }()
	time.Sleep(300 * time.Millisecond) // let it find the newest event
	second := e.backup("docs")

	lines := make(chan vigil.Event)
	go func() {
		dec := json.NewDecoder(out)
		for {
			var ev vigil.Event
			if dec.Decode(&ev) != nil {
				close(lines)
				return
			}
			lines <- ev
		}
	}()
	var got []vigil.Event
	timeout := time.After(30 * time.Second)
	for len(got) < 2 {
		select {
		case ev, ok := <-lines:
			if !ok {
				t.Fatalf("events tail ended early after %+v", got)
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("events tail printed %+v", got)
		}
	}
	if got[0].Type != vigil.EventBackupJobStarted || got[1].Type != vigil.EventBackupJobCompleted ||
		got[0].JobID != second.ID || got[1].Seq <= got[0].Seq {
		t.Errorf("tail printed %+v, want the second backup's start and completion (first was %s)", got, first.ID)
	}

	var page api.EventPage
	e.mustJSON(&page, "events", "list", "--since", strconv.FormatInt(got[0].Seq, 10))
	if len(page.Events) != 1 || page.Events[0].Seq != got[1].Seq {
		t.Errorf("events list --since %d: %+v", got[0].Seq, page.Events)
	}
	r := e.run("events", "list", "--type", "NOT_AN_EVENT")
	if r.code != 2 || !strings.Contains(r.stderr, "RESTORE_TEST_STATUS") {
		t.Errorf("unknown event type: exit %d, %s", r.code, r.stderr)
	}
	e.stop()
}
