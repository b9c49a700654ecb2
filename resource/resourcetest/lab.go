// Package resourcetest tests resource types and the restore-test loop
// without the server: a Lab is a real SQLite catalog, a real Kopia vault in
// a temporary folder and a restoretest.Tester over them; Conformance is the
// suite every resource type runs, and Server makes the server databases'
// cases on a real PostgreSQL or MariaDB; Faulty is a type that fails where a
// test tells it to, for tests of the loop's failure paths.
package resourcetest

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/target"
	"github.com/vigil-backup/vigil/restoretest"
	"github.com/vigil-backup/vigil/vault"
)

// VaultName is the Lab's one vault.
const VaultName = "lab"

// Lab is a catalog, a vault and a restore tester in a temporary folder.
type Lab struct {
	T       testing.TB
	Config  *config.Config
	Catalog *catalog.Catalog
	Vault   *vault.Vault
	Tester  *restoretest.Tester

	registry *resource.Registry
	// wrap, when set, decorates the copies the Tester makes.
	wrap func(resource.Copy) resource.Copy

	mu     sync.Mutex
	queued []string
}

// NewLab builds a Lab that knows types and the resources of cfg (its
// DataDir, Node and Lifecycle are set when empty). Everything is closed
// when the test ends.
func NewLab(t testing.TB, cfg *config.Config, types ...resource.Type) *Lab {
	t.Helper()
	ctx := context.Background()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Node == "" {
		cfg.Node = "lab-node"
	}
	if cfg.Lifecycle.CheckInterval == 0 {
		cfg.Lifecycle.CheckInterval = config.Duration(time.Hour)
	}
	cat, err := catalog.Open(ctx, "", cfg.DataDir)
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	t.Cleanup(func() { cat.Close() })
	v, err := vault.Open(ctx, vault.Config{
		Name:       VaultName,
		Storage:    filepath.Join(cfg.DataDir, "vault"),
		Password:   "lab-password",
		CacheDir:   filepath.Join(cfg.DataDir, "cache", VaultName),
		SoleWriter: true,
	})
	if err != nil {
		t.Fatalf("open vault: %v", err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	l := &Lab{T: t, Config: cfg, Catalog: cat, Vault: v,
		registry: resource.NewRegistry(resource.Env{
			RestoresDir: filepath.Join(cfg.DataDir, "restores"),
			TempDir:     filepath.Join(cfg.DataDir, "tmp"),
			Claims:      target.Claims{Dir: filepath.Join(cfg.DataDir, "restore-claims")},
			OwnDirs:     []string{cfg.DataDir},
		}, types...)}
	l.Tester = l.NewTester()
	return l
}

// NewTester returns a new Tester over the Lab's catalog and vault, as a
// restarted vigil would have.
func (l *Lab) NewTester() *restoretest.Tester {
	l.T.Helper()
	tt, err := restoretest.New(restoretest.Options{Config: l.Config, Catalog: l.Catalog, Journal: l, Vaults: labVaults{l}, Resources: l})
	if err != nil {
		l.T.Fatal(err)
	}
	return tt
}

// Record is restoretest.Journal's: the update and the events, in one
// transaction (deliveries are the worker's, not the Lab's).
func (l *Lab) Record(ctx context.Context, update func(ctx context.Context, tx *catalog.Tx) error, events ...vigil.Event) error {
	ctx = context.WithoutCancel(ctx)
	return l.Catalog.InTx(ctx, func(tx *catalog.Tx) error {
		if err := update(ctx, tx); err != nil {
			return err
		}
		for _, ev := range events {
			if err := tx.InsertEvent(ctx, &ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// QueueRestoreTest notes the test; Lab.Test runs it.
func (l *Lab) QueueRestoreTest(_ context.Context, _ *catalog.Tx, jobID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queued = append(l.queued, jobID)
	return nil
}

// labVaults is restoretest.Vaults: the Lab's one vault.
type labVaults struct{ l *Lab }

func (lv labVaults) Vault(_ context.Context, name string) (*vault.Vault, error) {
	if name != VaultName {
		return nil, &vigil.UnknownNameError{Kind: "vault", Name: name, Known: []string{VaultName}}
	}
	return lv.l.Vault, nil
}

// Resource is restoretest.Resources': the configured resource of that
// name and type, else one of which only those are known.
func (l *Lab) Resource(name, typ string) (resource.Resource, error) {
	res, err := l.registry.For(l.Config, name, typ)
	if err != nil || l.wrap == nil {
		return res, err
	}
	return wrapped{res, l.wrap}, nil
}

// Open returns the configured resource called name.
func (l *Lab) Open(name string) resource.Resource {
	l.T.Helper()
	cfg, ok := l.Config.Resource(name)
	if !ok {
		l.T.Fatalf("resource %q is not in the Lab's configuration", name)
	}
	res, err := l.registry.Open(cfg)
	if err != nil {
		l.T.Fatalf("open resource %s: %v", name, err)
	}
	return res
}

// Backup backs resource name up into the vault and lists its recovery
// point, as a backup job does.
func (l *Lab) Backup(name string) vigil.RecoveryPoint {
	l.T.Helper()
	ctx := context.Background()
	res := l.Open(name)
	rp := vigil.RecoveryPoint{
		ID: vigil.NewID(vigil.PrefixRecoveryPoint), Vault: VaultName, Resource: name, ResourceType: res.Config().Type,
		Status: vigil.RecoveryPointAvailable, BackupJobID: vigil.NewID(vigil.PrefixBackupJob), CreatedAt: time.Now().UTC(),
	}
	result, info, err := res.Backup(ctx, l.Vault, vault.BackupOptions{Resource: name, Description: "lab backup"})
	if err != nil {
		l.T.Fatalf("back up %s: %v", name, err)
	}
	done := time.Now().UTC()
	rp.SnapshotID, rp.SizeBytes, rp.Files, rp.CompletedAt, rp.Database = result.SnapshotID, result.Bytes, result.Files, &done, info
	if err := l.Catalog.InsertRecoveryPoint(ctx, &rp); err != nil {
		l.T.Fatal(err)
	}
	return rp
}

// Queue records a restore test of rp under plan ("" for on-demand).
func (l *Lab) Queue(rp vigil.RecoveryPoint, plan string) vigil.RestoreJob {
	l.T.Helper()
	var job vigil.RestoreJob
	err := l.Catalog.InTx(context.Background(), func(tx *catalog.Tx) error {
		var err error
		job, err = l.Tester.Queue(context.Background(), tx, rp, plan)
		return err
	})
	if err != nil {
		l.T.Fatalf("queue restore test: %v", err)
	}
	return job
}

// Test queues a restore test of rp and runs it to its end, then returns
// its record.
func (l *Lab) Test(rp vigil.RecoveryPoint, plan string) vigil.RestoreJob {
	l.T.Helper()
	job := l.Queue(rp, plan)
	if err := l.Tester.Run(context.Background(), &job); err != nil {
		l.T.Fatalf("run restore test: %v", err)
	}
	return l.Job(job.ID)
}

// Crashed runs restore test job until its goroutine dies the way a killed
// process stops: wherever the Lab's copies call Crash. It reports whether
// the run died (false: it ran to its end).
func (l *Lab) Crashed(job vigil.RestoreJob) bool {
	l.T.Helper()
	died := true
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Tester.Run(context.Background(), &job); err != nil {
			l.T.Errorf("run restore test: %v", err)
		}
		died = false
	}()
	<-done
	return died
}

// Crash ends the calling goroutine at once, running only its deferred
// calls: what the catalog and the disk hold is what a kill -9 would leave.
// Call it from a copy's method, on the goroutine of Tester.Run.
func Crash() { runtime.Goexit() }

// Hook runs hooks before the methods of every copy the Tester makes from
// now on, to damage a copy, fail a step or Crash in it; nil clears them.
func (l *Lab) Hook(h *Hooks) {
	if h == nil {
		l.wrap = nil
		return
	}
	l.wrap = func(cp resource.Copy) resource.Copy { return Decorate(cp, *h) }
}

// Job reads restore job id from the catalog.
func (l *Lab) Job(id string) vigil.RestoreJob {
	l.T.Helper()
	job, err := l.Catalog.GetRestoreJob(context.Background(), id)
	if err != nil {
		l.T.Fatal(err)
	}
	return job
}

// Pending lists the restore tests of rp that are queued and not started.
func (l *Lab) Pending(rp vigil.RecoveryPoint) []vigil.RestoreJob {
	l.T.Helper()
	jobs, err := l.Catalog.ListRestoreJobs(context.Background(), catalog.RestoreJobFilter{
		RecoveryPointID: rp.ID, RestoreTest: true, Status: []vigil.RestoreJobStatus{vigil.RestorePending}})
	if err != nil {
		l.T.Fatal(err)
	}
	return jobs
}

// Events lists the events of job id, oldest first.
func (l *Lab) Events(id string) []vigil.EventType {
	l.T.Helper()
	evs, err := l.Catalog.ListEvents(context.Background(), catalog.EventFilter{JobID: id})
	if err != nil {
		l.T.Fatal(err)
	}
	var out []vigil.EventType
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

// Describe is a one-line account of a restore job, for failure messages.
func Describe(job vigil.RestoreJob) string {
	return fmt.Sprintf("%s %s %q; validation %s %q; deletion %s %q", job.ID, job.Status, job.StatusMessage,
		job.ValidationStatus, job.ValidationMessage, job.DeletionStatus, job.DeletionMessage)
}

// wrapped is a resource whose copies pass through a decorator.
type wrapped struct {
	resource.Resource
	wrap func(resource.Copy) resource.Copy
}

func (w wrapped) Copy(job *vigil.RestoreJob, inst *instance.Instance) (resource.Copy, error) {
	cp, err := w.Resource.Copy(job, inst)
	if err != nil {
		return nil, err
	}
	return w.wrap(cp), nil
}
