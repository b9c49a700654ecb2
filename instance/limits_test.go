package instance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/config"
)

// needLimits fails the test where neither cgroup v2 nor v1 has the
// controllers it needs, which this project's CI host has (in v1).
func needLimits(t *testing.T) {
	t.Helper()
	if ok, why := CgroupsAvailable(); !ok {
		t.Fatalf("this test needs a writable cgroup v2 hierarchy: %s", why)
	}
	base, _ := cgroupsDir()
	mount := filepath.Dir(base)
	for _, c := range []controller{memoryController, pidsController} {
		if _, inV1 := v1Mounts()[c]; !inV1 && !hasV2Controller(mount, c) {
			t.Fatalf("this test needs the %s controller in cgroup v2 (%s) or v1", c, mount)
		}
	}
}

// TestMemoryLimit starts an app that allocates more than its memory limit:
// the kernel kills it, and LimitsHit says so.
func TestMemoryLimit(t *testing.T) {
	needLimits(t)
	needProgram(t, "python3", "for an app that allocates memory")
	i, err := Create(newParent(t), "rj-memory")
	if err != nil {
		t.Fatal(err)
	}
	defer i.Remove(0)
	res := config.Resource{Name: "hog", Type: "app", Limits: config.Limits{Memory: 64 << 20},
		Run: []string{"python3", "-c", "import time; b = bytearray(256 << 20); print('allocated', flush=True); time.sleep(100)"}}
	p, err := i.Start(res, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Confinement(), "with a memory limit of 64.0 MiB") {
		t.Errorf("confinement %q does not name the memory limit", p.Confinement())
	}
	waitExited(t, p)
	if got := p.ExitReason(); got != "killed by signal 9" {
		t.Errorf("exit %q, want killed by signal 9 (the OOM killer); output %q", got, p.LastLines())
	}
	if hit := p.LimitsHit(); !strings.Contains(hit, "the kernel killed 1 process of the copy for going over its memory limit of 64.0 MiB") {
		t.Errorf("LimitsHit = %q", hit)
	}
	requireLimitCgroupsGone(t, i)
}

// TestPIDsLimit starts an app that forks more processes than its limit
// allows: the forks past it fail, LimitsHit counts them, and Remove ends
// what did start.
func TestPIDsLimit(t *testing.T) {
	needLimits(t)
	i, err := Create(newParent(t), "rj-pids")
	if err != nil {
		t.Fatal(err)
	}
	defer i.Remove(0)
	var log logLines
	needProgram(t, "python3", "for an app that forks until it cannot")
	res := config.Resource{Name: "forker", Type: "app", Limits: config.Limits{PIDs: 8}, Run: []string{"python3", "-c", `
import os, time
n = 0
for _ in range(20):
    try:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
        n += 1
    except OSError:
        pass
print("started", n, flush=True)
time.sleep(1000)`}}
	p, err := i.Start(res, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if line := log.waitFor(t, "app: started"); line != "app: started 7" {
		t.Errorf("the app says %q, want 7 children started: itself and 7 make its limit of 8", line)
	}
	if n := p.Left(); n != 8 {
		t.Errorf("%d processes in the copy's cgroup, want its limit of 8", n)
	}
	if hit := p.LimitsHit(); !strings.Contains(hit, "the copy was refused a new process") || !strings.Contains(hit, "at its limit of 8 processes") {
		t.Errorf("LimitsHit = %q", hit)
	}
	requireLimitCgroupsGone(t, i)
	waitExited(t, p)
}

// requireLimitCgroupsGone removes i and checks that every cgroup its mark
// names went with it.
func requireLimitCgroupsGone(t *testing.T, i *Instance) {
	t.Helper()
	m, err := readMark(i.Root, i.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
	for _, dir := range append([]string{m.Cgroup}, m.LimitCgroups...) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("cgroup %s is still there after Remove: %v", dir, err)
		}
	}
}

// TestSweepLimitCgroups leaves a cgroup of limits (v1 on hybrid hosts)
// that no mark names, with a process in it, as a vigil that died between
// making it and writing the mark would: Sweep kills the process and
// removes the cgroup.
func TestSweepLimitCgroups(t *testing.T) {
	needLimits(t)
	parent := newParent(t)
	abs, _ := filepath.Abs(parent)
	// Where the controllers are in v2, a copy's limits live in its own v2
	// cgroup, and that is the one a crash leaves.
	base, _ := cgroupsDir()
	scopes := append(v1Scopes(abs), cgroupScope(base, abs))
	dir := filepath.Join(scopes[0], "rj-lost")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill() })
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(sleeper.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Sweep(parent, func(string) bool { return false }, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cgroup %s is still there after Sweep: %v", dir, err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("the process in %s still runs after Sweep", dir)
	}
}
