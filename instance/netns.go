package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// # Isolation
//
// An isolated app starts in a network namespace of its own, with only
// loopback up, and a mount namespace in which /tmp, /run and /dev/shm are
// private and empty but for the instance folder (and the app's program,
// should it live there), which stays at its path: it cannot reach the
// production services its restored configuration names, over TCP or
// through their Unix sockets in /run. vigil holds the namespace open and
// reaches into it from a locked OS thread: validators dial the copy from
// inside (Dial), command validators are started inside (Start), and each
// allowed host port is forwarded from the copy's loopback to the host's.

// netns is a network namespace, held open by fd until close. Validators
// may still be entering it when the app's main process exits and its
// Process lets go of it: the lock makes them find it closed, never enter
// through an fd number that was closed, or since reused for another file.
type netns struct {
	mu     sync.RWMutex
	fd     int
	closed bool
}

// errNetnsClosed is what entering a copy's network says once the copy's
// main process has exited.
var errNetnsClosed = errors.New("the copy's network namespace is closed: its main process has exited")

// openNetns opens the network namespace of process pid.
func openNetns(pid int) (*netns, error) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the copy's network namespace: %w", err)
	}
	return &netns{fd: fd}, nil
}

func (n *netns) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		unix.Close(n.fd)
		n.closed = true
	}
}

// enter moves the calling (locked) OS thread into the namespace. Only the
// entering holds the lock: once in, the thread stays in the namespace
// whatever becomes of the fd.
func (n *netns) enter() error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return errNetnsClosed
	}
	return unix.Setns(n.fd, unix.CLONE_NEWNET)
}

// do runs fn on an OS thread that is in the namespace meanwhile: what fn
// creates there (a socket, a child process) stays in it.
func (n *netns) do(fn func() error) error {
	runtime.LockOSThread()
	home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open vigil's own network namespace: %w", err)
	}
	defer unix.Close(home)
	if err := n.enter(); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter the copy's network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, and so ends with this goroutine:
		// nothing else ever runs in the copy's network by mistake.
		return errors.Join(ferr, fmt.Errorf("leave the copy's network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// loopbackUp brings the namespace's lo up: a new network namespace has it
// down.
func (n *netns) loopbackUp() error {
	return n.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("read the flags of lo: %w", err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("bring lo up: %w", err)
		}
		return nil
	})
}

// dial connects to address inside the namespace.
func (n *netns) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var conn net.Conn
	err := n.do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// start starts cmd inside the namespace (and in vigil's mounts).
func (n *netns) start(cmd *exec.Cmd) error { return n.do(cmd.Start) }

// forwarder passes connections to an address on the copy's loopback on to
// the same address on the host's.
type forwarder struct {
	ln    net.Listener
	conns sync.WaitGroup
	mu    sync.Mutex
	open  map[net.Conn]bool
}

// forward listens on address inside the namespace.
func (n *netns) forward(address string) (*forwarder, error) {
	f := &forwarder{open: map[net.Conn]bool{}}
	err := n.do(func() error {
		var err error
		f.ln, err = net.Listen("tcp", address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open %s inside the copy (isolation.allow): %w", address, err)
	}
	go f.serve(address)
	return f, nil
}

func (f *forwarder) serve(address string) {
	for {
		in, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		f.conns.Go(func() {
			defer in.Close()
			out, err := net.Dial("tcp", address)
			if err != nil {
				return
			}
			defer out.Close()
			if !f.track(in, out) {
				return
			}
			defer f.untrack(in, out)
			done := make(chan struct{}, 2)
			go func() { io.Copy(out, in); done <- struct{}{} }()
			go func() { io.Copy(in, out); done <- struct{}{} }()
			<-done
		})
	}
}

func (f *forwarder) track(conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == nil {
		return false // closed meanwhile
	}
	for _, c := range conns {
		f.open[c] = true
	}
	return true
}

func (f *forwarder) untrack(conns ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range conns {
		delete(f.open, c)
	}
}

// close stops forwarding and ends the connections it carries.
func (f *forwarder) close() {
	f.ln.Close()
	f.mu.Lock()
	for c := range f.open {
		c.Close()
	}
	f.open = nil
	f.mu.Unlock()
	f.conns.Wait()
}

// isolatedGate is the gate of an isolated app: once let through, it makes
// the mount namespace's /tmp, /run and /dev/shm private and empty, puts the
// instance folder ($VIGIL_INSTANCE) and the app's program ($1) back at
// their paths, and runs the app there. The two are held open on fds 4 and
// 5 while their paths are covered, and bound back from those fds, so they
// may lie anywhere, under /dev/shm too. Exit status 124 means the mounts
// failed.
const isolatedGate = `IFS= read -r gate <&3 && [ "$gate" = start ] || exit 125
fail() { echo "vigil: cannot make the copy's private /tmp and /run: $1" >&2; exit 124; }
exec 4<"$VIGIL_INSTANCE" 5<"$1" || fail "open $VIGIL_INSTANCE and $1"
mount --make-rprivate / || fail "mount --make-rprivate /"
mount -t tmpfs -o mode=1777 vigil-tmp /tmp || fail "mount /tmp"
mount -t tmpfs -o mode=755 vigil-run /run || fail "mount /run"
mount -t tmpfs -o mode=1777 vigil-shm /dev/shm || fail "mount /dev/shm"
mkdir -p "$VIGIL_INSTANCE" && mount -c --rbind /proc/self/fd/4 "$VIGIL_INSTANCE" || fail "put back $VIGIL_INSTANCE"
{ [ -e "$1" ] || { mkdir -p "${1%/*}" && touch "$1"; }; } && mount -c --bind /proc/self/fd/5 "$1" || fail "put back $1"
exec 4<&- 5<&-
cd "$VIGIL_INSTANCE/data" || fail "cd $VIGIL_INSTANCE/data"
exec "$@" 3<&-`

// namespacesAvailable reports whether this process can make network and
// mount namespaces, by trying once.
var namespaces struct {
	once sync.Once
	err  error
}

// EnvNoNamespaces, set to "off" in vigil's environment, makes it behave as
// on a host where namespaces cannot be made (for tests of that path).
const EnvNoNamespaces = "VIGIL_NAMESPACES"

func canIsolate() error {
	namespaces.once.Do(func() {
		if os.Getenv(EnvNoNamespaces) == "off" {
			namespaces.err = errors.New(EnvNoNamespaces + "=off is set")
			return
		}
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET | unix.CLONE_NEWNS}
		if err := cmd.Run(); err != nil {
			namespaces.err = err
		}
		if _, err := exec.LookPath("mount"); err != nil {
			namespaces.err = errors.Join(namespaces.err, errors.New("mount (util-linux) is not on PATH"))
		}
		if _, err := os.Stat("/dev/shm"); err != nil {
			namespaces.err = errors.Join(namespaces.err, errors.New("there is no /dev/shm"))
		}
	})
	return namespaces.err
}

// DialIn connects to address inside the network of process pid, as a
// probe reaches an isolated copy (a person uses nsenter --net=/proc/PID/ns/net).
func DialIn(ctx context.Context, pid int, network, address string) (net.Conn, error) {
	ns, err := openNetns(pid)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	return ns.dial(ctx, network, address)
}
