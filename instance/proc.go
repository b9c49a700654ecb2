package instance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// How Remove waits for an app's processes.
const (
	pollInterval = 50 * time.Millisecond
	// killWait bounds the wait after SIGKILL; only a process stuck in the
	// kernel (an unreachable NFS mount, say) takes longer to die.
	killWait = 10 * time.Second
)

// procStat is what Remove needs from /proc/<pid>/stat.
type procStat struct {
	pid   int
	state byte   // field 3: R, S, D, Z, ...
	pgrp  int    // field 5
	start uint64 // field 22: start time in clock ticks since boot
}

// readStat reads /proc/<pid>/stat. The error wraps fs.ErrNotExist when there
// is no such process.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(pid, b)
}

func parseStat(pid int, b []byte) (procStat, error) {
	// The command name, field 2, is in parentheses and may itself hold
	// spaces and parentheses: the fields that follow start after the last ')'.
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 20 { // fields 3 to 22
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields after the command name, want at least 20", pid, len(f))
	}
	pgrp, err := strconv.Atoi(f[5-3])
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: process group: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[22-3], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: start time: %w", pid, err)
	}
	return procStat{pid: pid, state: f[0][0], pgrp: pgrp, start: start}, nil
}

// alive reports whether the process still runs. A zombie has exited and
// only waits for its parent to collect its status; when its parent has died,
// that may be never (not every init reaps), so zombies never count. A
// thread-group leader that called pthread_exit shows as a zombie while its
// other threads run, so it counts while it has other threads.
func (s procStat) alive() bool {
	switch s.state {
	case 'Z':
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(s.pid) + "/task")
		return err == nil && len(tasks) > 1
	case 'X', 'x':
		return false
	}
	return true
}

var (
	bootIDOnce sync.Once
	bootID     string
)

// currentBootID returns the kernel's id of this boot, "" if it is unknown.
func currentBootID() string {
	bootIDOnce.Do(func() {
		b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err == nil {
			bootID = strings.TrimSpace(string(b))
		}
	})
	return bootID
}

// appProcesses is what is left of an app.
type appProcesses struct {
	group bool       // a live process is in the app's own process group
	loose []procStat // live processes outside the group that carry the app's EnvMarker
}

func (a appProcesses) none() bool { return !a.group && len(a.loose) == 0 }

func (a appProcesses) String() string {
	var s []string
	if a.group {
		s = append(s, "process group")
	}
	for _, p := range a.loose {
		s = append(s, "pid "+strconv.Itoa(p.pid))
	}
	return strings.Join(s, ", ")
}

// findApp looks through /proc for the live processes of the app that m
// describes, in the instance folder root. Without a cgroup, a process
// whose working directory or open files are inside root is the app's too:
// daemons that setsid and rewrite their environment (as Redis, nginx and
// PostgreSQL do when they set their process title) still keep those.
func findApp(m mark, root string) (appProcesses, error) {
	var found appProcesses
	if m.PID <= 0 || m.PGID <= 0 {
		return found, nil // never started
	}
	if m.BootID != "" && m.BootID != currentBootID() {
		return found, nil // the machine rebooted since: nothing of the app survived
	}
	// Only while the leader is gone or is still the app's own (same start
	// time) does the group id name the app's group; a different process
	// under the leader's pid means the old group ended and the pid was
	// handed out again.
	groupIsApp := true
	if leader, err := readStat(m.PID); err == nil && leader.start != m.StartTicks {
		groupIsApp = false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return found, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		st, err := readStat(pid)
		if err != nil || !st.alive() || st.start < m.StartTicks {
			continue // gone, dead, or older than the app and so not its
		}
		if groupIsApp && st.pgrp == m.PGID {
			found.group = true
			continue
		}
		if m.Env != "" && hasEnv(pid, m.Env) || m.Cgroup == "" && usesFolder(pid, root) {
			found.loose = append(found.loose, st)
		}
	}
	return found, nil
}

// usesFolder reports whether process pid works in root or holds a file
// inside it open.
func usesFolder(pid int, root string) bool {
	if root == "" {
		return false
	}
	proc := "/proc/" + strconv.Itoa(pid)
	inside := func(link string) bool {
		target, err := os.Readlink(link)
		return err == nil && (target == root || strings.HasPrefix(target, root+"/"))
	}
	if inside(proc + "/cwd") {
		return true
	}
	fds, err := os.ReadDir(proc + "/fd")
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if inside(proc + "/fd/" + fd.Name()) {
			return true
		}
	}
	return false
}

// hasEnv reports whether process pid started with the exact entry kv in its
// environment.
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil || len(b) == 0 {
		return false
	}
	b = append([]byte{0}, b...)
	return bytes.Contains(b, []byte("\x00"+kv+"\x00")) || bytes.HasSuffix(b, []byte("\x00"+kv))
}

// signalApp sends sig to what is left of an app.
func signalApp(m mark, a appProcesses, sig syscall.Signal) error {
	var errs []error
	if a.group {
		if err := unix.Kill(-m.PGID, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("signal process group %d: %w", m.PGID, err))
		}
	}
	for _, p := range a.loose {
		// Only the very process that was found: its pid could have been
		// reused since.
		if now, err := readStat(p.pid); err != nil || now.start != p.start {
			continue
		}
		if err := unix.Kill(p.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("signal pid %d: %w", p.pid, err))
		}
	}
	return errors.Join(errs...)
}

// stopApp ends the app that m describes, in the instance folder root:
// its cgroup first, if it has one; then, SIGTERM, up to grace to exit, and
// SIGKILL for whatever is still found by process group, EnvMarker, or (with
// no cgroup) its use of root. It returns once none of its processes is
// alive.
func stopApp(m mark, root string, grace time.Duration) error {
	if m.Cgroup != "" {
		if err := stopCgroup(m.Cgroup, grace); err != nil {
			return err
		}
		for _, dir := range m.LimitCgroups {
			if err := removeV1(dir); err != nil {
				return err
			}
		}
		grace = 0 // what was in the cgroup had its grace
	}
	a, err := findApp(m, root)
	if err != nil || a.none() {
		return err
	}
	if err := signalApp(m, a, unix.SIGTERM); err != nil {
		return fmt.Errorf("stop app: %w", err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		time.Sleep(min(pollInterval, time.Until(deadline)))
		if a, err = findApp(m, root); err != nil || a.none() {
			return err
		}
	}
	// Anything the app forks meanwhile is found by the next look and
	// killed too.
	deadline = time.Now().Add(killWait)
	for {
		if err := signalApp(m, a, unix.SIGKILL); err != nil {
			return fmt.Errorf("kill app: %w", err)
		}
		time.Sleep(pollInterval)
		if a, err = findApp(m, root); err != nil || a.none() {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("app still running %s after SIGKILL (%s): look at it with ps -eo pid,pgid,stat,cmd; vigil retries on its next start",
				killWait, a)
		}
	}
}
