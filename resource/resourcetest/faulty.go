package resourcetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/validate"
	"github.com/vigil-backup/vigil/vault"
)

// FaultyType is the name of the Faulty resource type.
const FaultyType = "faulty"

// dataFile is the one file of a Faulty recovery point and copy.
const dataFile = "faulty.data"

// Faults says where a Faulty resource fails. The zero value fails nowhere.
type Faults struct {
	// Backup fails backups; Restore fails a copy's restore after it has
	// created its outside thing (as a database restore fails half-way).
	Backup, Restore error
	// Status is what the started copy answers over HTTP (default 200).
	Status int
	// ExitEarly makes the started copy exit at once; NoAnswer makes it
	// accept connections and never answer; Daemonize makes its main
	// process exit with status 0 and leave a process running that answers.
	ExitEarly, NoAnswer, Daemonize bool
	// DeleteFailures is how many deletions fail before one succeeds.
	DeleteFailures int
}

// Faulty is a resource type for tests of the loop. A resource's data is
// the file at its path, backed up as one stream. A copy is the file
// restored into the instance folder plus a file of its own in Outside,
// written with the job's mark as a database restore creates a marked
// database: Delete removes it only when the mark is the job's. A copy
// starts an HTTP server on loopback (in the test's process) that answers
// as Faults say.
type Faulty struct {
	// Outside is where copies create their outside things.
	Outside string

	mu      sync.Mutex
	faults  Faults
	servers map[string]*http.Server // by job id
	deletes int
}

// NewFaulty returns a Faulty type whose copies create their outside
// things in outside.
func NewFaulty(outside string) *Faulty {
	return &Faulty{Outside: outside, servers: map[string]*http.Server{}}
}

var (
	_ resource.Type    = (*Faulty)(nil)
	_ resource.Starter = (*faultyCopy)(nil)
)

// Set replaces the faults.
func (f *Faulty) Set(faults Faults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = faults
}

func (f *Faulty) get() Faults {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faults
}

// Deletes counts the deletions that were tried.
func (f *Faulty) Deletes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deletes
}

// OutsidePath is where the copy of restore job jobID keeps its outside
// thing.
func (f *Faulty) OutsidePath(jobID string) string { return filepath.Join(f.Outside, jobID) }

// Serving reports whether the copy of jobID still answers.
func (f *Faulty) Serving(jobID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.servers[jobID] != nil
}

func (f *Faulty) Name() string { return FaultyType }

func (f *Faulty) Open(cfg config.Resource, env resource.Env) (resource.Resource, error) {
	return &faultyResource{f: f, cfg: cfg, env: env}, nil
}

type faultyResource struct {
	f   *Faulty
	cfg config.Resource
	env resource.Env
}

func (r *faultyResource) Config() config.Resource { return r.cfg }
func (r *faultyResource) Location() string        { return r.cfg.Path }

func (r *faultyResource) Backup(ctx context.Context, v *vault.Vault, opts vault.BackupOptions) (vault.BackupResult, *vigil.DatabaseInfo, error) {
	if err := r.f.get().Backup; err != nil {
		return vault.BackupResult{}, nil, err
	}
	src, err := os.Open(r.cfg.Path)
	if err != nil {
		return vault.BackupResult{}, nil, err
	}
	defer src.Close()
	res, err := v.BackupStream(ctx, dataFile, src, opts)
	return res, nil, err
}

func (r *faultyResource) RestoreDefaults(vigil.RecoveryPoint) map[string]string {
	return map[string]string{resource.MetaTargetPath: filepath.Join(r.env.RestoresDir, resource.Placeholder)}
}

func (r *faultyResource) PrepareRestore(_ context.Context, job *vigil.RestoreJob, _ vigil.RecoveryPoint) error {
	job.CreatedResourceLocation = job.Metadata[resource.MetaTargetPath]
	return nil
}

func (r *faultyResource) CheckTarget(*vigil.RestoreJob) error { return nil }

func (r *faultyResource) Restore(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint, job *vigil.RestoreJob) (string, error) {
	dir := job.Metadata[resource.MetaTargetPath]
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	n, err := restoreFile(ctx, v, rp, filepath.Join(dir, dataFile))
	return fmt.Sprintf("%d bytes into %s", n, dir), err
}

func (r *faultyResource) KeepRestore(context.Context, *vigil.RestoreJob) string { return "" }

func (r *faultyResource) CleanInterrupted(context.Context, *vigil.RestoreJob) string { return "" }

func (r *faultyResource) PrepareTest(job *vigil.RestoreJob, _ vigil.RecoveryPoint, dir string) {
	job.Metadata = map[string]string{resource.MetaTargetPath: dir}
	job.CreatedResourceLocation = dir
}

func (r *faultyResource) Copy(job *vigil.RestoreJob, inst *instance.Instance) (resource.Copy, error) {
	return &faultyCopy{f: r.f, job: job, inst: inst}, nil
}

func restoreFile(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint, path string) (int64, error) {
	rc, _, err := v.OpenFile(ctx, rp.SnapshotID, dataFile)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, rc)
	return n, errors.Join(err, out.Close())
}

type faultyCopy struct {
	f    *Faulty
	job  *vigil.RestoreJob
	inst *instance.Instance
}

func (c *faultyCopy) mark() string { return "vigil restore job " + c.job.ID }

func (c *faultyCopy) Restore(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint) (string, error) {
	if err := os.MkdirAll(c.f.Outside, 0o700); err != nil {
		return "", err
	}
	outside := c.f.OutsidePath(c.job.ID)
	if err := os.WriteFile(outside, []byte(c.mark()), 0o600); err != nil {
		return "", err
	}
	if err := c.f.get().Restore; err != nil {
		return "", err
	}
	n, err := restoreFile(ctx, v, rp, filepath.Join(c.inst.Dir, dataFile))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("restored %d bytes into %s", n, c.inst.Dir), nil
}

func (c *faultyCopy) Location() string {
	if c.inst == nil {
		return ""
	}
	return c.inst.Dir
}

// Check compares the restored file's size with the recovery point's.
func (c *faultyCopy) Check(_ context.Context, rp vigil.RecoveryPoint, _ *validate.Target) (string, error) {
	fi, err := os.Stat(filepath.Join(c.inst.Dir, dataFile))
	if err != nil {
		return "", fmt.Errorf("the restored file is missing: %v", err)
	}
	if fi.Size() != rp.SizeBytes {
		return "", fmt.Errorf("the restored file has %d bytes, recovery point %s %d", fi.Size(), rp.ID, rp.SizeBytes)
	}
	return fmt.Sprintf("%d bytes match the recovery point", fi.Size()), nil
}

func (c *faultyCopy) Close() error { return nil }

// Start serves HTTP on a loopback port, or exits at once.
func (c *faultyCopy) Start(func(string), resource.StartOptions) (resource.Running, error) {
	faults := c.f.get()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	run := &faultyRunning{addr: ln.Addr().(*net.TCPAddr), exited: make(chan struct{})}
	if faults.ExitEarly {
		ln.Close()
		run.reason = "exited with status 3"
		run.last = []string{"faulty: cannot read faulty.data"}
		close(run.exited)
		return run, nil
	}
	if faults.Daemonize {
		run.reason, run.left = "exited with status 0", 1
		close(run.exited)
	}
	status := faults.Status
	if status == 0 {
		status = http.StatusOK
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if faults.NoAnswer {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(status)
		fmt.Fprintln(w, "faulty copy", c.job.ID)
	})}
	c.f.mu.Lock()
	c.f.servers[c.job.ID] = srv
	c.f.mu.Unlock()
	go srv.Serve(ln)
	return run, nil
}

// Delete stops the copy's server and removes its outside thing if it
// carries the job's mark.
func (c *faultyCopy) Delete(ctx context.Context) (string, error) {
	c.f.mu.Lock()
	c.f.deletes++
	refuse := c.f.faults.DeleteFailures > 0
	if refuse {
		c.f.faults.DeleteFailures--
	}
	srv := c.f.servers[c.job.ID]
	c.f.mu.Unlock()
	if refuse {
		return "", errors.New("the faulty copy refused to go")
	}
	if srv != nil {
		srv.Close()
		c.f.mu.Lock()
		delete(c.f.servers, c.job.ID)
		c.f.mu.Unlock()
	}
	outside := c.f.OutsidePath(c.job.ID)
	b, err := os.ReadFile(outside)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	case err != nil:
		return "", err
	case string(b) != c.mark():
		return fmt.Sprintf("; %s exists without this test's mark, so it was left alone", outside), nil
	}
	if err := os.Remove(outside); err != nil {
		return "", err
	}
	return fmt.Sprintf("; %s was removed", outside), nil
}

type faultyRunning struct {
	addr   *net.TCPAddr
	exited chan struct{}
	reason string
	last   []string
	left   int
}

func (r *faultyRunning) Host() string            { return r.addr.IP.String() }
func (r *faultyRunning) Port() int               { return r.addr.Port }
func (r *faultyRunning) URL() string             { return "http://" + r.addr.String() }
func (r *faultyRunning) Exited() <-chan struct{} { return r.exited }
func (r *faultyRunning) ExitReason() string      { return r.reason }
func (r *faultyRunning) LastLines() []string     { return r.last }
func (r *faultyRunning) Left() int               { return r.left }
func (r *faultyRunning) MainExited() (string, bool) {
	select {
	case <-r.exited:
		return r.reason, true
	default:
		return "", false
	}
}
func (r *faultyRunning) Confinement() string   { return "in the test's own process" }
func (r *faultyRunning) Reach() validate.Reach { return nil }
func (r *faultyRunning) LimitsHit() string     { return "" }
