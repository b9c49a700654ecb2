package instance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
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

	"github.com/vigil-backup/vigil/config"
)

// within bounds every wait in these tests; none should come near it.
const within = 10 * time.Second

// helperEnv switches the test binary into the stand-in for a vigil process
// that is killed while its app runs (TestRemoveAfterRestart).
const helperEnv = "VIGIL_INSTANCE_TEST_HELPER_PARENT"

func TestMain(m *testing.M) {
	if parent := os.Getenv(helperEnv); parent != "" {
		os.Exit(runKilledVigil(parent))
	}
	os.Exit(m.Run())
}

// runKilledVigil creates an instance, starts an app with a child in the
// app's group and one that left it (setsid), says so, and waits to be killed.
func runKilledVigil(parent string) int {
	i, err := Create(parent, "rj-orphan")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res := shApp("setsid sleep 1000 & sleep 1000 & wait")
	res.Limits = config.Limits{Memory: 64 << 20, PIDs: 16} // and their cgroups, on hybrid hosts
	p, err := i.Start(res, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("started %s %d\n", i.JobID, p.PID())
	time.Sleep(time.Hour)
	return 0
}

// needProgram fails the test when a program it runs is not installed.
func needProgram(t *testing.T, name, why string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("this test needs %s %s: %v", name, why, err)
	}
}

func shApp(script string) config.Resource {
	return config.Resource{Name: "app", Type: "app", Run: []string{"sh", "-c", script}}
}

// newParent returns a new instances folder and, at the end of the test,
// fails it if any process of an instance in there still runs (and kills it).
func newParent(t *testing.T) string {
	t.Helper()
	parent := t.TempDir()
	t.Cleanup(func() {
		if pids := markedPIDs(parent); len(pids) > 0 {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("processes %v of instances under %s still ran at the end of the test", pids, parent)
		}
	})
	return parent
}

// markedPIDs lists the live processes whose environment says they belong to
// an instance under parent.
func markedPIDs(parent string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(append([]byte{0}, env...), []byte("\x00"+EnvMarker+"="+parent+"/")) {
			continue
		}
		if alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// livePIDs lists the live processes in process group pgid. Zombies do not
// count: where init does not reap orphans, they stay forever, but they run
// nothing (and so kill(-pgid, 0) alone cannot tell a group is gone).
func livePIDs(pgid int) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.pgrp == pgid && st.alive() {
			pids = append(pids, pid)
		}
	}
	return pids
}

func alive(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.alive()
}

// requireGone fails the test unless no process of group pgid runs.
func requireGone(t *testing.T, pgid int) {
	t.Helper()
	if pids := livePIDs(pgid); len(pids) > 0 {
		t.Fatalf("processes %v of group %d still run", pids, pgid)
	}
	if err := syscall.Kill(-pgid, 0); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill(-%d, 0): %v", pgid, err)
	}
}

func requireNoFolder(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s still exists (Lstat: %v)", path, err)
	}
}

// logLines collects what an app writes.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// waitFor returns the first line that starts with prefix, waiting for it.
func (l *logLines) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, s := range l.all() {
			if strings.HasPrefix(s, prefix) {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no line %q… in %s; got %q", prefix, within, l.all())
	return ""
}

// pidIn returns the pid at the end of a line such as "app: ready 1234".
func pidIn(t *testing.T, line string) int {
	t.Helper()
	f := strings.Fields(line)
	pid, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		t.Fatalf("no pid at the end of %q", line)
	}
	return pid
}

func waitExited(t *testing.T, p *Process) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(within):
		t.Fatalf("app %d did not exit in %s", p.PID(), within)
	}
}

func TestCreateOpen(t *testing.T) {
	parent := filepath.Join(newParent(t), "instances") // made by Create
	i, err := Create(parent, "rj-1")
	if err != nil {
		t.Fatal(err)
	}
	if i.JobID != "rj-1" || i.Root != filepath.Join(parent, "rj-1") || i.Dir != filepath.Join(parent, "rj-1", "data") {
		t.Fatalf("Create = %+v", i)
	}
	if entries, err := os.ReadDir(i.Dir); err != nil || len(entries) != 0 {
		t.Fatalf("data folder: %v entries, err %v; want an empty folder", len(entries), err)
	}
	entries, _ := os.ReadDir(i.Root)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"data", MarkFile}; !slices.Equal(names, want) {
		t.Fatalf("instance folder holds %q, want %q", names, want)
	}
	b, err := os.ReadFile(filepath.Join(i.Root, MarkFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["vigil_instance"] != 1.0 || m["job_id"] != "rj-1" || m["created_at"] == nil || m["pid"] != nil {
		t.Fatalf("mark = %s", b)
	}

	if _, err := Create(parent, "rj-1"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create again: %v, want fs.ErrExist", err)
	}
	got, err := Open(parent, "rj-1")
	if err != nil || *got != *i {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, i)
	}
	if _, err := Open(parent, "rj-2"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing instance: %v, want fs.ErrNotExist", err)
	}
	for _, id := range []string{"", ".", "..", "a/b", ".hidden", "../rj-1"} {
		if _, err := Create(parent, id); err == nil {
			t.Errorf("Create(%q) made an instance", id)
		}
		if _, err := Open(parent, id); err == nil {
			t.Errorf("Open(%q) opened an instance", id)
		}
	}
}

// TestUnmarkedFoldersAreLeftAlone checks that Open refuses, and Remove never
// deletes, a folder without a valid mark for its job.
func TestUnmarkedFoldersAreLeftAlone(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, root string)
	}{
		{"no mark", func(t *testing.T, root string) {}},
		{"mark of another job", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, MarkFile), `{"vigil_instance": 1, "job_id": "rj-other"}`)
		}},
		{"mark of another version", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, MarkFile), `{"vigil_instance": 2, "job_id": "rj-1"}`)
		}},
		{"not JSON", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, MarkFile), "vigil_instance: 1\njob_id: rj-1\n")
		}},
		{"mark is a symlink", func(t *testing.T, root string) {
			real := filepath.Join(t.TempDir(), "mark.json")
			writeFile(t, real, `{"vigil_instance": 1, "job_id": "rj-1"}`)
			if err := os.Symlink(real, filepath.Join(root, MarkFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"mark is a folder", func(t *testing.T, root string) {
			if err := os.Mkdir(filepath.Join(root, MarkFile), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := newParent(t)
			root := filepath.Join(parent, "rj-1")
			writeFile(t, filepath.Join(root, "data", "precious.txt"), "someone's data")
			tc.make(t, root)
			if _, err := Open(parent, "rj-1"); !errors.Is(err, ErrNoMark) {
				t.Fatalf("Open: %v, want ErrNoMark", err)
			}
			i := &Instance{JobID: "rj-1", Root: root, Dir: filepath.Join(root, "data")}
			if err := i.Remove(time.Second); !errors.Is(err, ErrNoMark) {
				t.Fatalf("Remove: %v, want ErrNoMark", err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "data", "precious.txt")); err != nil || string(b) != "someone's data" {
				t.Fatalf("Remove touched the folder: %q, %v", b, err)
			}
		})
	}
	t.Run("a file, not a folder", func(t *testing.T) {
		parent := newParent(t)
		writeFile(t, filepath.Join(parent, "rj-1"), "a file")
		if _, err := Open(parent, "rj-1"); !errors.Is(err, ErrNoMark) {
			t.Fatalf("Open: %v, want ErrNoMark", err)
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveIsIdempotent(t *testing.T) {
	parent := newParent(t)
	i, err := Create(parent, "rj-1")
	if err != nil {
		t.Fatal(err)
	}
	// Restored data may hold folders nobody may write to.
	writeFile(t, filepath.Join(i.Dir, "ro", "file.txt"), "x")
	if err := os.Chmod(filepath.Join(i.Dir, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := i.Remove(time.Second); err != nil {
			t.Fatal(err)
		}
		requireNoFolder(t, i.Root)
	}
	if _, err := Open(parent, "rj-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after Remove: %v, want fs.ErrNotExist", err)
	}
}

func TestStartServesHTTP(t *testing.T) {
	needProgram(t, "python3", "to run python3 -m http.server as the app")
	parent := newParent(t)
	i, err := Create(parent, "rj-web")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(i.Dir, "hello.txt"), "restored hello\n")
	res := config.Resource{
		Name: "web", Type: "app",
		Run: []string{"python3", "-m", "http.server", "{{.Port}}", "--bind", "{{.Host}}", "--directory", "{{.Dir}}"},
		Env: map[string]string{"PYTHONUNBUFFERED": "1"},
	}
	var log logLines
	p, err := i.Start(res, log.add)
	if err != nil {
		t.Fatal(err)
	}
	defer i.Remove(0)
	if p.Host() != "127.0.0.1" || p.Port() <= 0 || p.URL() != fmt.Sprintf("http://127.0.0.1:%d", p.Port()) {
		t.Fatalf("Host %q Port %d URL %q", p.Host(), p.Port(), p.URL())
	}

	// The mark names the running app before Start returns.
	m, err := readMark(i.Root, i.JobID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := readStat(p.PID())
	if err != nil {
		t.Fatal(err)
	}
	wantCmd := []string{"python3", "-m", "http.server", strconv.Itoa(p.Port()), "--bind", "127.0.0.1", "--directory", i.Dir}
	if m.PID != p.PID() || m.PGID != p.PID() || m.StartTicks != st.start || m.BootID != currentBootID() ||
		!slices.Equal(m.Command, wantCmd) || m.Env != EnvMarker+"="+i.Root {
		t.Fatalf("mark after Start = %+v; want pid %d, start %d, command %q", m, p.PID(), st.start, wantCmd)
	}
	if st.pgrp != p.PID() {
		t.Fatalf("app runs in process group %d, want its own (%d)", st.pgrp, p.PID())
	}

	body := getWhenUp(t, p, "/hello.txt")
	if body != "restored hello\n" {
		t.Fatalf("GET /hello.txt = %q", body)
	}
	log.waitFor(t, "app: Serving HTTP on 127.0.0.1 port "+strconv.Itoa(p.Port()))
	if line := log.waitFor(t, "app stderr: 127.0.0.1"); !strings.Contains(line, `"GET /hello.txt HTTP/1.1" 200`) {
		t.Fatalf("request log line = %q", line)
	}

	if _, err := i.Start(res, nil); err == nil {
		t.Fatal("a second Start in the same instance succeeded")
	}
	if err := i.Remove(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	requireGone(t, p.PID())
	requireNoFolder(t, i.Root)
	waitExited(t, p)
	if r := p.ExitReason(); r != "killed by signal 15" {
		t.Fatalf("ExitReason after Remove = %q, want killed by signal 15", r)
	}
}

// getWhenUp GETs path from the app once it answers.
func getWhenUp(t *testing.T, p *Process, path string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	client := http.DefaultClient
	if r := p.Reach(); r != nil {
		// An isolated app answers inside its own network only.
		client = &http.Client{Transport: &http.Transport{DialContext: r.Dial, DisableKeepAlives: true}}
	}
	for {
		resp, err := client.Get(p.URL() + path)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s, %v", path, resp.Status, err)
			}
			return string(b)
		}
		select {
		case <-p.Exited():
			t.Fatalf("app %s before answering; last lines %q", p.ExitReason(), p.LastLines())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("app did not answer in %s: %v", within, err)
		}
	}
}

func TestStartEnvironment(t *testing.T) {
	parent := newParent(t)
	i, err := Create(parent, "rj-env")
	if err != nil {
		t.Fatal(err)
	}
	res := shApp(`echo "greeting=$GREETING dir=$(pwd) arg={{.Dir}} port={{.Port}} instance=$VIGIL_INSTANCE fd3=$(test -e /proc/self/fd/3 && echo open || echo closed)"`)
	res.Env = map[string]string{"GREETING": "hello", EnvMarker: "ignored"}
	var log logLines
	p, err := i.Start(res, log.add)
	if err != nil {
		t.Fatal(err)
	}
	defer i.Remove(0)
	waitExited(t, p)
	want := fmt.Sprintf("app: greeting=hello dir=%s arg=%s port=%d instance=%s fd3=closed", i.Dir, i.Dir, p.Port(), i.Root)
	if got := log.all(); !slices.Equal(got, []string{want}) {
		t.Fatalf("log = %q\nwant %q", got, want)
	}
	if err := i.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailsForMissingProgram(t *testing.T) {
	parent := newParent(t)
	i, err := Create(parent, "rj-missing")
	if err != nil {
		t.Fatal(err)
	}
	res := config.Resource{Name: "app", Run: []string{"vigil-no-such-program-anywhere"}}
	if _, err := i.Start(res, nil); err == nil || !strings.Contains(err.Error(), "vigil-no-such-program-anywhere") {
		t.Fatalf("Start of a missing program: %v", err)
	}
	if err := i.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestAppThatExits checks what is known of an app that ends by itself.
func TestAppThatExits(t *testing.T) {
	var count25 []string
	for n := 6; n <= 25; n++ {
		count25 = append(count25, fmt.Sprintf("app: line %d", n))
	}
	tests := []struct {
		name, script, reason string
		last                 []string // in order; nil: any order of wantSet
		lastSet              []string
	}{
		{"status", "echo one; echo two >&2; exit 3", "exited with status 3", nil, []string{"app stderr: two", "app: one"}},
		{"signal", "echo bye; kill -9 $$", "killed by signal 9", []string{"app: bye"}, nil},
		{"many lines", `i=1; while [ $i -le 25 ]; do echo "line $i"; i=$((i+1)); done`, "exited with status 0", count25, nil},
		{"long line", `head -c 20000 /dev/zero | tr '\0' x; printf '\r\nno newline at the end'`, "exited with status 0",
			[]string{"app: " + strings.Repeat("x", maxLineLen) + " [line cut at 8192 bytes]", "app: no newline at the end"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := newParent(t)
			i, err := Create(parent, "rj-exit")
			if err != nil {
				t.Fatal(err)
			}
			var log logLines
			p, err := i.Start(shApp(tc.script), log.add)
			if err != nil {
				t.Fatal(err)
			}
			defer i.Remove(0)
			waitExited(t, p)
			if r := p.ExitReason(); r != tc.reason {
				t.Errorf("ExitReason = %q, want %q", r, tc.reason)
			}
			last := p.LastLines()
			if tc.last == nil {
				slices.Sort(last)
				if !slices.Equal(last, tc.lastSet) {
					t.Errorf("LastLines = %q, want %q in any order", last, tc.lastSet)
				}
			} else if !slices.Equal(last, tc.last) {
				t.Errorf("LastLines = %q, want %q", last, tc.last)
			}
			if got := log.all(); len(got) < len(last) || !slices.Equal(got[len(got)-len(last):], p.LastLines()) {
				t.Errorf("logLine got %q, LastLines %q", got, p.LastLines())
			}
			if err := i.Remove(time.Second); err != nil {
				t.Fatal(err)
			}
			requireGone(t, p.PID())
			requireNoFolder(t, i.Root)
		})
	}
}

// TestRemoveStopsEveryProcess starts apps whose processes are hard to stop
// and checks that none is left after Remove.
func TestRemoveStopsEveryProcess(t *testing.T) {
	needProgram(t, "setsid", "(util-linux) for an app process that leaves its group")
	tests := []struct {
		name   string
		script string
		ready  []string // line prefixes that end with a pid to check
		grace  time.Duration
		// minTime is a lower bound on how long Remove takes: a process that
		// ignores SIGTERM is only gone after the grace period.
		minTime time.Duration
	}{
		{
			name:   "background children",
			script: `sleep 1000 & echo "child $!"; sleep 1000`,
			ready:  []string{"app: child "},
			grace:  5 * time.Second,
		},
		{
			name: "grandchild that ignores SIGTERM",
			script: `sh -c 'trap "" TERM; echo "stubborn $$"; while :; do sleep 1000; done' &
wait`,
			ready:   []string{"app: stubborn "},
			grace:   300 * time.Millisecond,
			minTime: 300 * time.Millisecond,
		},
		{
			name:   "child that left the group",
			script: `setsid sh -c 'echo "escaped $$"; exec sleep 1000' & wait`,
			ready:  []string{"app: escaped "},
			grace:  5 * time.Second,
		},
		{
			name:   "leader that already exited",
			script: `sh -c 'echo "orphan $$"; exec sleep 1000' & echo "leader $$"`,
			ready:  []string{"app: orphan ", "app: leader "},
			grace:  5 * time.Second,
		},
		{
			// Only its cgroup still holds it: a daemon that left the
			// group, cleared its environment and the folder, as Redis
			// does when it daemonizes and sets its process title.
			name:   "daemon that left everything but its cgroup",
			script: `cd / && setsid env -i sh -c 'echo "daemon $$"; exec sleep 1000' & wait`,
			ready:  []string{"app: daemon "},
			grace:  5 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := newParent(t)
			i, err := Create(parent, "rj-stop")
			if err != nil {
				t.Fatal(err)
			}
			var log logLines
			p, err := i.Start(shApp(tc.script), log.add)
			if err != nil {
				t.Fatal(err)
			}
			defer i.Remove(0)
			pids := []int{p.PID()}
			for _, prefix := range tc.ready {
				pids = append(pids, pidIn(t, log.waitFor(t, prefix)))
			}
			began := time.Now()
			if err := i.Remove(tc.grace); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(began); took < tc.minTime {
				t.Errorf("Remove took %s, less than the grace period %s, though a process ignores SIGTERM", took, tc.minTime)
			}
			requireGone(t, p.PID())
			for _, pid := range pids {
				if alive(pid) {
					t.Errorf("process %d still runs", pid)
				}
			}
			requireNoFolder(t, i.Root)
			waitExited(t, p)
		})
	}
}

// TestAppRunsInItsOwnCgroup: an app is born in a cgroup of its own, named
// in the mark before it runs, which holds every process it forks and goes
// when the instance is removed.
func TestAppRunsInItsOwnCgroup(t *testing.T) {
	if ok, why := CgroupsAvailable(); !ok {
		t.Fatalf("this test needs a writable cgroup v2 hierarchy (vigil as root, Linux 5.14 or later): %s", why)
	}
	parent := newParent(t)
	i, err := Create(parent, "rj-cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var log logLines
	p, err := i.Start(shApp(`sleep 1000 & echo "child $!"; sleep 1000`), log.add)
	if err != nil {
		t.Fatal(err)
	}
	defer i.Remove(0)
	child := pidIn(t, log.waitFor(t, "app: child "))
	m, err := readMark(i.Root, i.JobID)
	if err != nil {
		t.Fatal(err)
	}
	procs, err := cgroupProcs(m.Cgroup)
	if err != nil || !slices.Contains(procs, p.PID()) || !slices.Contains(procs, child) {
		t.Fatalf("cgroup %q holds %v (%v), want the leader %d and its child %d", m.Cgroup, procs, err, p.PID(), child)
	}
	if !strings.HasPrefix(p.Confinement(), "in cgroup "+m.Cgroup) || p.Left() != 3 {
		t.Errorf("confinement %q, %d processes left; want in cgroup %s, 3 (shell, two sleeps)", p.Confinement(), p.Left(), m.Cgroup)
	}
	if err := i.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.Cgroup); !os.IsNotExist(err) {
		t.Errorf("cgroup %s is still there after Remove: %v", m.Cgroup, err)
	}
	waitExited(t, p)
}

// TestRemoveAfterRestart kills a vigil process (a stand-in: this test binary
// run as runKilledVigil) with SIGKILL while its app runs, and checks that a
// new process finds the orphaned app through the mark and stops all of it.
func TestRemoveAfterRestart(t *testing.T) {
	needProgram(t, "setsid", "(util-linux) for an app process that leaves its group")
	parent := newParent(t)
	killed := exec.Command(os.Args[0], "-test.run=^$")
	killed.Env = append(os.Environ(), helperEnv+"="+parent)
	killed.Stderr = os.Stderr
	out, err := killed.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killed.Process.Kill(); killed.Wait() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
	}()
	var jobID string
	var pgid int
	select {
	case line := <-lines:
		if _, err := fmt.Sscanf(line, "started %s %d", &jobID, &pgid); err != nil {
			t.Fatalf("helper said %q: %v", line, err)
		}
	case <-time.After(within):
		t.Fatal("the helper did not start its app")
	}
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.Wait()

	// The app lives on, orphaned: its leader and a child in the group, and
	// a child in a session of its own.
	m, err := readMark(filepath.Join(parent, jobID), jobID)
	if err != nil {
		t.Fatal(err)
	}
	var left appProcesses
	deadline := time.Now().Add(within)
	for len(livePIDs(pgid)) < 2 || len(left.loose) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the orphaned app never had its 3 processes: group %v, outside %v", livePIDs(pgid), left.loose)
		}
		time.Sleep(10 * time.Millisecond)
		if left, err = findApp(m, filepath.Join(parent, jobID)); err != nil {
			t.Fatal(err)
		}
	}
	pids := livePIDs(pgid)
	for _, p := range left.loose {
		pids = append(pids, p.pid)
	}

	i, err := Open(parent, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Remove(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	requireGone(t, pgid)
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d of the orphaned app still runs", pid)
		}
	}
	requireNoFolder(t, i.Root)
	if len(v1Mounts()) > 0 && len(m.LimitCgroups) == 0 && m.Cgroup != "" {
		t.Errorf("the mark names no cgroup v1 of the app's limits, though this host has v1 controllers %v", v1Mounts())
	}
	for _, dir := range append([]string{m.Cgroup}, m.LimitCgroups...) {
		if _, err := os.Stat(dir); dir != "" && !os.IsNotExist(err) {
			t.Errorf("cgroup %s of the orphaned app is still there: %v", dir, err)
		}
	}
}

func TestSweep(t *testing.T) {
	parent := newParent(t)
	kept, err := Create(parent, "rj-kept")
	if err != nil {
		t.Fatal(err)
	}
	keptApp, err := kept.Start(shApp("sleep 1000 & sleep 1000"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kept.Remove(0) })
	running, err := Create(parent, "rj-running")
	if err != nil {
		t.Fatal(err)
	}
	runningApp, err := running.Start(shApp("sleep 1000 & sleep 1000"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer running.Remove(0)
	if _, err := Create(parent, "rj-idle"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(parent, "someones-folder", "notes.txt"), "keep me")
	writeFile(t, filepath.Join(parent, "rj-other", MarkFile), `{"vigil_instance": 1, "job_id": "rj-else"}`)
	writeFile(t, filepath.Join(parent, "README"), "a file, not an instance")

	removed, err := Sweep(parent, func(jobID string) bool { return jobID == "rj-kept" }, 5*time.Second)
	if want := []string{"rj-idle", "rj-running"}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	var unmarked *UnmarkedError
	if !errors.As(err, &unmarked) || !errors.Is(err, ErrNoMark) {
		t.Fatalf("Sweep error %v, want an *UnmarkedError", err)
	}
	if want := []string{"rj-other", "someones-folder"}; !slices.Equal(unmarked.Names, want) {
		t.Errorf("unmarked %q, want %q", unmarked.Names, want)
	}
	if joined, ok := err.(interface{ Unwrap() []error }); !ok || len(joined.Unwrap()) != 1 {
		t.Errorf("Sweep error %v, want only the unmarked folders", err)
	}
	for _, name := range []string{"rj-idle", "rj-running"} {
		requireNoFolder(t, filepath.Join(parent, name))
	}
	requireGone(t, runningApp.PID())
	for _, path := range []string{"rj-kept/" + MarkFile, "someones-folder/notes.txt", "rj-other/" + MarkFile, "README"} {
		if _, err := os.Stat(filepath.Join(parent, path)); err != nil {
			t.Errorf("Sweep removed %s: %v", path, err)
		}
	}
	if !alive(keptApp.PID()) {
		t.Errorf("the kept instance's app was stopped: %s", keptApp.ExitReason())
	}

	if removed, err := Sweep(filepath.Join(parent, "missing"), func(string) bool { return false }, 0); removed != nil || err != nil {
		t.Fatalf("Sweep of a missing folder = %q, %v", removed, err)
	}
}

// TestRemoveChecksTheLeader fakes marks naming a process that is not the
// app's, as happens when a pid is reused after a restart, and checks that
// Remove does not signal it, yet does when the mark really names it.
func TestRemoveChecksTheLeader(t *testing.T) {
	tests := []struct {
		name     string
		fake     func(m *mark)
		signaled bool
	}{
		{"another start time", func(m *mark) { m.StartTicks-- }, false},
		{"another boot", func(m *mark) { m.BootID = "00000000-0000-0000-0000-000000000000" }, false},
		{"the very process", func(m *mark) {}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			other := exec.Command("sleep", "1000")
			other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := other.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { other.Process.Kill(); other.Wait() }()
			pid := other.Process.Pid
			st, err := readStat(pid)
			if err != nil {
				t.Fatal(err)
			}

			i, err := Create(newParent(t), "rj-reused")
			if err != nil {
				t.Fatal(err)
			}
			m, err := readMark(i.Root, i.JobID)
			if err != nil {
				t.Fatal(err)
			}
			m.BootID, m.PID, m.PGID, m.StartTicks = currentBootID(), pid, pid, st.start
			m.Command, m.Env = []string{"sleep", "1000"}, EnvMarker+"="+i.Root
			tc.fake(&m)
			if err := writeMark(i.Root, m); err != nil {
				t.Fatal(err)
			}

			if err := i.Remove(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			requireNoFolder(t, i.Root)
			// Remove returns only once every process it signalled is gone.
			if signaled := !alive(pid); signaled != tc.signaled {
				t.Fatalf("process %d signalled: %v, want %v", pid, signaled, tc.signaled)
			}
		})
	}
}

// TestGate checks that the gate runs the app only on "start", and that a
// vigil dying before it writes that (closing the pipe) runs nothing.
func TestGate(t *testing.T) {
	for _, send := range []string{"start\n", "", "stop\n"} {
		t.Run(strconv.Quote(send), func(t *testing.T) {
			ran := filepath.Join(t.TempDir(), "ran")
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("/bin/sh", "-c", gateScript, "vigil-app", "touch", ran)
			cmd.ExtraFiles = []*os.File{r}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r.Close()
			io.WriteString(w, send)
			w.Close()
			err = cmd.Wait()
			_, statErr := os.Stat(ran)
			if send == "start\n" {
				if err != nil || statErr != nil {
					t.Fatalf("gate opened: exit %v, app ran: %v", err, statErr)
				}
				return
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 125 || statErr == nil {
				t.Fatalf("gate closed: exit %v (want 125), app ran: %v", err, statErr == nil)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tail := " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21\n"
	tests := []struct {
		line string
		want procStat
		err  bool
	}{
		{"42 (sleep) S 1 42 42 0 -1 4194304 88 0 0 0 0 0 0 0 20 0 1 0 987654 2252800 128", procStat{42, 'S', 42, 987654}, false},
		{"7 (a) b (c)) Z 1 99 7 0 -1" + " 0 0 0 0 0 0 0 0 0 0 0 0 0 555" + tail, procStat{7, 'Z', 99, 555}, false},
		{"7 no parens", procStat{}, true},
		{"7 (short) S 1 2 3", procStat{}, true},
	}
	for _, tc := range tests {
		pid, _ := strconv.Atoi(strings.Fields(tc.line)[0])
		got, err := parseStat(pid, []byte(tc.line))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v, error %v", tc.line, got, err, tc.want, tc.err)
		}
	}
}

// TestUnfinishedCreate: a crash inside Create leaves only a staging folder,
// never a folder named after the job without its mark; Sweep and the next
// Create clean it up.
func TestUnfinishedCreate(t *testing.T) {
	parent := t.TempDir()
	staging := filepath.Join(parent, stagingPrefix+"rj-1")
	if err := os.MkdirAll(filepath.Join(staging, DataDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeMark(staging, mark{VigilInstance: markVersion, JobID: "rj-1", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(parent, "rj-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of an unfinished instance: %v, want not exist", err)
	}
	removed, err := Sweep(parent, func(string) bool { return false }, time.Second)
	if err != nil || len(removed) != 0 {
		t.Fatalf("Sweep: %v, %v", removed, err)
	}
	if _, err := os.Stat(staging); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the staging folder is still there: %v", err)
	}

	os.MkdirAll(filepath.Join(parent, stagingPrefix+"rj-2"), 0o700)
	i, err := Create(parent, "rj-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(parent, "rj-2"); err != nil {
		t.Fatalf("Open after Create over a leftover: %v", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 || entries[0].Name() != "rj-2" {
		t.Errorf("parent holds %v", entries)
	}
	if err := i.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestUnfinishedRemove: a crash inside Remove, after the folder was renamed
// with its mark inside, leaves a .deleting- folder, which Sweep deletes,
// also when the crash came half-way through deleting its files; a folder
// named after the job never loses its mark first.
func TestUnfinishedRemove(t *testing.T) {
	parent := t.TempDir()
	for _, id := range []string{"rj-1", "rj-2"} {
		i, err := Create(parent, id)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(i.Dir, "restored.txt"), []byte("data"), 0o644)
		if err := os.Rename(i.Root, filepath.Join(parent, deletingPrefix+id)); err != nil {
			t.Fatal(err)
		}
	}
	// rj-2's deletion got as far as its mark.
	os.Remove(filepath.Join(parent, deletingPrefix+"rj-2", MarkFile))
	theirs := filepath.Join(parent, "rj-theirs")
	os.MkdirAll(theirs, 0o700)

	_, err := Sweep(parent, func(string) bool { return false }, 0)
	if !errors.Is(err, ErrNoMark) {
		t.Errorf("sweep: %v, want only the unmarked folder reported", err)
	}
	for _, id := range []string{"rj-1", "rj-2"} {
		if _, err := os.Lstat(filepath.Join(parent, deletingPrefix+id)); !os.IsNotExist(err) {
			t.Errorf("the half-deleted instance %s is still there: %v", id, err)
		}
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Errorf("a folder vigil did not make was touched: %v", err)
	}

	// A Remove that completes leaves nothing, under either name.
	i, err := Create(parent, "rj-3")
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Remove(0); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rj-3", deletingPrefix + "rj-3"} {
		if _, err := os.Lstat(filepath.Join(parent, name)); !os.IsNotExist(err) {
			t.Errorf("%s is still there after Remove: %v", name, err)
		}
	}
}

// TestIsolatedApp: an app copy runs in a network of its own with only
// loopback, and private /tmp and /run: a "production" port on the host's
// loopback and a Unix socket under /run are out of its reach, a port the
// resource allows is forwarded to it, its own folder stays at its path
// (under /tmp here), and the probe still reaches it. With network: host it
// reaches production, as before isolation.
func TestIsolatedApp(t *testing.T) {
	needProgram(t, "python3", "to run the probing app")
	if err := canIsolate(); err != nil {
		t.Fatalf("this test needs network and mount namespaces (vigil as root on Linux): %v", err)
	}
	listen := func() (net.Listener, int) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("hello from the host\n"))
				c.Close()
			}
		}()
		return ln, ln.Addr().(*net.TCPAddr).Port
	}
	_, production := listen()
	_, allowed := listen()
	runDir, err := os.MkdirTemp("/run", "vigil-isolation-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	sock := filepath.Join(runDir, "db.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uln.Close() })

	probe := fmt.Sprintf(`import http.server, os, socket, sys
def tcp(port):
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
        return "reached"
    except OSError as e:
        return "refused"
def unix(path):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(path); s.close()
        return "reached"
    except OSError as e:
        return "refused"
print("production", tcp(%d), flush=True)
print("allowed", tcp(%d), flush=True)
print("socket", unix(%q), flush=True)
print("own folder", os.path.isfile(os.path.join(os.getcwd(), "probe.py")), flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
`, production, allowed, sock)

	for _, tc := range []struct {
		isolation config.Isolation
		want      []string
	}{
		{config.Isolation{Network: config.NetworkNone, Allow: []string{fmt.Sprintf("127.0.0.1:%d", allowed)}},
			[]string{"app: production refused", "app: allowed reached", "app: socket refused", "app: own folder True"}},
		{config.Isolation{Network: config.NetworkHost},
			[]string{"app: production reached", "app: socket reached", "app: own folder True"}},
	} {
		t.Run(tc.isolation.Network, func(t *testing.T) {
			parent := newParent(t)
			if tc.isolation.Isolated() {
				// Under /dev/shm, which the copy gets a private one of: its
				// folder is put back all the same.
				shm, err := os.MkdirTemp("/dev/shm", "vigil-isolation-test-")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(shm) })
				parent = shm
			}
			i, err := Create(parent, "rj-isolated")
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(i.Dir, "probe.py"), probe)
			writeFile(t, filepath.Join(i.Dir, "index.html"), "restored page\n")
			var log logLines
			p, err := i.Start(config.Resource{Name: "probe", Type: "app", Run: []string{"python3", "probe.py", "{{.Port}}"}, Isolation: tc.isolation}, log.add)
			if err != nil {
				t.Fatal(err)
			}
			defer i.Remove(0)
			for _, want := range tc.want {
				log.waitFor(t, want)
			}
			if body := getWhenUp(t, p, "/index.html"); body != "restored page\n" {
				t.Errorf("the probe got %q from the copy", body)
			}
			if isolated := p.Reach() != nil; isolated != tc.isolation.Isolated() || !strings.Contains(p.Confinement(), map[bool]string{true: "isolated", false: "host's network"}[isolated]) {
				t.Errorf("Reach %v, Confinement %q", p.Reach(), p.Confinement())
			}
			if err := i.Remove(time.Second); err != nil {
				t.Fatal(err)
			}
			waitExited(t, p)
		})
	}
}

// TestReachAfterExit dials into an isolated copy whose main process has
// exited and whose network namespace vigil has let go of: the dial says
// so, instead of entering through a closed fd (or one the number of which
// now belongs to another file).
func TestReachAfterExit(t *testing.T) {
	if err := canIsolate(); err != nil {
		t.Fatalf("this test needs network and mount namespaces (root on Linux): %v", err)
	}
	i, err := Create(newParent(t), "rj-reach-after-exit")
	if err != nil {
		t.Fatal(err)
	}
	defer i.Remove(0)
	p, err := i.Start(shApp("exit 0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	reach := p.Reach()
	if reach == nil {
		t.Fatal("an isolated copy has no Reach")
	}
	waitExited(t, p)
	// Whatever is opened now may get the namespace's old fd number.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = reach.Dial(context.Background(), "tcp", net.JoinHostPort(Host, strconv.Itoa(p.Port())))
	if !errors.Is(err, errNetnsClosed) {
		t.Errorf("dial after the copy exited: %v, want %v", err, errNetnsClosed)
	}
}
