package instance

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/units"
)

// # Limits
//
// A copy's memory and number of processes are capped by the kernel's
// memory and pids controllers: in the app's own cgroup v2 where the v2
// hierarchy has them, and otherwise in the cgroup v1 hierarchy that holds
// them (hybrid hosts keep memory and pids there), in a cgroup of the same
// name, <v1 mount>/vigil/<scope>/<job>, which the app joins before it runs
// and which the mark records, so that clean-up after a crash finds it.
// memory caps RAM and swap together. A limit whose controller can be used
// nowhere (or an app without a cgroup at all) is not enforced, and the
// job's log says so: the copy runs, as a container runtime does, rather
// than failing a restore test over the host.

// controller is a cgroup controller a limit needs.
type controller string

const (
	memoryController controller = "memory"
	pidsController   controller = "pids"
)

// limit is one limit set on a copy: where its controller's files are.
type limit struct {
	ctl controller
	dir string // the cgroup whose files set and report it
	v1  bool
	max int64
}

// v1Mounts maps each controller mounted in a cgroup v1 hierarchy to where.
var v1Mounts = sync.OnceValue(func() map[controller]string {
	mounts := map[controller]string{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return mounts
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 35 25 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, prefields := strings.Fields(post), strings.Fields(pre)
		if !ok || len(fields) < 3 || fields[0] != "cgroup" || len(prefields) < 5 {
			continue
		}
		for _, opt := range strings.Split(fields[2], ",") {
			if c := controller(opt); c == memoryController || c == pidsController {
				mounts[c] = prefields[4]
			}
		}
	}
	return mounts
})

// v1Scopes are the folders of the v1 cgroups of the copies under parent
// (absolute), one per controller mounted in v1.
func v1Scopes(parent string) []string {
	var scopes []string
	for _, ctl := range []controller{memoryController, pidsController} {
		if mount, ok := v1Mounts()[ctl]; ok {
			scopes = append(scopes, cgroupScope(filepath.Join(mount, "vigil"), parent))
		}
	}
	return scopes
}

// hasV2Controller reports whether the cgroup v2 hierarchy offers ctl.
func hasV2Controller(mount string, ctl controller) bool {
	b, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
	return err == nil && slices.Contains(strings.Fields(string(b)), string(ctl))
}

// setLimits sets lim on the app of cgroup v2 cgroup (which nothing runs in
// yet): in it where v2 has the controller, else in a v1 cgroup it makes.
// It returns what it set, and why any limit is not enforced.
func setLimits(cgroup string, lim config.Limits) (set []limit, unenforced []string, err error) {
	mount := filepath.Dir(filepath.Dir(filepath.Dir(cgroup))) // <mount>/vigil/<scope>/<job>
	for _, l := range wanted(lim) {
		switch v1mount, inV1 := v1Mounts()[l.ctl]; {
		case hasV2Controller(mount, l.ctl):
			l.dir = cgroup
			err = enableV2(mount, cgroup, l.ctl)
		case inV1:
			rel, _ := filepath.Rel(mount, cgroup)
			l.dir, l.v1 = filepath.Join(v1mount, rel), true
			err = os.MkdirAll(l.dir, 0o755)
		default:
			unenforced = append(unenforced, fmt.Sprintf("%s (the kernel's %s controller is in neither cgroup v2 at %s nor a cgroup v1 hierarchy)", l.describe(), l.ctl, mount))
			continue
		}
		if err == nil {
			set = append(set, l) // recorded before it is written: clean-up removes it
			err = l.write()
		}
		if err != nil {
			return set, unenforced, fmt.Errorf("set the %s: %w", l.describe(), err)
		}
	}
	return set, unenforced, nil
}

// enableV2 turns controller ctl on for the children of each cgroup from
// the hierarchy's root down to cgroup's parent, none of which holds a
// process (the root may, and is exempt).
func enableV2(mount, cgroup string, ctl controller) error {
	var chain []string // root first
	for dir := filepath.Dir(cgroup); strings.HasPrefix(dir, mount); dir = filepath.Dir(dir) {
		chain = append([]string{dir}, chain...)
		if dir == mount {
			break
		}
	}
	for _, dir := range chain {
		file := filepath.Join(dir, "cgroup.subtree_control")
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if slices.Contains(strings.Fields(string(b)), string(ctl)) {
			continue
		}
		if err := os.WriteFile(file, []byte("+"+string(ctl)), 0); err != nil {
			return fmt.Errorf("enable the %s controller in %s: %w", ctl, dir, err)
		}
	}
	return nil
}

// write sets the limit in its cgroup's files.
func (l limit) write() error {
	n := strconv.FormatInt(l.max, 10)
	files := map[controller][][2]string{
		// memory.swap.max (v2) and memory.memsw.limit_in_bytes (v1, RAM
		// plus swap, no smaller than RAM alone) exist only where swap is
		// accounted; with them the limit covers swap too.
		memoryController: {{"memory.max", n}, {"memory.swap.max", "0"}},
		pidsController:   {{"pids.max", n}},
	}
	if l.v1 {
		files[memoryController] = [][2]string{{"memory.limit_in_bytes", n}, {"memory.memsw.limit_in_bytes", n}}
	}
	for i, f := range files[l.ctl] {
		err := os.WriteFile(filepath.Join(l.dir, f[0]), []byte(f[1]), 0)
		if i > 0 && errors.Is(err, fs.ErrNotExist) {
			continue // the swap file, where swap is not accounted
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// describe names the limit: "memory limit of 64.0 MiB".
func (l limit) describe() string {
	if l.ctl == memoryController {
		return "memory limit of " + units.Bytes(l.max)
	}
	return "limit of " + processes(l.max)
}

func processes(n int64) string {
	if n == 1 {
		return "1 process"
	}
	return strconv.FormatInt(n, 10) + " processes"
}

// join puts process pid (the gate, before it runs the app) into the v1
// cgroups of lim; v2 limits apply to the cgroup it was born in.
func join(pid int, lim []limit) error {
	for _, l := range lim {
		if !l.v1 {
			continue
		}
		if err := os.WriteFile(filepath.Join(l.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("put the app in cgroup %s for its %s: %w", l.dir, l.describe(), err)
		}
	}
	return nil
}

// hits says which limits the copy ran into, "" when none: how many of its
// processes the kernel killed for memory, and how often a fork failed at
// the pids limit.
func hits(lim []limit) string {
	var said []string
	for _, l := range lim {
		switch l.ctl {
		case memoryController:
			file := "memory.events"
			if l.v1 {
				file = "memory.oom_control"
			}
			if n := counter(filepath.Join(l.dir, file), "oom_kill"); n > 0 {
				said = append(said, fmt.Sprintf("the kernel killed %s of the copy for going over its %s", processes(n), l.describe()))
			}
		case pidsController:
			if n := counter(filepath.Join(l.dir, "pids.events"), "max"); n > 0 {
				said = append(said, fmt.Sprintf("the copy was refused a new process %s at its %s", units.Plural(int(n), "time"), l.describe()))
			}
		}
	}
	if len(said) == 0 {
		return ""
	}
	return strings.Join(said, "; ") + ": raise limits on the resource or its plan if the app needs more"
}

// counter reads the value of key in a flat-keyed cgroup file ("max 3").
func counter(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// removeV1 ends what is left in v1 cgroup dir (the v2 cgroup of the same
// app is empty by now, so normally nothing) and removes it, and its scope
// when it was the last. v1 has no cgroup.kill: each process is killed.
func removeV1(dir string) error {
	deadline := time.Now().Add(killWait)
	for {
		pids, err := cgroupProcs(dir)
		if err != nil {
			return fmt.Errorf("list the processes of cgroup %s: %w", dir, err)
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still holds processes %s after SIGKILL: look at them with ps -o pid,stat,cmd -p %s; vigil retries on its next start", dir, joinPids(pids), joinPids(pids))
		}
		time.Sleep(pollInterval)
	}
	if err := rmdirBusy(dir); err != nil {
		return err
	}
	unix.Rmdir(filepath.Dir(dir))
	return nil
}

// rmdirBusy removes cgroup dir, waiting out EBUSY while its last processes
// finish exiting.
func rmdirBusy(dir string) error {
	for deadline := time.Now().Add(killWait); ; time.Sleep(pollInterval) {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
	}
}

// unenforcedLimits names each limit in lim, which cannot be set because of
// why.
func unenforcedLimits(lim config.Limits, why string) []string {
	var s []string
	for _, l := range wanted(lim) {
		s = append(s, l.describe()+" ("+why+")")
	}
	return s
}

// wanted lists the limits lim sets, their cgroups not chosen yet.
func wanted(lim config.Limits) []limit {
	var ls []limit
	if lim.Memory > 0 {
		ls = append(ls, limit{ctl: memoryController, max: int64(lim.Memory)})
	}
	if lim.PIDs > 0 {
		ls = append(ls, limit{ctl: pidsController, max: int64(lim.PIDs)})
	}
	return ls
}

// LimitsAvailable reports whether the memory and pids limits of copies
// can be enforced here and, when one cannot, why not.
func LimitsAvailable() (bool, string) {
	base, why := cgroupsDir()
	if base == "" {
		return false, "apps run without cgroups: " + why
	}
	var missing []string
	for _, c := range []controller{memoryController, pidsController} {
		if _, inV1 := v1Mounts()[c]; !inV1 && !hasV2Controller(filepath.Dir(base), c) {
			missing = append(missing, string(c))
		}
	}
	if len(missing) > 0 {
		return false, fmt.Sprintf("the kernel's %s controller is in neither cgroup v2 (%s) nor a cgroup v1 hierarchy", strings.Join(missing, " and "), filepath.Dir(base))
	}
	return true, ""
}
