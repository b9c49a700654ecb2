package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/instance"
)

// redisApps are app resources that run Redis 7 the ways that escaped
// clean-up before copies had cgroups: daemonized (it forks, setsids and
// renames itself, so neither its process group nor its environment finds
// it), and daemonized under a shell that stays in the foreground.
const redisApps = `  - name: redis-daemon
    type: app
    path: ./redis
    run: ["redis-server", "--port", "{{.Port}}", "--bind", "{{.Host}}", "--dir", "{{.Dir}}", "--save", "", "--daemonize", "yes"]
    validate:
      - tcp: {}
  - name: redis-under-sh
    type: app
    path: ./redis
    run: ["sh", "-c", "redis-server --port {{.Port}} --bind {{.Host}} --dir {{.Dir}} --save '' --daemonize yes; exec sleep 600"]
    validate:
      - tcp: {}
      - command: {run: ["sh", "-c", "redis-cli -h $VIGIL_RESTORE_HOST -p $VIGIL_RESTORE_PORT ping | grep -q PONG"]}
restore_testing:
  - name: quick
    resources: ["*"]
    validation_window: 10s
`

// TestDaemonizingAppsLeaveNothing: after restore tests of a Redis that
// daemonizes, no redis-server of the copy is left (by its process title,
// which names its port, and by the port itself), and the verdict of the
// one whose main process exited says why it failed and what to do. With
// cgroups turned off, the daemon is still found, through its working
// directory inside the copy's folder.
func TestDaemonizingAppsLeaveNothing(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: this test restore-tests a real Redis; install it with apt-get install redis-server (.ci/run does)")
	}
	for _, mode := range []string{"cgroups", "no cgroups"} {
		t.Run(mode, func(t *testing.T) {
			e := newTestEnv(t, redisApps)
			if mode == "no cgroups" {
				e.env = append(e.env, "VIGIL_CGROUPS=off")
			}
			if err := os.MkdirAll(e.path("redis"), 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(e.path("redis/README"), []byte("a Redis data folder\n"), 0o644)
			e.serve()
			for _, tc := range []struct {
				resource string
				status   vigil.ValidationStatus
				message  []string
			}{
				{"redis-daemon", vigil.ValidationFailed, []string{"the app's main process exited with status 0 and left 1 process running", "--daemonize no"}},
				{"redis-under-sh", vigil.ValidationSuccessful, nil},
			} {
				t.Run(tc.resource, func(t *testing.T) {
					e.backup(tc.resource)
					r := e.run("restore-test", "start", "--resource", tc.resource, "--plan", "quick", "--wait", "--json")
					var job vigil.RestoreJob
					if err := json.Unmarshal([]byte(r.stdout), &job); err != nil {
						t.Fatalf("exit %d, %q, %q", r.code, r.stdout, r.stderr)
					}
					if job.ValidationStatus != tc.status || job.DeletionStatus != vigil.DeletionSuccessful {
						t.Fatalf("validation %s (%s), deletion %s (%s); want %s, deleted\nlog:\n%s",
							job.ValidationStatus, job.ValidationMessage, job.DeletionStatus, job.DeletionMessage, tc.status, e.logText(job.ID))
					}
					for _, want := range tc.message {
						if !strings.Contains(job.ValidationMessage, want) {
							t.Errorf("verdict %q does not say %q", job.ValidationMessage, want)
						}
					}
					if want := map[string]string{"cgroups": "in cgroup ", "no cgroups": "without a cgroup"}[mode]; !strings.Contains(e.logText(job.ID), want) {
						t.Errorf("the job log does not say how the app was tracked (%q):\n%s", want, e.logText(job.ID))
					}
					u, err := url.Parse(job.CreatedResourceLocation)
					if err != nil || u.Port() == "" {
						t.Fatalf("the copy's location %q names no port", job.CreatedResourceLocation)
					}
					if pids := redisOn(u.Port()); len(pids) > 0 {
						t.Errorf("redis-server of the copy is still running after clean-up: pids %v", pids)
					}
					if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
						c.Close()
						t.Errorf("something still answers on the copy's port %s", u.Host)
					}
				})
			}
		})
	}
}

// nosyApp is a restored app that tries to reach the production PostgreSQL
// its configuration names, over TCP and through its Unix socket, and says
// at /reach what it got.
const nosyApp = `import http.server, socket, sys
def tcp():
    try:
        socket.create_connection(("127.0.0.1", 5432), 2).close()
        return "reached"
    except OSError:
        return "refused"
def unix():
    try:
        s = socket.socket(socket.AF_UNIX); s.connect("/run/postgresql/.s.PGSQL.5432"); s.close()
        return "reached"
    except OSError:
        return "refused"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("tcp 127.0.0.1:5432 %s; unix /run/postgresql/.s.PGSQL.5432 %s" % (tcp(), unix())).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
`

// TestCopiesCannotReachProduction: an app copy runs in a network of its
// own and with a private /run, so the production PostgreSQL that its
// restored configuration names is out of its reach, over TCP and through
// its Unix socket, while vigil's probe and command validators reach the
// copy; with isolation.allow the copy reaches PostgreSQL's port, and with
// network: host it reaches everything, as before isolation.
func TestCopiesCannotReachProduction(t *testing.T) {
	if _, err := os.Stat("/run/postgresql/.s.PGSQL.5432"); err != nil {
		t.Fatalf("this test needs PostgreSQL's Unix socket in /run/postgresql (.ci/run starts PostgreSQL): %v", err)
	}
	const reachesCopy = `      - command: {run: ["bash", "-c", "exec 3<>/dev/tcp/$VIGIL_RESTORE_HOST/$VIGIL_RESTORE_PORT"]}`
	e := newTestEnv(t, `  - name: nosy
    type: app
    path: ./nosy
    run: ["python3", "{{.Dir}}/nosy.py", "{{.Port}}"]
    validate:
      - http: {path: /reach, expect_body: "tcp 127.0.0.1:5432 refused; unix /run/postgresql/.s.PGSQL.5432 refused"}
      - command: {run: ["bash", "-c", "! (exec 3<>/dev/tcp/127.0.0.1/5432)"]}
`+reachesCopy+`
  - name: nosy-allowed
    type: app
    path: ./nosy
    run: ["python3", "{{.Dir}}/nosy.py", "{{.Port}}"]
    isolation: {allow: ["127.0.0.1:5432"]}
    validate:
      - http: {path: /reach, expect_body: "tcp 127.0.0.1:5432 reached; unix /run/postgresql/.s.PGSQL.5432 refused"}
      - command: {run: ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5432"]}
`+reachesCopy+`
  - name: nosy-host
    type: app
    path: ./nosy
    run: ["python3", "{{.Dir}}/nosy.py", "{{.Port}}"]
    isolation: {network: host}
    validate:
      - http: {path: /reach, expect_body: "tcp 127.0.0.1:5432 reached; unix /run/postgresql/.s.PGSQL.5432 reached"}
  - name: nosy-by-plan
    type: app
    path: ./nosy
    run: ["python3", "{{.Dir}}/nosy.py", "{{.Port}}"]
    validate:
      - http: {path: /reach, expect_body: "tcp 127.0.0.1:5432 reached; unix /run/postgresql/.s.PGSQL.5432 refused"}
restore_testing:
  - name: quick
    resources: ["*"]
    validation_window: 20s
  - name: with-database
    resources: [nosy-by-plan]
    validation_window: 20s
    isolation: {allow: ["127.0.0.1:5432"]}
  - name: without-database    # the resource's own isolation: it must not pass
    resources: [nosy-by-plan]
    validation_window: 3s
`)
	os.MkdirAll(e.path("nosy"), 0o755)
	os.WriteFile(e.path("nosy/nosy.py"), []byte(nosyApp), 0o644)
	e.serve()
	for _, resource := range []string{"nosy", "nosy-allowed", "nosy-host"} {
		t.Run(resource, func(t *testing.T) {
			e.backup(resource)
			r := e.run("restore-test", "start", "--resource", resource, "--plan", "quick", "--wait", "--json")
			var job vigil.RestoreJob
			if err := json.Unmarshal([]byte(r.stdout), &job); err != nil {
				t.Fatalf("exit %d, %q, %q", r.code, r.stdout, r.stderr)
			}
			if job.ValidationStatus != vigil.ValidationSuccessful || job.DeletionStatus != vigil.DeletionSuccessful {
				t.Fatalf("validation %s (%s), deletion %s\nlog:\n%s", job.ValidationStatus, job.ValidationMessage, job.DeletionStatus, e.logText(job.ID))
			}
			want := map[string]string{"nosy": "isolated", "nosy-allowed": "127.0.0.1:5432 forwarded to it", "nosy-host": "in the host's network"}[resource]
			if log := e.logText(job.ID); !strings.Contains(log, want) {
				t.Errorf("the job log does not say %q:\n%s", want, log)
			}
		})
	}
	// A plan's isolation replaces its resources': nosy-by-plan reaches
	// PostgreSQL's port only under the plan that allows it.
	e.backup("nosy-by-plan")
	if job := e.waitTest(e.startTest("nosy-by-plan", "with-database").ID); job.ValidationStatus != vigil.ValidationSuccessful {
		t.Errorf("nosy-by-plan under the plan that allows PostgreSQL: %s (%s)", job.ValidationStatus, job.ValidationMessage)
	}
	if job := e.waitTest(e.startTest("nosy-by-plan", "without-database").ID); job.ValidationStatus == vigil.ValidationSuccessful {
		t.Errorf("nosy-by-plan reached PostgreSQL under a plan that does not allow it: %s", job.ValidationMessage)
	}
	e.requireNoLeak()
}

// TestIsolationUnavailable: where namespaces cannot be made (simulated
// with VIGIL_NAMESPACES=off), a copy that is to run isolated is refused
// with a verdict that says why and what to do, never run in the open; one
// that opted out with network: host runs.
func TestIsolationUnavailable(t *testing.T) {
	e := newTestEnv(t, `  - name: web-isolated
    type: app
    path: ./site
    run: `+pythonApp+`
  - name: web-host
    type: app
    path: ./site
    run: `+pythonApp+`
    isolation: {network: host}
restore_testing:
  - name: quick
    resources: ["*"]
    validation_window: 20s
`)
	e.env = append(e.env, "VIGIL_NAMESPACES=off")
	writeSite(t, e.path("site"))
	e.serve()
	for _, tc := range []struct {
		resource string
		status   vigil.ValidationStatus
		message  string
	}{
		{"web-isolated", vigil.ValidationFailed, "needs network and mount namespaces, and they cannot be made here (VIGIL_NAMESPACES=off is set): run vigil as root on Linux, or set isolation: {network: host}"},
		{"web-host", vigil.ValidationSuccessful, ""},
	} {
		e.backup(tc.resource)
		job := e.waitTest(e.startTest(tc.resource, "quick").ID)
		if job.ValidationStatus != tc.status || !strings.Contains(job.ValidationMessage, tc.message) || job.DeletionStatus != vigil.DeletionSuccessful {
			t.Errorf("%s: validation %s (%s), deletion %s; want %s saying %q", tc.resource, job.ValidationStatus, job.ValidationMessage, job.DeletionStatus, tc.status, tc.message)
		}
	}
	e.requireNoLeak()
}

// redisOn lists the redis-server processes whose title names port.
func redisOn(port string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		title := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.HasPrefix(title, "redis-server") && strings.Contains(title, ":"+port) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// getFromCopy GETs rawURL from inside the network of the copy whose
// processes run under dir: an isolated copy answers only there.
func getFromCopy(dir, rawURL string) (*http.Response, error) {
	procs := processesUnder(dir)
	if len(procs) == 0 {
		return nil, fmt.Errorf("no process of the copy runs under %s", dir)
	}
	pid, _ := strconv.Atoi(strings.Fields(procs[0])[0])
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			return instance.DialIn(ctx, pid, network, address)
		}}}
	return client.Get(rawURL)
}

// limitedApps are app copies with limits: one that needs more memory than
// it is given, one that fits in its plan's limits.
const limitedApps = `  - name: hog
    type: app
    path: ./site
    run: ["python3", "-c", "import sys, time; b = bytearray(256 << 20); import http.server; http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()", "{{.Port}}"]
    limits: {memory: 64MiB}
  - name: web
    type: app
    path: ./site
    run: ` + pythonApp + `
    limits: {memory: 1GiB}
restore_testing:
  - name: own
    resources: [hog]
    validation_window: 10s
  - name: small
    resources: [web]
    validation_window: 10s
    limits: {memory: 256MiB, pids: 64}
`

// TestCopiesWithinLimits: a copy that needs more memory than its limit is
// killed by the kernel, and its verdict says that the limit was the
// cause; one that fits passes, its job log naming its plan's limits, which
// replace its own. Without cgroups, the copy runs and its log says the
// limits were not enforced.
func TestCopiesWithinLimits(t *testing.T) {
	for _, mode := range []string{"cgroups", "no cgroups"} {
		t.Run(mode, func(t *testing.T) {
			e := newTestEnv(t, limitedApps)
			if mode == "no cgroups" {
				e.env = append(e.env, "VIGIL_CGROUPS=off")
			}
			writeSite(t, e.path("site"))
			e.serve()
			cases := []struct {
				resource, plan string
				status         vigil.ValidationStatus
				message, log   string
			}{
				{"hog", "own", vigil.ValidationFailed, "the kernel killed 1 process of the copy for going over its memory limit of 64.0 MiB", "with a memory limit of 64.0 MiB"},
				{"web", "small", vigil.ValidationSuccessful, "", "with a memory limit of 256.0 MiB and a limit of 64 processes"},
			}
			if mode == "no cgroups" {
				cases = cases[1:]
				cases[0].log = "not enforced: memory limit of 256.0 MiB (the app has no cgroup); limit of 64 processes (the app has no cgroup)"
			}
			for _, tc := range cases {
				e.backup(tc.resource)
				job := e.waitTest(e.startTest(tc.resource, tc.plan).ID)
				if job.ValidationStatus != tc.status || !strings.Contains(job.ValidationMessage, tc.message) || job.DeletionStatus != vigil.DeletionSuccessful {
					t.Errorf("%s: validation %s (%s), deletion %s; want %s saying %q", tc.resource, job.ValidationStatus, job.ValidationMessage, job.DeletionStatus, tc.status, tc.message)
				}
				if log := e.logText(job.ID); !strings.Contains(log, tc.log) {
					t.Errorf("%s: the job log does not say %q:\n%s", tc.resource, tc.log, log)
				}
			}
			e.requireNoLeak()
		})
	}
}
