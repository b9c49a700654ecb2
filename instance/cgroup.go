package instance

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// # Cgroups
//
// Where cgroup v2 can be written (vigil runs as root on a host with a
// cgroup2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid
// hosts), an app starts inside a cgroup of its own, created before the app
// runs and named in the mark: <mount>/vigil/<scope>/<job id>, where scope
// stands for the instances folder, so that two vigils on one host never
// touch each other's copies. A cgroup holds every process the app ever
// forks, daemons that setsid and rename themselves included, and it
// survives vigil's death: Remove kills it whole with cgroup.kill, waits
// until it is empty and removes it, whichever vigil process made it.
//
// Where cgroups cannot be written, apps are tracked as before by process
// group and EnvMarker, and also by any process whose working directory or
// open files are inside the instance folder; CgroupsAvailable says why.

// EnvNoCgroups, set to "off" in vigil's environment, makes it track apps
// without cgroups even where it could use them (for tests of that path).
const EnvNoCgroups = "VIGIL_CGROUPS"

var cgroupBase struct {
	once sync.Once
	dir  string // <cgroup2 mount>/vigil
	why  string // why there is none
}

// CgroupsAvailable reports whether apps run in cgroups of their own and,
// when they do not, why not (for a log line that says what that costs).
func CgroupsAvailable() (bool, string) {
	base, why := cgroupsDir()
	return base != "", why
}

func cgroupsDir() (dir, why string) {
	cgroupBase.once.Do(func() {
		cgroupBase.dir, cgroupBase.why = findCgroupsDir()
	})
	return cgroupBase.dir, cgroupBase.why
}

func findCgroupsDir() (dir, why string) {
	if os.Getenv(EnvNoCgroups) == "off" {
		return "", EnvNoCgroups + "=off is set"
	}
	mount, err := cgroup2Mount()
	if err != nil {
		return "", err.Error()
	}
	dir = filepath.Join(mount, "vigil")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Sprintf("cannot create %s: %v", dir, err)
	}
	// cgroup.kill exists in child groups only, so the root's says nothing.
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		return "", fmt.Sprintf("%s has no cgroup.kill (Linux 5.14 or later has it)", dir)
	}
	return dir, ""
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mounts: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		if fields := strings.Fields(post); len(fields) > 0 && fields[0] == "cgroup2" {
			if f := strings.Fields(pre); len(f) >= 5 {
				return f[4], nil
			}
		}
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}

// CgroupScope is the folder of the cgroups of the copies in the instances
// folder parent ("" where copies get no cgroups): where to look for them.
func CgroupScope(parent string) string {
	base, _ := cgroupsDir()
	abs, err := filepath.Abs(parent)
	if base == "" || err != nil {
		return ""
	}
	return cgroupScope(base, abs)
}

// cgroupScope is the folder of the cgroups of the instances under parent
// (an absolute path).
func cgroupScope(base, parent string) string {
	sum := sha256.Sum256([]byte(parent))
	return filepath.Join(base, "i-"+hex.EncodeToString(sum[:6]))
}

// newCgroup creates the cgroup of instance i, empty.
func (i *Instance) newCgroup() (string, error) {
	base, why := cgroupsDir()
	if base == "" {
		return "", errors.New(why)
	}
	dir := filepath.Join(cgroupScope(base, filepath.Dir(i.Root)), i.JobID)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("create the cgroup folder: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	return dir, nil
}

// cgroupProcs lists the processes in cgroup dir; a cgroup that is gone
// has none.
func cgroupProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// stopCgroup ends every process in cgroup dir: SIGTERM, up to grace to
// exit, then cgroup.kill; it returns once the cgroup is empty and removed.
func stopCgroup(dir string, grace time.Duration) error {
	pids, err := cgroupProcs(dir)
	if err != nil {
		return fmt.Errorf("list the processes of cgroup %s: %w", dir, err)
	}
	if len(pids) > 0 {
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGTERM) // one that is gone already is fine
		}
		if !waitEmpty(dir, grace) {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
				return fmt.Errorf("kill cgroup %s: %w", dir, err)
			}
			if !waitEmpty(dir, killWait) {
				pids, _ := cgroupProcs(dir)
				return fmt.Errorf("cgroup %s still holds %d processes %s after cgroup.kill: look at them with ps -o pid,stat,cmd -p %s; vigil retries on its next start",
					dir, len(pids), killWait, joinPids(pids))
			}
		}
	}
	// The last processes may still be exiting (tearing down a network
	// namespace takes a while): until they are gone, rmdir says EBUSY.
	if err := rmdirBusy(dir); err != nil {
		return err
	}
	// The scope goes with its last cgroup; while another copy's is in it,
	// this fails, and that is fine.
	unix.Rmdir(filepath.Dir(dir))
	return nil
}

// waitEmpty waits up to d for cgroup dir to hold no process, not even
// one that is exiting.
func waitEmpty(dir string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		pids, err := cgroupProcs(dir)
		if err == nil && len(pids) == 0 && !populated(dir) {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(min(pollInterval, time.Until(deadline)))
	}
}

// populated reports whether cgroup.events of dir says it still has
// processes.
func populated(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	return err == nil && strings.Contains(string(b), "populated 1")
}

func joinPids(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// sweepCgroups removes the cgroups of instances under parent that no
// instance folder names any more: vigil died between creating one and
// recording it, or after removing the folder. Their processes, if any,
// are killed: only vigil puts processes there.
func sweepCgroups(parent string, live func(jobID string) bool) error {
	base, _ := cgroupsDir()
	if base == "" {
		return nil
	}
	// v2 first: what a v1 cgroup of the limits holds is in the v2 one too.
	var errs []error
	for i, scope := range append([]string{cgroupScope(base, parent)}, v1Scopes(parent)...) {
		entries, err := os.ReadDir(scope)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("list cgroups: %w", err))
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || live(e.Name()) {
				continue
			}
			dir := filepath.Join(scope, e.Name())
			if i == 0 {
				errs = append(errs, stopCgroup(dir, 0))
			} else {
				errs = append(errs, removeV1(dir))
			}
		}
	}
	return errors.Join(errs...)
}
