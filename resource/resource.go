// Package resource is what a resource type (a folder, an app, a database
// engine) is to the rest of vigil: one small interface that each type
// implements in a package of its own (resource/directory, resource/app,
// resource/postgres, …), and the registry that names them. The restore-test
// loop, the workers, the API and the console know resources only through
// these interfaces, so a new type is one new package and one registry line.
//
// # The contract
//
// A Type makes a Resource from a configuration entry. A Resource backs up
// into a vault and restores a recovery point into a NEW resource: it never
// writes into anything that exists, and it removes what it created when a
// restore fails. A restore test restores into a Copy, which lives in a
// marked instance folder that vigil made (instance.Create) plus, for a
// database, a new marked database. A Copy can always be rebuilt from the
// restore job as the catalog recorded it, so that after a crash vigil finds
// and deletes what the test created: building one creates nothing, and
// Delete is idempotent and deletes only what carries the job's mark.
package resource

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/resource/target"
	"github.com/vigil-backup/vigil/validate"
	"github.com/vigil-backup/vigil/vault"
)

// Type is one kind of resource.
type Type interface {
	// Name is the type's name as a configuration writes it (type: postgres).
	Name() string
	// Open returns the resource that cfg describes. cfg has passed the
	// configuration's checks and its secrets and tools are loaded
	// (config.LoadPasswords, config.LookupTools). Open touches nothing
	// outside the process: it may be called for every job.
	Open(cfg config.Resource, env Env) (Resource, error)
}

// Env is where a resource's work happens on this machine.
type Env struct {
	// RestoresDir is the default parent of plain restores' new folders
	// and files (data_dir/restores).
	RestoresDir string
	// TempDir holds temporary files of running backups (SQLite's
	// consistent copies); vigil empties it when it starts.
	TempDir string
	// Claims holds each running plain restore's hold on its target
	// (data_dir/restore-claims).
	Claims target.Claims
	// OwnDirs are vigil's own folders (the data dir, the vaults'
	// storage): no plain restore writes inside them, except below
	// RestoresDir.
	OwnDirs []string
}

// CheckTarget refuses a plain restore's target_path that a restore must
// not write into (a link, a folder that is not empty, one of vigil's own
// folders) or that another restore job holds.
func (env Env) CheckTarget(path string, kind target.Kind) error {
	if err := target.Outside(path, env.OwnDirs, env.RestoresDir); err != nil {
		return err
	}
	if err := target.Usable(path, kind); err != nil {
		return err
	}
	return env.Claims.Unheld(path)
}

// FreeDataDir says where to find room for a restore test's copy, which
// lives in the data dir, in an error about a full disk.
const FreeDataDir = "free space on that disk (kept restore-test copies in data_dir/restore-tests count too), or move data_dir to a larger disk"

// Placeholder, in restore metadata, stands for the restore job's id, which
// does not exist until the restore is asked for.
const Placeholder = "{restore_job_id}"

// Restore metadata keys that more than one type uses.
const (
	MetaTargetPath     = "target_path"
	MetaTargetDSN      = "target_dsn"
	MetaTargetDatabase = "target_database"
	// MetaPath is the file or folder of a directory or app recovery
	// point that a partial restore brings back ("" for all of it).
	MetaPath = "path"
)

// Resource is one configured resource, ready to back up and restore.
type Resource interface {
	// Config is the resource's configuration entry.
	Config() config.Resource
	// Location says where the resource's data is, for logs: a folder, a
	// file, or a DSN without its password.
	Location() string

	// Backup writes a new snapshot of the resource into v with opts and
	// returns it, with what the type recorded about its source in the
	// same consistent view (a database's tables and row counts; nil for
	// files). Its error says what to fix; nothing is listed for a failed
	// backup.
	Backup(ctx context.Context, v *vault.Vault, opts vault.BackupOptions) (vault.BackupResult, *vigil.DatabaseInfo, error)

	// RestoreDefaults is the restore metadata of a plain restore of rp:
	// every key a person may override, with its default. Values may hold
	// Placeholder.
	RestoreDefaults(rp vigil.RecoveryPoint) map[string]string
	// PrepareRestore checks a plain restore's metadata (defaults merged
	// with the request, Placeholder filled in) before the job is queued,
	// may normalise it, and sets job.CreatedResourceLocation. A bad or
	// taken target is a *vigil.InvalidError.
	PrepareRestore(ctx context.Context, job *vigil.RestoreJob, rp vigil.RecoveryPoint) error
	// CheckTarget checks again, just before a plain restore starts, that
	// its target is still free; types that check it as they create it
	// (databases) return nil. An error ends the job before anything is
	// written, and nothing is removed.
	CheckTarget(job *vigil.RestoreJob) error
	// Restore carries out a plain restore that PrepareRestore accepted
	// and returns a line for the job's log.
	// When it fails, it has removed what it created and its error says
	// so. When it succeeds, it still holds what it created (its claim on
	// the target, a database's mark) until KeepRestore: until the job's
	// completion is recorded, the restore may yet be undone
	// (CleanInterrupted), when another worker ended the job meanwhile.
	Restore(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint, job *vigil.RestoreJob) (string, error)
	// KeepRestore lets go of what a plain restore whose completion is
	// recorded created: it is the person's now. It returns what could not
	// be let go of, to be appended to the job's log ("" when all went).
	KeepRestore(ctx context.Context, job *vigil.RestoreJob) string
	// CleanInterrupted removes what a plain restore that did not complete
	// had created (vigil's death interrupted it, or another worker ended
	// it while it ran), and returns what it found, to be appended to the
	// job's message.
	CleanInterrupted(ctx context.Context, job *vigil.RestoreJob) string

	// PrepareTest sets a restore test's metadata and
	// CreatedResourceLocation when the test is queued: its copy will
	// live in the instance folder dir (instance.Instance.Dir), and, for a
	// database, in a new database named after the job.
	PrepareTest(job *vigil.RestoreJob, rp vigil.RecoveryPoint, dir string)
	// Copy returns the copy of restore test job, as its metadata
	// describes it, in inst (nil when the instance folder is gone). It
	// creates nothing: it is called both to restore and, after a crash,
	// to delete.
	Copy(job *vigil.RestoreJob, inst *instance.Instance) (Copy, error)
}

// SourceChecker is a Resource that can say, before any backup, whether
// its data can be reached: vigil asks at start and in `vigil config
// check`, so that a wrong path or an unreachable server is found then
// rather than by the nightly backup.
type SourceChecker interface {
	// CheckSource returns what stands in the way of backing the resource
	// up, nothing when nothing does. Each problem's message says what to
	// do; Subject is left to the caller. A problem that may pass by
	// itself (a folder not mounted yet, a database server down) is not
	// Hard. It changes nothing and returns within ctx's deadline.
	CheckSource(ctx context.Context) []vigil.Problem
}

// Copy is the new resource of a restore test: restored, checked, maybe
// started, validated, deleted.
type Copy interface {
	// Restore restores rp into the copy, whose instance folder exists,
	// and returns a line for the job's log.
	Restore(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint) (string, error)
	// Location says where the copy is, for people (a folder, a file, a
	// DSN without password).
	Location() string
	// Check runs the type's own check of the restored copy before any
	// validator (a database opens, passes its integrity check and has
	// the recovery point's tables and rows) and fills in t what
	// validators reach the copy through (SQL, Env). It returns a summary
	// of what it proved, "" when the type has no check of its own; an
	// error is the verdict FAILED, its text the message. What it opens
	// stays open until Close.
	Check(ctx context.Context, rp vigil.RecoveryPoint, t *validate.Target) (string, error)
	// Close releases what Check opened. It may be called without Check.
	Close() error
	// Delete deletes what the copy created outside its instance folder
	// (a database), only if it carries the job's mark, and returns what
	// happened, to be appended to the deletion message. It is idempotent;
	// the instance folder, and any app processes, are removed by the
	// caller afterwards.
	Delete(ctx context.Context) (string, error)
}

// Restored is a Copy that says what its Restore read from the vault and
// wrote. The restore test records the bytes, and its checksum validators
// check the restored files against the digests the restore took as it
// wrote them (vault.RestoreResult.Digests) instead of reading the
// recovery point's contents again.
type Restored interface {
	// Restored is the result of the copy's Restore: zero before it has
	// run, Digests nil when it took none.
	Restored() vault.RestoreResult
}

// FileCopy is a Copy of files only (a folder, an app), which can be
// restored from any snapshot of a folder: a vault's, or a foreign
// repository's that another tool wrote (a restic snapshot).
type FileCopy interface {
	Copy
	// RestoreFiles restores rp's files from src into the copy, as Restore
	// does from a vault.
	RestoreFiles(ctx context.Context, src FileSource, rp vigil.RecoveryPoint) (string, error)
}

// FileSource restores a snapshot's folder into a new folder: a vault
// (*vault.Vault), or a foreign repository. snapshotID is the recovery
// point's SnapshotID. A source that cannot hash files as it writes them
// returns no Digests; checksum validators then compare in another way.
type FileSource interface {
	RestoreWith(ctx context.Context, snapshotID, target string, opts vault.RestoreOptions) (vault.RestoreResult, error)
}

// Mounter is a Copy that can be made instantly (restore: instant): its
// recovery point mounted read-only, with a writable layer on top, instead
// of written out. Removing the instance takes the mounts down.
type Mounter interface {
	Copy
	// Mount makes the copy of rp in its instance folder and returns a line
	// for the job's log. An error wrapping mount.ErrUnavailable means this
	// machine cannot mount: nothing was made, and Restore does instead.
	Mount(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint) (string, error)
}

// Starter is a Copy that runs something (an app) before validators that
// need it run. Checksum validators run before Start, on the files as
// restored: what the app writes once it runs is not a difference.
type Starter interface {
	Copy
	// Start runs the copy, sending each line of its output to log,
	// confined as opts says.
	Start(log func(string), opts StartOptions) (Running, error)
}

// StartOptions confine a started copy: what it may reach (its resource's
// isolation, or its plan's when the plan sets one) and use (its
// resource's limits, each replaced by its plan's when the plan sets it).
type StartOptions struct {
	Isolation config.Isolation
	Limits    config.Limits
}

// Running is a started copy. *instance.Process is one.
type Running interface {
	Host() string
	Port() int
	URL() string
	// Exited is closed when the copy's process has ended; ExitReason and
	// LastLines then say how and with what last words.
	Exited() <-chan struct{}
	ExitReason() string
	LastLines() []string
	// MainExited reports at once whether the copy's main process has
	// ended, and how (Exited may wait a moment for its last output).
	MainExited() (reason string, exited bool)
	// Left counts the copy's processes still alive: once its main process
	// has exited, what it left running (a daemon it forked).
	Left() int
	// Confinement says how the copy's processes are kept track of and
	// what it can reach, for its job's log ("in cgroup …, isolated …").
	Confinement() string
	// LimitsHit says which of its limits (memory, pids) the copy ran
	// into, "" when none: a cause for a verdict to name.
	LimitsHit() string
	// Reach is how validators get into the copy's network when it has
	// one of its own; nil when it runs in vigil's.
	Reach() validate.Reach
}

// Registry names the resource types this build knows.
type Registry struct {
	types map[string]Type
	env   Env
}

// NewRegistry returns a registry of types, opening resources in env.
func NewRegistry(env Env, types ...Type) *Registry {
	r := &Registry{types: map[string]Type{}, env: env}
	for _, t := range types {
		if _, dup := r.types[t.Name()]; dup {
			panic("resource: type " + t.Name() + " registered twice")
		}
		r.types[t.Name()] = t
	}
	return r
}

// Names lists the registered types' names, sorted.
func (r *Registry) Names() []string {
	var names []string
	for n := range r.types {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Open returns the resource that cfg describes.
func (r *Registry) Open(cfg config.Resource) (Resource, error) {
	t, ok := r.types[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("resource %q has type %q, which this build of vigil does not know (known: %s)",
			cfg.Name, cfg.Type, strings.Join(r.Names(), ", "))
	}
	return t.Open(cfg, r.env)
}

// For opens the resource of a recovery point or a job: the entry of cfg
// called name if it has type typ, else one of which only the name and the
// type are known (it left the configuration): a type that needs more, such
// as a database's credentials, refuses that.
func (r *Registry) For(cfg *config.Config, name, typ string) (Resource, error) {
	entry, ok := cfg.Resource(name)
	if !ok || entry.Type != typ {
		entry = config.Resource{Name: name, Type: typ}
	}
	return r.Open(entry)
}

// Env is where the registry's resources work.
func (r *Registry) Env() Env { return r.env }
