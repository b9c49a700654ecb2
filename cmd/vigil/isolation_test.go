package main

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
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
