// Package instance makes, runs and deletes the throwaway copies ("instances")
// that restore tests restore recovery points into, and guarantees that every
// instance vigil makes is deleted again, even after vigil is killed with
// SIGKILL, without ever deleting or signalling anything vigil did not make.
//
// # The mark
//
// An instance lives in parent/<jobID>/: the restored data in data/ and a mark
// file, vigil-instance.json, written atomically before anything else is put in
// the folder or started. The mark is the only proof that vigil made the
// folder: Open, Remove and Sweep refuse to touch a folder whose mark is
// missing, unreadable or names another job, because vigil's data folder may
// hold anything a person copied there, and deleting it would be deleting
// their data. The mark is rewritten, before the app may run, with everything
// needed to find the app again after a restart: its pid, process group, start
// time and the boot it ran in.
//
// # Process groups
//
// An app is rarely one process: a shell script starts a server, a server
// forks workers. Start puts the app in a process group of its own, so that
// Remove can signal the whole tree at once with kill(-pgid) and wait until no
// process of the group is left, SIGKILLing whatever ignored SIGTERM for
// longer than the grace period. A process that leaves the group (setsid, as
// daemons do) is still found: every process of an app carries
// VIGIL_INSTANCE=<instance folder> in its environment, and Remove signals any
// process that carries it, one by one.
//
// The app itself is not run until the mark records its pid: Start runs it
// through a small shell gate that waits on a pipe, and execs the app (same
// pid) only after the mark is on disk. If vigil dies before that, the pipe
// closes and the gate exits without running anything, so there is never a
// running app that the mark does not name.
//
// # Start times
//
// After a restart, the pid in a mark may belong to someone else: pids are
// reused. The mark therefore holds the leader's start time in clock ticks
// since boot (field 22 of /proc/<pid>/stat) and the boot id; a process is
// taken as the app's leader only if both match. The kernel never hands out a
// pid that is still in use as a process group id, so a leader pid that now
// belongs to a different process proves the old group is gone entirely, and
// the group is then never signalled. Processes are only counted as the app's
// if they started no earlier than its leader.
//
// This package is Linux only: it reads /proc.
package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-backup/vigil/mount"
)

// Names inside an instance folder.
const (
	MarkFile = "vigil-instance.json"
	DataDir  = "data"
)

// EnvMarker is the environment variable that every process of an app carries,
// set to the instance folder; Remove finds processes that left the app's
// process group by it.
const EnvMarker = "VIGIL_INSTANCE"

// markVersion is the value of "vigil_instance" in marks this package writes.
const markVersion = 1

// maxMarkSize bounds what is read of a mark file, which is a few hundred bytes.
const maxMarkSize = 64 << 10

// ErrNoMark means a folder has no valid mark for the job asked about: vigil
// did not make it, so it must be left alone.
var ErrNoMark = errors.New("no vigil instance mark")

// Instance is a folder that vigil made to restore a recovery point into.
type Instance struct {
	JobID string
	Root  string // parent/<jobID>, absolute
	Dir   string // parent/<jobID>/data: the restored data, empty after Create
}

// mark is the content of MarkFile.
type mark struct {
	VigilInstance int       `json:"vigil_instance"`
	JobID         string    `json:"job_id"`
	CreatedAt     time.Time `json:"created_at"`

	// Set once an app is started, before it runs.
	BootID     string   `json:"boot_id,omitempty"`
	PID        int      `json:"pid,omitempty"`
	PGID       int      `json:"pgid,omitempty"`
	StartTicks uint64   `json:"start_ticks,omitempty"` // /proc/<pid>/stat field 22
	Command    []string `json:"command,omitempty"`
	Env        string   `json:"env,omitempty"` // EnvMarker=<Root>, as in the app's environment
	// Cgroup is the app's own cgroup, recorded before the app starts;
	// empty where cgroups cannot be used.
	Cgroup string `json:"cgroup,omitempty"`
	// LimitCgroups are the cgroup v1 cgroups the app joined for its
	// limits (hybrid hosts), recorded before it runs.
	LimitCgroups []string `json:"limit_cgroups,omitempty"`
}

func newInstance(parent, jobID string) (*Instance, error) {
	if err := checkJobID(jobID); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(parent)
	if err != nil {
		return nil, fmt.Errorf("resolve instances folder: %w", err)
	}
	// Absolute, because the app runs inside Dir and gets Dir as {{.Dir}}:
	// a relative path would point somewhere else from there.
	root := filepath.Join(abs, jobID)
	return &Instance{JobID: jobID, Root: root, Dir: filepath.Join(root, DataDir)}, nil
}

// checkJobID refuses job ids that are not one plain folder name.
func checkJobID(jobID string) error {
	if jobID == "" || jobID == "." || jobID == ".." || strings.HasPrefix(jobID, ".") ||
		strings.ContainsAny(jobID, "/\x00") {
		return fmt.Errorf("instance job id %q is not a plain folder name", jobID)
	}
	return nil
}

// Create makes the instance folder of jobID under parent, with its mark and
// an empty data folder. The folder must not exist yet; parent is made if
// needed.
func Create(parent, jobID string) (*Instance, error) {
	i, err := newInstance(parent, jobID)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(i.Root), 0o700); err != nil {
		return nil, fmt.Errorf("create instances folder: %w", err)
	}
	if _, err := os.Lstat(i.Root); err == nil {
		return nil, fmt.Errorf("create instance: %s: %w", i.Root, fs.ErrExist)
	}
	// The folder is built under a staging name and renamed into place
	// with its mark already inside, so that no crash can leave a folder
	// named after the job without its mark. A crash before the rename
	// leaves only a staging folder, which Sweep removes.
	staging := filepath.Join(filepath.Dir(i.Root), stagingPrefix+jobID)
	os.RemoveAll(staging) // a leftover of an earlier crash: a mark at most
	if err := os.Mkdir(staging, 0o700); err != nil {
		return nil, fmt.Errorf("create instance: %w", err)
	}
	m := mark{VigilInstance: markVersion, JobID: jobID, CreatedAt: time.Now().UTC()}
	if err := writeMark(staging, m); err != nil {
		os.RemoveAll(staging)
		return nil, fmt.Errorf("create instance: %w", err)
	}
	if err := os.Mkdir(filepath.Join(staging, DataDir), 0o700); err != nil {
		os.RemoveAll(staging)
		return nil, fmt.Errorf("create instance data folder: %w", err)
	}
	if err := os.Rename(staging, i.Root); err != nil {
		os.RemoveAll(staging)
		return nil, fmt.Errorf("create instance: %w", err)
	}
	if err := syncDir(filepath.Dir(i.Root)); err != nil {
		return nil, fmt.Errorf("create instance: %w", err)
	}
	return i, nil
}

// Folders of an instant copy in an instance: the recovery point mounted
// read-only in instant/lower, and the copy's writes in instant/upper,
// with Dir the overlay of the two.
const InstantDir = "instant"

// Instant returns the folders of an instant copy in the instance.
func (i *Instance) Instant() mount.Folders {
	d := filepath.Join(i.Root, InstantDir)
	return mount.Folders{Lower: filepath.Join(d, "lower"), Upper: filepath.Join(d, "upper"), Work: filepath.Join(d, "work"), Merged: i.Dir}
}

// Unmount takes down the mounts of instant copies that a vigil killed
// before its clean-up left under parent: their FUSE server died with it.
// It returns the mount points it took down.
func Unmount(parent string) ([]string, error) {
	return mount.UnmountUnder(parent)
}

// stagingPrefix names a folder being created: it holds a mark and an empty
// data folder at most, never restored data or a process.
const stagingPrefix = ".creating-"

// Open returns the instance of jobID under parent after checking its mark.
// The error wraps os.ErrNotExist when there is no such folder, and ErrNoMark
// when the folder has no valid mark for jobID: such a folder was not made by
// vigil and must not be touched.
func Open(parent, jobID string) (*Instance, error) {
	i, err := newInstance(parent, jobID)
	if err != nil {
		return nil, err
	}
	if _, err := readMark(i.Root, jobID); err != nil {
		return nil, fmt.Errorf("open instance: %w", err)
	}
	return i, nil
}

// Remove stops the instance's app and deletes its folder. It sends SIGTERM to
// the app's cgroup, or without one to its process group and to any process
// carrying the instance's EnvMarker or using its folder, waits up to grace
// for them to exit, kills what is left, and waits until no process of the
// app is alive. It then checks the mark again, renames the folder, mark
// inside, to .deleting-<job id> and deletes that: an interrupted Remove
// leaves the marked folder, which the next Remove deletes, or the renamed
// one, which Sweep deletes.
//
// It works in the process that started the app and in a later vigil process
// alike, from what the mark records. Removing an instance that is already
// gone is not an error; a folder without a valid mark is never touched
// (ErrNoMark). Remove must not run at the same time as Start on the same
// instance.
func (i *Instance) Remove(grace time.Duration) error {
	m, err := readMark(i.Root, i.JobID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove instance: %w", err)
	}
	if err := stopApp(m, i.Root, grace); err != nil {
		return fmt.Errorf("remove instance %s: %w", i.Root, err)
	}
	// An instant copy's mounts go before its folder: deleting through
	// a mount deletes what it shows.
	if _, err := mount.UnmountUnder(i.Root); err != nil {
		return fmt.Errorf("remove instance: %w", err)
	}
	if _, err := readMark(i.Root, i.JobID); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove instance: %w", err)
	}
	// The folder leaves its name, mark inside, in one rename: from then on
	// its name says it is vigil's to delete, so a crash at any point of
	// the deletion leaves either the marked folder or a folder that Sweep
	// deletes, never an unmarked folder named after the job.
	doomed := filepath.Join(filepath.Dir(i.Root), deletingPrefix+i.JobID)
	if err := os.Rename(i.Root, doomed); err != nil {
		return fmt.Errorf("remove instance %s: %w", i.Root, err)
	}
	if err := removeTree(doomed); err != nil {
		return fmt.Errorf("remove instance %s (now %s): %w", i.Root, doomed, err)
	}
	return nil
}

// deletingPrefix names an instance folder being deleted: vigil renamed it
// so, with its mark inside, once its app had stopped.
const deletingPrefix = ".deleting-"

// removeTree is os.RemoveAll that also deletes restored folders whose mode
// forbids writing (0555 is common in backups), which os.RemoveAll cannot
// empty unless running as root.
func removeTree(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}

// removeUnmounted removes folder path with remove once no mount is left
// in it.
func removeUnmounted(path string, remove func(string) error) error {
	if _, err := mount.UnmountUnder(path); err != nil {
		return err
	}
	return remove(path)
}

// UnmarkedError lists the folders under an instances folder that have no
// valid mark: Sweep leaves them alone, since vigil did not make them (or was
// stopped in the instant between making a folder and marking it).
type UnmarkedError struct {
	Parent string
	Names  []string
}

func (e *UnmarkedError) Error() string {
	return fmt.Sprintf("left alone %d folders in %s that have no vigil instance mark (%s): vigil did not make them; look at them and delete them by hand if nobody needs them",
		len(e.Names), e.Parent, strings.Join(e.Names, ", "))
}

// Unwrap makes errors.Is(err, ErrNoMark) true.
func (e *UnmarkedError) Unwrap() error { return ErrNoMark }

// Sweep removes every instance under parent whose job keep reports false, as
// Remove does, and returns the job ids removed. Folders without a valid mark
// are left alone and listed in an *UnmarkedError among the returned errors.
// A missing parent holds no instances.
func Sweep(parent string, keep func(jobID string) bool, grace time.Duration) (removed []string, err error) {
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sweep instances: %w", err)
	}
	var (
		unmarked []string
		errs     []error
		doomed   []*Instance
	)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if strings.HasPrefix(e.Name(), stagingPrefix) && checkJobID(strings.TrimPrefix(e.Name(), stagingPrefix)) == nil {
			// Create died before the rename: nothing was restored or
			// started there.
			if err := removeUnmounted(filepath.Join(parent, e.Name()), os.RemoveAll); err != nil {
				errs = append(errs, fmt.Errorf("remove unfinished instance folder: %w", err))
			}
			continue
		}
		if strings.HasPrefix(e.Name(), deletingPrefix) && checkJobID(strings.TrimPrefix(e.Name(), deletingPrefix)) == nil {
			// Remove died half-way: its app was stopped already.
			if err := removeUnmounted(filepath.Join(parent, e.Name()), removeTree); err != nil {
				errs = append(errs, fmt.Errorf("finish removing instance folder: %w", err))
			}
			continue
		}
		i, err := Open(parent, e.Name())
		switch {
		case errors.Is(err, ErrNoMark) || checkJobID(e.Name()) != nil:
			unmarked = append(unmarked, e.Name())
			continue
		case errors.Is(err, fs.ErrNotExist):
			continue // removed meanwhile
		case err != nil:
			errs = append(errs, err)
			continue
		}
		if !keep(i.JobID) {
			doomed = append(doomed, i)
		}
	}

	// Apps get their grace period side by side, not one after another.
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, i := range doomed {
		wg.Go(func() {
			err := i.Remove(grace)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				removed = append(removed, i.JobID)
			}
		})
	}
	wg.Wait()
	slices.Sort(removed)
	// Cgroups whose instance folder is gone: vigil died between making
	// one and recording it, and removed the folder since.
	if abs, err := filepath.Abs(parent); err == nil {
		errs = append(errs, sweepCgroups(abs, func(jobID string) bool {
			_, err := os.Lstat(filepath.Join(abs, jobID))
			return err == nil
		}))
	}
	if len(unmarked) > 0 {
		abs, _ := filepath.Abs(parent)
		errs = append([]error{&UnmarkedError{Parent: abs, Names: unmarked}}, errs...)
	}
	return removed, errors.Join(errs...)
}

// readMark reads and checks root's mark. Errors wrap fs.ErrNotExist when root
// does not exist, and ErrNoMark when it has no valid mark for jobID.
func readMark(root, jobID string) (mark, error) {
	fi, err := os.Lstat(root)
	if err != nil {
		return mark{}, err
	}
	if !fi.IsDir() {
		return mark{}, fmt.Errorf("%s is not a folder: %w", root, ErrNoMark)
	}
	path := filepath.Join(root, MarkFile)
	fi, err = os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return mark{}, fmt.Errorf("%s has no %s: %w: vigil did not make it, so it is left alone", root, MarkFile, ErrNoMark)
	}
	if err != nil {
		return mark{}, fmt.Errorf("read instance mark: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return mark{}, fmt.Errorf("%s is not a regular file: %w", path, ErrNoMark)
	}
	f, err := os.Open(path)
	if err != nil {
		return mark{}, fmt.Errorf("read instance mark: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMarkSize))
	if err != nil {
		return mark{}, fmt.Errorf("read instance mark: %w", err)
	}
	var m mark
	if err := json.Unmarshal(b, &m); err != nil {
		return mark{}, fmt.Errorf("%s is not a vigil instance mark (%v): %w", path, err, ErrNoMark)
	}
	if m.VigilInstance != markVersion {
		return mark{}, fmt.Errorf("%s has vigil_instance %d, not %d: %w", path, m.VigilInstance, markVersion, ErrNoMark)
	}
	if m.JobID != jobID {
		return mark{}, fmt.Errorf("%s marks job %q, not %q: %w", path, m.JobID, jobID, ErrNoMark)
	}
	return m, nil
}

// writeMark replaces root's mark atomically and durably: a crash leaves
// either the old mark or the new one, never a torn file.
func writeMark(root string, m mark) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode instance mark: %w", err)
	}
	b = append(b, '\n')
	tmp := filepath.Join(root, "."+MarkFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write instance mark: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write instance mark: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write instance mark: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write instance mark: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(root, MarkFile)); err != nil {
		return fmt.Errorf("write instance mark: %w", err)
	}
	return syncDir(root)
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}
