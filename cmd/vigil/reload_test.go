package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// TestReload: a running server takes on a changed config file with `vigil
// reload` and with SIGHUP, without a restart: a new resource, a new plan
// on a schedule (and its removal), a new notification. Until it reloads,
// a client whose config names the new resource is told the server's
// config does not have it. A file with an error, or one that changes what
// only a restart changes, is refused with the reason, and the running
// config stays.
func TestReload(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	if err := os.MkdirAll(e.path("logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(e.path("logs/app.log"), []byte("started\n"), 0o644)
	e.serve()

	// The file gets a resource the server does not know yet.
	addLogs(t, e)
	r := e.run("backup", "start", "--resource", "logs")
	if r.code != 2 || !strings.Contains(r.stderr, `the server's config does not have resource "logs"`) || !strings.Contains(r.stderr, "vigil reload") {
		t.Fatalf("backup of a resource only the client's config has: exit %d, %q; want 2 and a hint to reload", r.code, r.stderr)
	}
	// A name neither knows is the plain answer.
	if r := e.run("backup", "start", "--resource", "nope"); r.code != 2 || strings.Contains(r.stderr, "reload") || !strings.Contains(r.stderr, `unknown resource "nope"`) {
		t.Errorf("backup of a resource no config has: exit %d, %q; want 2 and the known names", r.code, r.stderr)
	}
	out := e.mustRun("reload")
	if !strings.Contains(out, `resource "logs" added`) {
		t.Errorf("reload says %q, want the added resource", out)
	}
	if job := e.backup("logs"); job.Status != vigil.BackupCompleted {
		t.Fatalf("backup of the reloaded resource: %+v", job)
	}
	if out := e.mustRun("reload"); !strings.Contains(out, "nothing changed") {
		t.Errorf("a second reload of the same file says %q", out)
	}

	// A file with an error is refused, and the running config stays.
	good, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	setConfig(t, e, "    path: ./logs\n", "    path: ./logs\n    colour: blue\n")
	// The client reads the same file to find the server, and says
	// what is wrong with it before it asks; given the server and token
	// it asks, and the server refuses.
	if r := e.run("reload"); r.code != 2 || !strings.Contains(r.stderr, `unknown key "colour"`) {
		t.Errorf("reload with a bad file: exit %d, %q; want 2 naming the bad key", r.code, r.stderr)
	}
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	direct := []string{"--server", e.listen, "--token", strings.TrimSpace(string(token))}
	r = e.run(append([]string{"reload"}, direct...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "refused, the running config stays") || !strings.Contains(r.stderr, "colour") {
		t.Errorf("reload of a bad file: exit %d, %q; want 2 naming the bad key", r.code, r.stderr)
	}
	e.hangup()
	waitFor(t, 30*time.Second, "the refused SIGHUP reload in the server's log", func() bool {
		return strings.Contains(e.serverLog.String(), "config not reloaded")
	})
	var job vigil.BackupJob
	e.mustJSON(&job, append([]string{"backup", "start", "--resource", "logs", "--wait"}, direct...)...)
	if job.Status != vigil.BackupCompleted {
		t.Errorf("after a refused reload the running config should stay: %+v", job)
	}
	os.WriteFile(e.config, good, 0o600)
	// A change that takes a restart is refused, saying which.
	setConfig(t, e, "data_dir: ./vigil-data\n", "data_dir: ./elsewhere\n")
	r = e.run(append([]string{"reload"}, direct...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "only a restart of this process changes (data_dir changed)") {
		t.Errorf("reload that moves data_dir: exit %d, %q; want 2 saying it takes a restart", r.code, r.stderr)
	}
	// A hard problem of the start-up checks is refused too: a validator
	// whose program is not there.
	os.WriteFile(e.config, good, 0o600)
	setConfig(t, e, "    path: ./logs\n", "    path: ./logs\n    validate:\n      - command: {run: [no-such-program-anywhere]}\n")
	r = e.run("reload")
	if r.code != 2 || !strings.Contains(r.stderr, "no-such-program-anywhere") {
		t.Errorf("reload naming a missing program: exit %d, %q; want 2 naming it", r.code, r.stderr)
	}

	// SIGHUP: a plan every second and a notification come in; the plan
	// runs and the webhook hears of its backups.
	hooks := make(chan vigil.Event, 64)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev vigil.Event
		if json.Unmarshal(b, &ev) == nil {
			select {
			case hooks <- ev:
			default:
			}
		}
	}))
	defer receiver.Close()
	os.WriteFile(e.config, append(good, []byte(`backup_plans:
  - name: often
    schedule: "@every 1s"
    resources: [logs]
    vault: lab-vault
notifications:
  - name: hook
    events: [BACKUP_JOB_COMPLETED]
    webhook: {url: "`+receiver.URL+`"}
`)...), 0o600)
	e.hangup()
	waitFor(t, 30*time.Second, "a backup by the reloaded plan", func() bool { return e.planBackups("often") > 0 })
	select {
	case ev := <-hooks:
		if ev.Type != vigil.EventBackupJobCompleted || ev.Resource != "logs" {
			t.Errorf("the reloaded notification got %+v", ev)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the notification added by SIGHUP heard nothing within 30s; server log:\n%s", e.serverLog)
	}
	if !strings.Contains(e.serverLog.String(), "config reloaded") || !strings.Contains(e.serverLog.String(), `backup plan \"often\" added`) {
		t.Errorf("the server's log does not say what the reload changed:\n%s", e.serverLog)
	}

	// The plan goes again: once what had begun has ended, it starts no
	// more backups.
	os.WriteFile(e.config, good, 0o600)
	e.hangup()
	waitFor(t, 30*time.Second, "the reload that removes the plan", func() bool {
		return strings.Contains(e.serverLog.String(), `backup plan \"often\" removed`)
	})
	time.Sleep(2 * time.Second)
	before := e.planBackups("often")
	time.Sleep(4 * time.Second)
	if after := e.planBackups("often"); after != before {
		t.Errorf("the removed plan started %d backups after the reload", after-before)
	}
	if e.server.ProcessState != nil {
		t.Fatalf("vigil serve ended on SIGHUP: %s", e.serverLog)
	}
	e.stop()
}

// hangup sends SIGHUP to the server.
func (e *testEnv) hangup() {
	e.t.Helper()
	if err := e.server.Process.Signal(syscall.SIGHUP); err != nil {
		e.t.Fatal(err)
	}
}

// TestReloadWorker: on a shared catalog each process reloads its own file.
// A resource added to the file and reloaded by serve alone is accepted by
// the API, and the worker that runs the backup fails it saying to reload
// that worker; after SIGHUP to the worker (started with --node, which a
// reload keeps) its backups of the new resource complete.
func TestReloadWorker(t *testing.T) {
	t.Parallel()
	dsn, _, _ := postgresSchema(t)
	e := newEnv(t, envOptions{catalog: dsn, extra: "node: api-node\nworkers: {heartbeat_timeout: 3s}\n"})
	makeTree(t, e.path("docs"))
	makeTree(t, e.path("logs"))
	e.mustRun("migrate")
	e.serve("--workers", "0")
	w := e.startWorker("--node", "w1")
	waitFor(t, 30*time.Second, "worker w1 alive", func() bool { _, ok := e.aliveWorkers()["w1"]; return ok })

	addLogs(t, e)
	e.mustRun("reload")
	var job vigil.BackupJob
	r := e.run("backup", "start", "--resource", "logs", "--wait", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || r.code != 1 {
		t.Fatalf("backup start --wait: exit %d, %q (%v); want exit 1 and the failed job", r.code, r.stdout, err)
	}
	if job.Status != vigil.BackupFailed || !strings.Contains(job.StatusMessage, "not in the config of node w1") || !strings.Contains(job.StatusMessage, "SIGHUP to vigil worker") {
		t.Fatalf("backup of a resource the worker has not reloaded: %+v; want FAILED saying to reload node w1", job)
	}
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the worker's reload", func() bool { return strings.Contains(w.log.String(), "config reloaded") })
	if strings.Contains(w.log.String(), "config not reloaded") {
		t.Fatalf("the worker refused its reload:\n%s", w.log)
	}
	e.mustJSON(&job, "backup", "start", "--resource", "logs", "--wait")
	if job.Status != vigil.BackupCompleted || job.Node != "w1" {
		t.Fatalf("backup after the worker's reload: %+v; want COMPLETED on w1", job)
	}
	w.stop(t)
	e.stop()
}

// addLogs adds a resource logs (the folder ./logs) to the config file,
// after the environment's resources.
func addLogs(t *testing.T, e *testEnv) {
	t.Helper()
	last := `  - name: missing
    type: directory
    path: ./no-such-folder
`
	setConfig(t, e, last, last+`  - name: logs
    type: directory
    path: ./logs
`)
}
