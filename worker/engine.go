// Package worker runs every step of vigil as a River job: backups, restores,
// expiry of recovery points and vault maintenance. A step's catalog record and
// the River job that carries it on are written in one transaction, so there is
// never a record saying RUNNING with no job to finish it, or the reverse.
package worker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/vault"
)

// Engine owns the River client, the open vaults, and the operations that start
// jobs. One Engine runs per vigil process.
type Engine struct {
	cfg     *config.Config
	catalog *catalog.Catalog
	logger  *slog.Logger

	// River's client is generic over the driver's transaction type; these
	// closures keep the rest of the package free of that split.
	insertTx func(ctx context.Context, tx *catalog.Tx, args river.JobArgs, opts *river.InsertOpts) error
	start    func(ctx context.Context) error
	stop     func(ctx context.Context) error

	vaultsMu sync.Mutex
	vaults   map[string]*vault.Vault

	// progressEvery is how often a running job writes its progress.
	progressEvery time.Duration

	// stopCleanup ends cleanupLoop; cleanupDone closes when it has.
	stopCleanup context.CancelFunc
	cleanupDone chan struct{}
}

// Options tunes an Engine.
type Options struct {
	// Workers is how many jobs run at once in this process (default 4).
	Workers int
	// Logger receives the engine's own log; nil discards it.
	Logger *slog.Logger
}

// New builds an Engine over an open catalog. Vault passwords must already be
// loaded into cfg.
func New(cfg *config.Config, cat *catalog.Catalog, opts Options) (*Engine, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		cfg:           cfg,
		catalog:       cat,
		logger:        opts.Logger,
		vaults:        map[string]*vault.Vault{},
		progressEvery: time.Second,
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, &backupWorker{e: e})
	river.AddWorker(workers, &restoreWorker{e: e})
	river.AddWorker(workers, &expireWorker{e: e})
	river.AddWorker(workers, &maintainWorker{e: e})
	river.AddWorker(workers, &planWorker{e: e})
	river.AddWorker(workers, &testPlanWorker{e: e})
	river.AddWorker(workers, &deliverWorker{e: e})

	rcfg := &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.Workers}},
		Workers: workers,
		// A backup may take hours: jobs set their own timeouts.
		JobTimeout: -1,
		// Jobs are picked up within this time after they were inserted
		// by another process; local inserts wake the producer at once.
		FetchPollInterval: 200 * time.Millisecond,
		FetchCooldown:     20 * time.Millisecond,
		PeriodicJobs:      e.periodicJobs(),
		Logger:            slog.New(slog.DiscardHandler),
		MaxAttempts:       5,
	}

	switch cat.Dialect() {
	case catalog.DialectSQLite:
		c, err := river.NewClient(riversqlite.New(cat.SQLDB()), rcfg)
		if err != nil {
			return nil, fmt.Errorf("create job client: %w", err)
		}
		e.insertTx = func(ctx context.Context, tx *catalog.Tx, args river.JobArgs, opts *river.InsertOpts) error {
			_, err := c.InsertTx(ctx, tx.Raw().(*sql.Tx), args, opts)
			return err
		}
		e.start, e.stop = c.Start, stopper(c)
	case catalog.DialectPostgres:
		c, err := river.NewClient(riverpgxv5.New(cat.PGXPool()), rcfg)
		if err != nil {
			return nil, fmt.Errorf("create job client: %w", err)
		}
		e.insertTx = func(ctx context.Context, tx *catalog.Tx, args river.JobArgs, opts *river.InsertOpts) error {
			_, err := c.InsertTx(ctx, tx.Raw().(pgx.Tx), args, opts)
			return err
		}
		e.start, e.stop = c.Start, stopper(c)
	default:
		return nil, fmt.Errorf("create job client: unknown catalog dialect %q", cat.Dialect())
	}
	return e, nil
}

// Start ends the jobs this node was running when it last stopped, then starts
// working jobs.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.endInterrupted(ctx); err != nil {
		return err
	}
	// Restore tests a crash interrupted end now, and their instances go,
	// before any new test starts.
	if err := e.sweepRestoreTests(ctx, true); err != nil {
		e.logger.Error("clean up restore tests left by the last run", "err", err)
	}
	if err := e.start(ctx); err != nil {
		return fmt.Errorf("start job client: %w", err)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopCleanup, e.cleanupDone = cancel, make(chan struct{})
	go func() {
		defer close(e.cleanupDone)
		e.cleanupLoop(cctx)
	}()
	return nil
}

// Stop stops working jobs, letting running ones finish until ctx is done, and
// closes the vaults.
func (e *Engine) Stop(ctx context.Context) error {
	err := e.stop(ctx)
	if e.stopCleanup != nil {
		e.stopCleanup()
		<-e.cleanupDone
	}
	e.vaultsMu.Lock()
	defer e.vaultsMu.Unlock()
	for name, v := range e.vaults {
		if cerr := v.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close vault %s: %w", name, cerr))
		}
		delete(e.vaults, name)
	}
	return err
}

// Vault returns the open vault called name, opening (and on first use,
// creating) it. Vaults stay open for the life of the engine: opening a Kopia
// repository reads its indexes, which is too slow to do per job.
func (e *Engine) Vault(ctx context.Context, name string) (*vault.Vault, error) {
	e.vaultsMu.Lock()
	defer e.vaultsMu.Unlock()
	if v, ok := e.vaults[name]; ok {
		return v, nil
	}
	vc, ok := e.cfg.Vault(name)
	if !ok {
		return nil, &UnknownNameError{Kind: "vault", Name: name, Known: e.cfg.VaultNames()}
	}
	v, err := vault.Open(ctx, vault.Config{
		Name:     vc.Name,
		Storage:  vc.Storage,
		Password: vc.Password,
		CacheDir: filepath.Join(e.cfg.DataDir, "cache", vc.Name),
		// On the embedded SQLite catalog this process is the only vigil,
		// so the only writer of its vaults: maintenance may give back the
		// space of expired recovery points at once.
		SoleWriter: e.catalog.Dialect() == catalog.DialectSQLite,
	})
	if err != nil {
		return nil, err
	}
	e.vaults[name] = v
	return v, nil
}

// jobLog appends a line to a job's own log. A failure to log is reported to
// the engine's logger but never fails the job.
func (e *Engine) jobLog(ctx context.Context, jobID, format string, args ...any) {
	if err := e.catalog.AppendLog(context.WithoutCancel(ctx), jobID, fmt.Sprintf(format, args...)); err != nil {
		e.logger.Error("append job log", "job", jobID, "err", err)
	}
}

// UnknownNameError is a name or id that does not exist; the message lists
// what does, so a person can correct the call.
type UnknownNameError struct {
	Kind  string
	Name  string
	Known []string
}

func (e *UnknownNameError) Error() string {
	known := "none configured"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("unknown %s %q (known: %s)", e.Kind, e.Name, known)
}

// InvalidError is a request that cannot be carried out as given.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalidf(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// stopper stops a River client softly, letting running jobs finish while
// ctx lasts, then cancels what still runs: those jobs see their context
// cancelled and end ABORTED.
func stopper[TTx any](c *river.Client[TTx]) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		err := c.Stop(ctx)
		if ctx.Err() == nil {
			return err
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return c.StopAndCancel(cctx)
	}
}

func ptr[T any](v T) *T { return &v }

func now() time.Time { return time.Now().UTC() }
