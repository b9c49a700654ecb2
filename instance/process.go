package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-backup/vigil/config"
)

// Output handling.
const (
	// lastLines is how many lines of output a Process keeps for messages.
	lastLines = 20
	// maxLineLen cuts longer lines, so that an app writing without
	// newlines cannot grow vigil's memory.
	maxLineLen = 8 << 10
	// drainWait is how long Exited waits, once the app has exited, for the
	// output it wrote last. A child of the app can hold the pipes open, so
	// the wait cannot be for the end of the output.
	drainWait = 500 * time.Millisecond
)

// Host is the loopback address apps listen on.
const Host = "127.0.0.1"

// gateScript holds the app back until Start has recorded its pid in the
// mark: it runs the app (exec, same pid) only when "start" arrives on fd 3,
// and exits without running it when the pipe closes first because vigil
// died. The app does not inherit fd 3.
const gateScript = `IFS= read -r gate <&3 && [ "$gate" = start ] || exit 125
exec "$@" 3<&-`

// Process is an app running in an instance.
type Process struct {
	host   string
	port   int
	pid    int
	cmd    *exec.Cmd
	exited chan struct{}

	logMu   sync.Mutex // one logLine call at a time, in order
	logLine func(string)

	mu       sync.Mutex
	reason   string
	mainExit string // the main process's end, before its output is drained
	last     []string

	// root is the instance folder; cgroup the app's cgroup, or noCgroup
	// why it has none.
	root     string
	cgroup   string
	noCgroup error

	// limits are those set on the app; unenforced says which could not
	// be, and why.
	limits     []limit
	unenforced []string

	// ns is the app's network namespace when it is isolated (fd 0 when
	// not), and forwarders carry its allowed ports.
	ns         *netns
	isolated   bool
	forwarders []*forwarder
	closeOnce  sync.Once
}

// Start runs the app of res in the instance: its run template expanded with
// Dir i.Dir, Host 127.0.0.1 and a free loopback Port, in i.Dir, with the
// environment of vigil plus res.Env plus EnvMarker, in a process group of its
// own. Each line the app writes goes to logLine, prefixed "app: " (stdout) or
// "app stderr: " (stderr), one call at a time; logLine may be nil, and should
// return quickly, since the app blocks on output nobody reads. The mark
// records the app's pid, process group and start time before the app runs.
// An instance runs at most one app.
func (i *Instance) Start(res config.Resource, logLine func(string)) (*Process, error) {
	m, err := readMark(i.Root, i.JobID)
	if err != nil {
		return nil, fmt.Errorf("start app: %w", err)
	}
	if m.PID != 0 {
		return nil, fmt.Errorf("start app in %s: it already ran one (pid %d)", i.Root, m.PID)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args, err := res.ExpandRun(config.RunFields{Dir: i.Dir, Host: Host, Port: port})
	if err != nil {
		return nil, fmt.Errorf("start app %s: expand run: %w", res.Name, err)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("start app %s: run is empty: give the command that starts a copy of the app", res.Name)
	}
	program := args[0]
	if !strings.Contains(program, "/") {
		// Found here, as exec.Command would, so that a missing program
		// fails Start with a clear message instead of the gate's exit 127.
		if program, err = exec.LookPath(program); err != nil {
			return nil, fmt.Errorf("start app %s: %w: install it or give its full path in run", res.Name, err)
		}
	}
	env := fmt.Sprintf("%s=%s", EnvMarker, i.Root)
	gate := gateScript
	isolated := res.Isolation.Isolated()
	if isolated {
		if err := canIsolate(); err != nil {
			return nil, fmt.Errorf("start app %s: its copy is to run isolated (isolation: {network: none}, the default), which needs network and mount namespaces, and they cannot be made here (%v): run vigil as root on Linux, or set isolation: {network: host} on the resource to run its copies in the host's network, where they can reach production", res.Name, err)
		}
		gate = isolatedGate
	}
	// The cgroup is made and named in the mark before anything runs in
	// it, and the app is born inside it (clone3 with CLONE_INTO_CGROUP):
	// no fork of the app can ever be outside.
	cgroupFD := -1
	var (
		lims       []limit
		unenforced []string
	)
	cgroup, noCgroup := i.newCgroup()
	if noCgroup == nil {
		// Limits are set before the mark is written, which names the v1
		// cgroups they made: a crash in between leaves cgroups that no
		// mark names, which Sweep removes.
		var lerr error
		lims, unenforced, lerr = setLimits(cgroup, res.Limits)
		m.Cgroup = cgroup
		for _, l := range lims {
			if l.v1 {
				m.LimitCgroups = append(m.LimitCgroups, l.dir)
			}
		}
		err = writeMark(i.Root, m)
		if err == nil && lerr != nil {
			return nil, fmt.Errorf("start app %s: %w: vigil needs to write the cgroup's files; or remove limits from the resource and its plan", res.Name, lerr)
		}
		if err == nil {
			cgroupFD, err = unix.Open(cgroup, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("start app %s: enter cgroup %s: %w", res.Name, cgroup, err)
		}
		defer unix.Close(cgroupFD)
	} else {
		unenforced = unenforcedLimits(res.Limits, "the app has no cgroup")
	}

	gateR, gateW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start app: %w", err)
	}
	defer gateW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		gateR.Close()
		return nil, fmt.Errorf("start app: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		gateR.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("start app: %w", err)
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", gate, "vigil-app", program}, args[1:]...)...)
	cmd.Dir = i.Dir
	cmd.Env = os.Environ()
	for _, k := range slices.Sorted(maps.Keys(res.Env)) {
		cmd.Env = append(cmd.Env, k+"="+res.Env[k])
	}
	cmd.Env = append(cmd.Env, env) // last, so that it wins
	cmd.Stdout = outW
	cmd.Stderr = errW
	cmd.ExtraFiles = []*os.File{gateR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if isolated {
		cmd.SysProcAttr.Cloneflags = unix.CLONE_NEWNET | unix.CLONE_NEWNS
	}
	if cgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgroupFD
	}
	err = cmd.Start()
	// The app holds its own ends now; output ends when the app and every
	// child of it have closed theirs.
	gateR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start app %s: %w", res.Name, err)
	}

	p := &Process{host: Host, port: port, pid: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{}), logLine: logLine,
		root: i.Root, cgroup: cgroup, noCgroup: noCgroup, limits: lims, unenforced: unenforced}
	var readers sync.WaitGroup
	readers.Go(func() { p.read(outR, "app: ") })
	readers.Go(func() { p.read(errR, "app stderr: ") })
	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	go p.wait(drained)

	// The gate joins the v1 cgroups of its limits before it runs the
	// app, so every process of the app is born in them.
	err = join(p.pid, lims)
	if isolated && err == nil {
		err = p.isolate(res.Isolation.Allow)
	}
	var st procStat
	if err == nil {
		st, err = readStat(p.pid)
	}
	if err == nil {
		m.BootID = currentBootID()
		m.PID, m.PGID, m.StartTicks = p.pid, p.pid, st.start
		m.Command = args
		m.Env = env
		err = writeMark(i.Root, m)
	}
	if err != nil {
		// Closing the gate ends the shell before the app runs.
		gateW.Close()
		unix.Kill(-p.pid, unix.SIGKILL)
		<-p.exited // and with it the namespace and forwarders go (wait)
		return nil, fmt.Errorf("start app %s: record it in the mark and set up its isolation: %w", res.Name, err)
	}
	if _, err := io.WriteString(gateW, "start\n"); err != nil {
		<-p.exited
		return nil, fmt.Errorf("start app %s: %w (%s)", res.Name, err, p.ExitReason())
	}
	return p, nil
}

// Confinement says how the app's processes are kept track of, and what it
// can reach, for its job's log.
func (p *Process) Confinement() string {
	s := fmt.Sprintf("without a cgroup (%v): its processes are found by process group, environment, working directory and open files", p.noCgroup)
	if p.cgroup != "" {
		s = "in cgroup " + p.cgroup
	}
	v1 := false
	for i, l := range p.limits {
		if i == 0 {
			s += ", with a "
		} else {
			s += " and a "
		}
		s += l.describe()
		v1 = v1 || l.v1
	}
	if v1 {
		s += " (set in cgroup v1, where this host keeps the controllers)"
	}
	if len(p.unenforced) > 0 {
		s += ", not enforced: " + strings.Join(p.unenforced, "; ")
	}
	if !p.isolated {
		return s + ", in the host's network (isolation: {network: host})"
	}
	s += ", isolated: its own network with only loopback, private /tmp and /run"
	for i, f := range p.forwarders {
		if i == 0 {
			s += "; the host's "
		} else {
			s += ", "
		}
		s += f.ln.Addr().String()
	}
	if len(p.forwarders) > 0 {
		s += " forwarded to it (isolation.allow)"
	}
	return s
}

// isolate brings the new network namespace's loopback up and opens the
// allowed ports in it, before the app runs.
func (p *Process) isolate(allow []string) error {
	ns, err := openNetns(p.pid)
	if err != nil {
		return err
	}
	p.ns, p.isolated = ns, true
	if err := ns.loopbackUp(); err != nil {
		return err
	}
	for _, a := range allow {
		f, err := ns.forward(a)
		if err != nil {
			return err
		}
		p.forwarders = append(p.forwarders, f)
	}
	return nil
}

// closeNetns stops the forwarders and lets go of the namespace.
func (p *Process) closeNetns() {
	p.closeOnce.Do(func() {
		for _, f := range p.forwarders {
			f.close()
		}
		if p.isolated {
			p.ns.close()
		}
	})
}

// Reach gets to an isolated app from inside its network: dial it, and
// start commands (command validators) there.
type Reach interface {
	Dial(ctx context.Context, network, address string) (net.Conn, error)
	Start(cmd *exec.Cmd) error
}

// Reach is how validators get to an isolated app; nil for one in the
// host's network.
func (p *Process) Reach() Reach {
	if !p.isolated {
		return nil
	}
	return reach{p}
}

type reach struct{ p *Process }

func (r reach) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	return r.p.ns.dial(ctx, network, address)
}

func (r reach) Start(cmd *exec.Cmd) error { return r.p.ns.start(cmd) }

// Left counts the app's processes that are still alive: after its leader
// exited, what it left running (a daemon it forked).
func (p *Process) Left() int {
	if p.cgroup != "" {
		pids, _ := cgroupProcs(p.cgroup)
		return len(pids)
	}
	m, err := readMark(p.root, filepath.Base(p.root))
	if err != nil {
		return 0
	}
	a, _ := findApp(m, p.root)
	n := len(a.loose)
	if a.group {
		n++
	}
	return n
}

// LimitsHit says which of its limits the copy ran into, "" when none (or
// none is set): processes the kernel killed for memory, forks refused.
func (p *Process) LimitsHit() string { return hits(p.limits) }

// freePort returns a loopback port that nothing listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// wait reaps the app's leader and records why it ended.
func (p *Process) wait(drained <-chan struct{}) {
	err := p.cmd.Wait()
	reason := exitReason(p.cmd.ProcessState, err)
	p.mu.Lock()
	p.mainExit = reason
	p.mu.Unlock()
	select {
	case <-drained:
	case <-time.After(drainWait):
	}
	p.mu.Lock()
	p.reason = reason
	p.mu.Unlock()
	// Its allowed ports close with it: what it left behind reaches
	// nothing through vigil.
	p.closeNetns()
	close(p.exited)
}

func exitReason(ps *os.ProcessState, err error) string {
	if ps == nil {
		return fmt.Sprintf("wait failed: %v", err)
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return ps.String()
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %d", int(ws.Signal()))
	default:
		return fmt.Sprintf("exited with status %d", ws.ExitStatus())
	}
}

// read passes each line of r to the log until r ends.
func (p *Process) read(r *os.File, prefix string) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 4096)
	var line []byte
	cut := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLineLen {
			chunk = chunk[:max(0, maxLineLen-len(line))]
			cut = true
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) > 0 || cut {
			s := strings.TrimRight(string(line), "\r\n")
			if cut {
				s += " [line cut at " + strconv.Itoa(maxLineLen) + " bytes]"
			}
			p.line(prefix + strings.ToValidUTF8(s, "\uFFFD"))
		}
		line, cut = line[:0], false
		if err != nil {
			return
		}
	}
}

func (p *Process) line(s string) {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	p.mu.Lock()
	if len(p.last) == lastLines {
		p.last = append(p.last[:0], p.last[1:]...)
	}
	p.last = append(p.last, s)
	p.mu.Unlock()
	if p.logLine != nil {
		p.logLine(s)
	}
}

// Host returns the loopback address the app was told to listen on.
func (p *Process) Host() string { return p.host }

// Port returns the port the app was told to listen on.
func (p *Process) Port() int { return p.port }

// URL returns the app's base URL, such as http://127.0.0.1:41234.
func (p *Process) URL() string { return "http://" + net.JoinHostPort(p.host, strconv.Itoa(p.port)) }

// PID returns the pid of the app's leader, which is also its process group id.
func (p *Process) PID() int { return p.pid }

// Exited is closed once the app's leader process has exited and been
// reaped; its children may still run until Remove.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitReason says how the leader ended, such as "exited with status 1" or
// "killed by signal 9"; it is "" while the leader runs.
func (p *Process) ExitReason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reason
}

// MainExited reports whether the app's main process has ended, and how,
// at once: Exited waits for the app's last output too, which a daemon it
// left behind may hold back.
func (p *Process) MainExited() (reason string, exited bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mainExit, p.mainExit != ""
}

// LastLines returns the last lines of output, as passed to logLine, oldest
// first.
func (p *Process) LastLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.last)
}
