// Package mount shows a recovery point as a folder without restoring it:
// the snapshot is mounted read-only through FUSE, served from the vault
// as it is read, and a kernel overlayfs on top takes the writes of the app
// that runs on it into a folder of its own. A restore test that mounts
// its copy so starts the app as soon as the mounts are up, and reads from
// the vault only what the app reads.
//
// # Finding mounts again
//
// Every mount this package makes names itself in /proc/self/mountinfo:
// the FUSE mount has type fuse.vigil, the overlay has source
// vigil-instant. A vigil that was killed leaves them behind, the FUSE one
// dead (ENOTCONN); UnmountUnder finds them by those names under a folder
// and takes them down, so that a folder is never deleted with a mount
// still in it.
//
// This package is Linux only.
package mount

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	kopiafs "github.com/kopia/kopia/fs"
	"golang.org/x/sys/unix"
)

// Names in /proc/self/mountinfo.
const (
	// FuseType is the type of the read-only FUSE mount of a snapshot.
	FuseType = "fuse.vigil"
	// FuseSource is its source.
	FuseSource = "vigil-snapshot"
	// OverlaySource is the source of the overlay above it.
	OverlaySource = "vigil-instant"
)

// ErrUnavailable is what Instant and Available return on a machine where
// instant copies cannot be made (no /dev/fuse, no overlayfs, no right to
// mount): nothing was mounted, and a full restore does instead.
var ErrUnavailable = errors.New("instant copies are not available here")

// Folders are where an instant copy lives, every one an existing empty
// folder on the same file system but for Lower.
type Folders struct {
	// Lower is where the snapshot is mounted read-only.
	Lower string
	// Upper takes what is written to Merged; Work is overlayfs's own.
	Upper, Work string
	// Merged is the copy as the app sees it.
	Merged string
}

// Options are how a mount reads the vault.
type Options struct {
	// Hold holds the vault for the duration of one read; it returns the
	// release. Nil holds nothing.
	Hold func(context.Context) (func(), error)
	// Log gets a line for each read the vault failed.
	Log func(format string, args ...any)
}

// Mount is an instant copy, mounted.
type Mount struct {
	folders Folders
	server  *fuse.Server
	done    chan struct{}
}

// EnvOff, set to "off" in vigil's environment, makes it behave as on a
// machine where instant copies cannot be made (for tests of the fall-back
// to a full restore).
const EnvOff = "VIGIL_INSTANT"

// Available says why instant copies cannot be made here, nil when they
// can: /dev/fuse must open and the kernel must know overlayfs.
func Available() error {
	if os.Getenv(EnvOff) == "off" {
		return fmt.Errorf("%w: %s=off is set", ErrUnavailable, EnvOff)
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: open /dev/fuse: %v (load the fuse module, or give vigil's container the device)", ErrUnavailable, err)
	}
	f.Close()
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return fmt.Errorf("%w: read /proc/filesystems: %v", ErrUnavailable, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(strings.TrimPrefix(line, "nodev")) == "overlay" {
			return nil
		}
	}
	return fmt.Errorf("%w: the kernel has no overlayfs (modprobe overlay)", ErrUnavailable)
}

// cacheFor is how long the kernel keeps names and attributes: a snapshot
// never changes.
const cacheFor = time.Hour

// Instant mounts root read-only at f.Lower and an overlay of it at
// f.Merged. ctx carries what reads of the vault log (not their
// deadline: the mount outlives the call). An error wrapping
// ErrUnavailable means this machine cannot mount; either way, a failed
// Instant leaves nothing mounted.
func Instant(ctx context.Context, root kopiafs.Directory, f Folders, opts Options) (*Mount, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	for _, p := range []string{f.Lower, f.Upper, f.Work} {
		// overlayfs's options are a comma-separated list of key=value.
		if strings.ContainsAny(p, ",:\\=") {
			return nil, fmt.Errorf("%w: the folder %s has a character overlayfs's options cannot carry (, : \\ =): move data_dir to a plain path", ErrUnavailable, p)
		}
	}
	t := &tree{ctx: context.WithoutCancel(ctx), hold: opts.Hold, log: opts.Log}
	if t.hold == nil {
		t.hold = func(context.Context) (func(), error) { return func() {}, nil }
	}
	if t.log == nil {
		t.log = func(string, ...any) {}
	}
	rootNode, _ := newNode(t, root)
	ttl := cacheFor
	server, err := gofs.Mount(f.Lower, rootNode, &gofs.Options{
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &ttl,
		MountOptions: fuse.MountOptions{
			FsName:               FuseSource,
			Name:                 "vigil",
			Options:              []string{"ro", "default_permissions"},
			DirectMountStrict:    true,
			MaxReadAhead:         1 << 20,
			EnableSymlinkCaching: true,
			DisableXAttrs:        true,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: mount the recovery point with FUSE at %s: %v", ErrUnavailable, f.Lower, err)
	}
	m := &Mount{folders: f, server: server, done: make(chan struct{})}
	go func() {
		server.Wait()
		close(m.done)
	}()
	// The overlay's root is its upper folder, not the snapshot's root:
	// it gets the root's mode, owner and times, as a restore would.
	if err := likeRoot(f.Upper, root); err != nil {
		m.Close()
		return nil, err
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", f.Lower, f.Upper, f.Work)
	if err := unix.Mount(OverlaySource, f.Merged, "overlay", 0, data); err != nil {
		m.Close()
		return nil, fmt.Errorf("%w: mount overlayfs at %s over the recovery point: %v", ErrUnavailable, f.Merged, err)
	}
	return m, nil
}

// likeRoot gives folder dir the mode, owner and times of root.
func likeRoot(dir string, root kopiafs.Entry) error {
	var a fuse.Attr
	fill(&a, root)
	if err := os.Lchown(dir, int(a.Uid), int(a.Gid)); err != nil && !errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("set the owner of %s: %w", dir, err)
	}
	if err := unix.Chmod(dir, a.Mode&0o7777); err != nil {
		return fmt.Errorf("set the mode of %s: %w", dir, err)
	}
	if err := os.Chtimes(dir, root.ModTime(), root.ModTime()); err != nil {
		return fmt.Errorf("set the times of %s: %w", dir, err)
	}
	return nil
}

// Close unmounts the copy (lazily where something still uses it) and
// waits for the FUSE server to end. It may be called more than once,
// and after UnmountUnder took the mounts down.
func (m *Mount) Close() error {
	err := errors.Join(unmount(m.folders.Merged), unmount(m.folders.Lower))
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		// A lazy unmount ends the server only once the last user has
		// let go; it serves on meanwhile.
	}
	return err
}

// unmount unmounts path, lazily (MNT_DETACH) if it is busy. A path that
// is not a mount point is not an error.
func unmount(path string) error {
	err := unix.Unmount(path, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(path, unix.MNT_DETACH)
	}
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", path, err)
}

// Info is one line of /proc/self/mountinfo.
type Info struct {
	Point, Type, Source string
}

// Vigil's reports whether this package made the mount.
func (i Info) Vigil() bool {
	return i.Type == FuseType || i.Type == "overlay" && i.Source == OverlaySource
}

// Under lists the mounts at dir or below it, deepest first.
func Under(dir string) ([]Info, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var found []Info
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root point options [optional…] - type source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, after := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(after) < 2 {
			continue
		}
		point := unescape(fields[4])
		if point != dir && !strings.HasPrefix(point, dir+"/") {
			continue
		}
		found = append(found, Info{Point: point, Type: after[0], Source: unescape(after[1])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	// Deepest first, and of two mounts at one point the later first.
	slices.Reverse(found)
	slices.SortStableFunc(found, func(a, b Info) int { return strings.Count(b.Point, "/") - strings.Count(a.Point, "/") })
	return found, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	return len(s) == 3 && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7'
}

// unmountMu keeps UnmountUnder calls from racing each other over one
// folder's mounts.
var unmountMu sync.Mutex

// UnmountUnder takes down every mount of this package at dir or below
// it, lazily where something still uses it, and returns the mount points
// it took down. It fails when a mount is left there afterwards (one it did not
// make, which it leaves alone): dir must not be deleted then, since
// deleting through a mount deletes what the mount shows.
func UnmountUnder(dir string) ([]string, error) {
	unmountMu.Lock()
	defer unmountMu.Unlock()
	mounts, err := Under(dir)
	if err != nil {
		return nil, err
	}
	// Overlays first: each holds the FUSE mount below it.
	slices.SortStableFunc(mounts, func(a, b Info) int {
		return boolInt(a.Type == FuseType) - boolInt(b.Type == FuseType)
	})
	var done []string
	var errs []error
	for _, m := range mounts {
		if !m.Vigil() {
			continue
		}
		if err := unmount(m.Point); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, m.Point)
	}
	left, err := Under(dir)
	if err != nil {
		return done, err
	}
	if len(left) > 0 {
		var points []string
		for _, m := range left {
			points = append(points, fmt.Sprintf("%s (%s from %s)", m.Point, m.Type, m.Source))
		}
		errs = append(errs, fmt.Errorf("%s still has %d mounts in it: %s; it is not deleted while they are, so that nothing is deleted through them: unmount them (umount -l PATH), and vigil deletes the folder on its next sweep",
			dir, len(left), strings.Join(points, ", ")))
	}
	return done, errors.Join(errs...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
