// Package worker runs every step of vigil as a River job (backups, restores,
// restore tests, expiry of recovery points, vault maintenance, plans,
// deliveries) and wires the parts that do the work: backup, restoretest, the
// resource types and the vaults. A step's catalog record and the River job
// that carries it on are written in one transaction (Engine.Record and the
// Queue methods), so there is never a record saying RUNNING with no job to
// finish it, or the reverse.
package worker

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/backup"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/internal/testpause"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/target"
	"github.com/vigil-backup/vigil/restoretest"
	"github.com/vigil-backup/vigil/vault"
	"github.com/vigil-backup/vigil/vault/restic"
)

// Engine owns the River client, the open vaults, and the operations that start
// jobs. One Engine runs per vigil process.
type Engine struct {
	cfg     *config.Live
	catalog *catalog.Catalog
	logger  *slog.Logger
	// freeOnce makes FreeLeftovers run once, whoever calls it first.
	freeOnce sync.Once

	// River's client is generic over the driver's transaction type; these
	// closures keep the rest of the package free of that split.
	insertTx func(ctx context.Context, tx *catalog.Tx, args river.JobArgs, opts *river.InsertOpts) error
	start    func(ctx context.Context) error
	stop     func(ctx context.Context) error
	rescue   func(ctx context.Context) (int, error)
	// rescueOf hands the River jobs the job client of node was running
	// back to the queue.
	rescueOf func(ctx context.Context, node string) (int, error)
	// cancelJob is River's JobCancel, returning the job's state after it;
	// listJobs River's JobList (Cancel).
	cancelJob func(ctx context.Context, id int64) (rivertype.JobState, error)
	listJobs  func(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	// periodic is River's list of periodic jobs, which a reload changes;
	// nil where this process schedules nothing (NoJobs).
	periodic *river.PeriodicJobBundle
	// reloadMu makes reloads take turns (Reload); adjust is
	// Options.Adjust.
	reloadMu sync.Mutex
	adjust   func(*config.Config)
	// working is the jobs this process works now, by River job id: the
	// vigil job id, or for a job of no vigil job, its kind (jobContext).
	workingMu sync.Mutex
	working   map[int64]string

	// id is this process's worker id (node-<random>), and concurrency
	// how many jobs of each kind it runs at once.
	id          string
	concurrency map[string]int
	noJobs      bool
	// stopHeartbeat ends the heartbeat; heartbeatDone closes when it has.
	stopHeartbeat context.CancelFunc
	heartbeatDone chan struct{}

	vaultsMu sync.Mutex
	vaults   map[string]*vault.Vault
	// restics are the open restic vaults, under vaultsMu; syncLocks lets
	// one sync of a foreign vault run at a time.
	restics   map[string]*restic.Repo
	syncLocks locks

	resources *resource.Registry
	backups   *backup.Runner
	tests     *restoretest.Tester

	// warnings are what the start-up checks found that did not stop the
	// start, at checkedAt (CheckStart).
	warningsMu sync.Mutex
	warnings   []vigil.Problem
	checkedAt  time.Time

	// stopCleanup ends the restore tests' sweep loop; cleanupDone closes
	// when it has.
	stopCleanup context.CancelFunc
	cleanupDone chan struct{}

	// restorePauses are the test-only pauses of EnvRestorePause.
	restorePauses testpause.Steps
}

// The queue of notification deliveries, and how many run at once.
const (
	queueNotify   = "notify"
	notifyWorkers = 4
)

// Options tunes an Engine.
type Options struct {
	// Workers is how many jobs of each kind the config's workers section
	// leaves out run at once in this process (default 4).
	Workers int
	// NoJobs makes the engine insert jobs without running any: `vigil
	// serve --workers 0`, beside `vigil worker` processes that run them.
	NoJobs bool
	// Logger receives the engine's own log; nil discards it.
	Logger *slog.Logger
	// Adjust is what the command line changed in the config after it was
	// read (vigil worker's --node and its data dir of its own); Reload
	// does the same to the file it reads again.
	Adjust func(*config.Config)
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
		cfg:     config.NewLive(cfg),
		catalog: cat,
		logger:  opts.Logger,
		vaults:  map[string]*vault.Vault{},
		restics: map[string]*restic.Repo{},
		working: map[int64]string{},
		id:      newWorkerID(cfg.Node),
		noJobs:  opts.NoJobs,
		adjust:  opts.Adjust,
		resources: resource.NewRegistry(resource.Env{
			RestoresDir: filepath.Join(cfg.DataDir, "restores"),
			TempDir:     filepath.Join(cfg.DataDir, "tmp"),
			Claims:      target.Claims{Dir: filepath.Join(cfg.DataDir, "restore-claims")},
			OwnDirs:     ownDirs(cfg),
		}, resourceTypes...),
	}
	restorePauses, err := testpause.Read(EnvRestorePause, "record")
	if err != nil {
		return nil, err
	}
	e.restorePauses = restorePauses
	tests, err := restoretest.New(restoretest.Options{Config: e.cfg, Catalog: cat, Journal: e, Vaults: e, Restic: e, Resources: e, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	e.tests = tests
	e.backups, err = backup.New(backup.Options{Config: e.cfg, Catalog: cat, Journal: e, Vaults: e, Resources: e.resources, Tests: tests, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}

	workers := river.NewWorkers()
	// Backups, restores, restore tests and maintenance take River's
	// JobTimeout (workers.job_timeout, below): a first backup of a large
	// tree may take hours.
	addThin(workers, 0, e.runBackup)
	river.AddWorker(workers, &copyWorker{e: e})
	river.AddWorker(workers, &restoreWorker{e: e})
	addThin(workers, 0, e.runRestoreTest)
	addThin(workers, 10*time.Minute, e.expireAll)
	addThin(workers, 0, e.maintain)
	addThin(workers, 0, e.rollingVerify)
	addThin(workers, 10*time.Minute, e.syncJob)
	addThin(workers, time.Minute, e.runBackupPlan)
	addThin(workers, time.Minute, e.runTestPlan)
	river.AddWorker(workers, &deliverWorker{e: e})

	e.concurrency = concurrency(cfg.Workers, opts.Workers)
	if opts.NoJobs {
		e.concurrency = map[string]int{"other": 0, queueBackup: 0, queueRestore: 0, queueRestoreTest: 0}
	}
	rcfg := &river.Config{
		// Each long kind has its queue, and notifications theirs:
		// hours-long backups must not hold them up.
		Queues:  queues(e.concurrency),
		Workers: workers,
		// The longest expected job bounds every attempt of the long
		// kinds. River's rescuer hands a job back to the queue once its
		// attempt has run an hour longer than that: by then the attempt
		// was cancelled and ended, unless its worker died without a
		// successor on its node, so the job's next attempt finds its
		// record RUNNING and ends it ABORTED (backup.Runner.Run), and a
		// late write of the lost attempt changes nothing
		// (UpdateRunningBackupJob). Heartbeats end a dead worker's jobs
		// much sooner; this is the bound when no live worker is left.
		JobTimeout:           e.jobTimeout(),
		RescueStuckJobsAfter: e.jobTimeout() + time.Hour,
		// Jobs are picked up within this time after they were inserted
		// by another process; local inserts wake the producer at once.
		FetchPollInterval: 200 * time.Millisecond,
		FetchCooldown:     20 * time.Millisecond,
		PeriodicJobs:      e.periodicJobs(),
		Middleware:        []rivertype.Middleware{&jobContext{e: e}},
		Logger:            slog.New(slog.DiscardHandler),
		MaxAttempts:       5,
		// The node's name identifies its job client, so that on restart it
		// finds the River jobs it was running when it died (rescuer).
		ID: cfg.Node,
	}
	if opts.NoJobs {
		// An insert-only client: River runs no queue, no leader and no
		// periodic jobs here; the workers do.
		rcfg.Queues, rcfg.PeriodicJobs = nil, nil
	}

	switch cat.Dialect() {
	case catalog.DialectSQLite:
		driver := riversqlite.New(cat.SQLDB())
		c, err := river.NewClient(driver, rcfg)
		if err != nil {
			return nil, fmt.Errorf("create job client: %w", err)
		}
		e.insertTx = func(ctx context.Context, tx *catalog.Tx, args river.JobArgs, opts *river.InsertOpts) error {
			_, err := c.InsertTx(ctx, tx.Raw().(*sql.Tx), args, opts)
			return err
		}
		e.start, e.stop, e.rescue = c.Start, stopper(c), rescuer(c, driver.GetExecutor(), rcfg.ID)
		e.rescueOf = func(ctx context.Context, node string) (int, error) {
			return rescuer(c, driver.GetExecutor(), node)(ctx)
		}
		e.cancelJob, e.listJobs = canceller(c), c.JobList
		if !opts.NoJobs {
			e.periodic = c.PeriodicJobs()
		}
	case catalog.DialectPostgres:
		driver := riverpgxv5.New(cat.PGXPool())
		c, err := river.NewClient(driver, rcfg)
		if err != nil {
			return nil, fmt.Errorf("create job client: %w", err)
		}
		e.insertTx = func(ctx context.Context, tx *catalog.Tx, args river.JobArgs, opts *river.InsertOpts) error {
			_, err := c.InsertTx(ctx, tx.Raw().(pgx.Tx), args, opts)
			return err
		}
		e.start, e.stop, e.rescue = c.Start, stopper(c), rescuer(c, driver.GetExecutor(), rcfg.ID)
		e.rescueOf = func(ctx context.Context, node string) (int, error) {
			return rescuer(c, driver.GetExecutor(), node)(ctx)
		}
		e.cancelJob, e.listJobs = canceller(c), c.JobList
		if !opts.NoJobs {
			e.periodic = c.PeriodicJobs()
		}
	default:
		return nil, fmt.Errorf("create job client: unknown catalog dialect %q", cat.Dialect())
	}
	return e, nil
}

// ownDirs are the folders that hold vigil's own data: the data dir and
// the vaults' storage.
func ownDirs(cfg *config.Config) []string {
	dirs := []string{cfg.DataDir}
	for _, v := range cfg.Vaults {
		if !v.IsS3() {
			dirs = append(dirs, v.Storage)
		}
	}
	return dirs
}

// FreeLeftovers removes what the last run left on the data dir's disk:
// the temporary files of interrupted backups, and the mounts and copies
// of interrupted restore tests. Start does it first; serve calls it before
// the start-up checks too, which write to that disk (a vault's cache)
// and would find it full. It does its work once.
func (e *Engine) FreeLeftovers(ctx context.Context) {
	e.freeOnce.Do(func() {
		// SQLite's consistent copies of interrupted backups: nothing
		// runs yet, so whatever is there is left over (one server per
		// data dir).
		if err := os.RemoveAll(e.resources.Env().TempDir); err != nil {
			e.logger.Error("remove the temporary files of the last run", "dir", e.resources.Env().TempDir, "err", err)
		}
		// The instant copies' mounts of a vigil that was killed are dead
		// (their FUSE server died with it): they go before the copies'
		// folders, which are never deleted with a mount in them.
		if points, err := instance.Unmount(e.tests.Dir()); err != nil {
			e.logger.Error("unmount the instant copies the last run left", "dir", e.tests.Dir(), "err", err)
		} else if len(points) > 0 {
			e.logger.Info("unmounted the instant copies the last run left", "mounts", points)
		}
		if err := e.tests.Free(ctx); err != nil {
			e.logger.Error("remove the copies of restore tests left by the last run", "err", err)
		}
	})
}

// Start ends the jobs this node was running when it last stopped, then starts
// working jobs.
//
// Clean-up comes before any catalog write: on a disk that the last run's
// leftovers filled (a restore test's copy, a backup's temporary files),
// the catalog has no room until they are gone.
func (e *Engine) Start(ctx context.Context) error {
	e.FreeLeftovers(ctx)
	if err := e.checkNodeFree(ctx); err != nil {
		return err
	}
	if err := e.endInterrupted(ctx); err != nil {
		return err
	}
	if ok, why := instance.CgroupsAvailable(); !ok {
		e.logger.Warn("restore tests' app copies run without cgroups: their processes are found by process group, environment, working directory and open files, and a daemon that leaves all four survives clean-up",
			"why", why)
	}
	if ok, why := instance.LimitsAvailable(); !ok && e.cfg.Current().SetsLimits() {
		e.logger.Warn("the memory and pids limits of restore tests' app copies cannot all be enforced here: copies run without those they cannot have, and their job logs say which",
			"why", why)
	}
	// Restore tests a crash interrupted end now, and their instances go,
	// before any new test starts.
	if err := e.tests.Sweep(ctx, true); err != nil {
		e.logger.Error("clean up restore tests left by the last run", "err", err)
	}
	if n, err := e.rescue(ctx); err != nil {
		return fmt.Errorf("requeue the jobs this node was running: %w", err)
	} else if n > 0 {
		e.logger.Info("requeued the jobs this node was running when it stopped", "jobs", n)
	}
	if err := e.register(ctx); err != nil {
		return err
	}
	hctx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
	e.stopHeartbeat, e.heartbeatDone = stopBeat, make(chan struct{})
	go func() {
		defer close(e.heartbeatDone)
		e.heartbeat(hctx)
	}()
	if !e.noJobs {
		if err := e.start(ctx); err != nil {
			e.stopHeartbeat()
			<-e.heartbeatDone
			return fmt.Errorf("start job client: %w", err)
		}
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopCleanup, e.cleanupDone = cancel, make(chan struct{})
	go func() {
		defer close(e.cleanupDone)
		e.tests.Loop(cctx)
	}()
	return nil
}

// Stop stops working jobs, letting running ones finish until ctx is done, and
// closes the vaults.
func (e *Engine) Stop(ctx context.Context) error {
	var err error
	if !e.noJobs {
		err = e.stop(ctx)
	}
	if e.stopCleanup != nil {
		e.stopCleanup()
		<-e.cleanupDone
	}
	if e.stopHeartbeat != nil {
		e.stopHeartbeat()
		<-e.heartbeatDone
		err = errors.Join(err, e.catalog.StopWorker(context.WithoutCancel(ctx), e.id, now()))
	}
	return errors.Join(err, e.closeVaults(ctx))
}

// closeVaults closes the open vaults.
func (e *Engine) closeVaults(ctx context.Context) error {
	e.vaultsMu.Lock()
	defer e.vaultsMu.Unlock()
	var err error
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
	vc, ok := e.cfg.Current().Vault(name)
	if !ok {
		return nil, &vigil.UnknownNameError{Kind: "vault", Name: name, Known: e.cfg.Current().VaultNames()}
	}
	if vc.Kind == config.KindRestic {
		return nil, fmt.Errorf("vault %q is %w", name, errResticVault)
	}
	c := vaultConfig(vc, filepath.Join(e.cfg.Current().DataDir, "cache", vc.Name))
	// On the embedded SQLite catalog this process is the only vigil, so
	// the only writer of its vaults: maintenance may give back the space
	// of expired recovery points at once. A foreign vault is another
	// tool's: vigil opens it read-only and never writes it.
	c.SoleWriter = e.catalog.Dialect() == catalog.DialectSQLite && !vc.Foreign()
	v, err := vault.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	e.vaults[name] = v
	// Opening derived the vault's key from its password with scrypt, whose
	// 64 MiB are garbage now. Left to the runtime, they stay in the
	// process until later collections shrink the heap, which in an idle
	// server can take minutes; give them back now.
	debug.FreeOSMemory()
	return v, nil
}

// vaultConfig is how the vault package opens a configured vault.
func vaultConfig(vc config.Vault, cacheDir string) vault.Config {
	return vault.Config{
		Name:    vc.Name,
		Storage: vc.Storage,
		// A foreign vault is another tool's: opened read-only, never
		// created.
		ReadOnly: vc.Foreign(),
		Password: vc.Password,
		CacheDir: cacheDir,
		S3: vault.S3{
			Endpoint:  vc.Endpoint,
			Region:    vc.Region,
			Insecure:  vc.Insecure,
			CAFile:    vc.CAFile,
			AccessKey: vc.AccessKey,
			SecretKey: vc.SecretKey,
			RetryFor:  time.Duration(vc.RetryFor),
		},
	}
}

// Resource opens the resource of a recovery point or job: the configured
// one of that name and type or, when it left the configuration, one of
// which only the name and type are known (database types refuse that:
// they need their credentials).
func (e *Engine) Resource(name, typ string) (resource.Resource, error) {
	return e.resources.For(e.cfg.Current(), name, typ)
}

// QueueRestoreTest queues the River job that runs a restore test, in tx.
func (e *Engine) QueueRestoreTest(ctx context.Context, tx *catalog.Tx, jobID string) error {
	return e.insertTx(ctx, tx, RestoreTestArgs{JobID: jobID}, nil)
}

// jobLog appends a line to a job's own log. A failure to log is reported to
// the engine's logger but never fails the job.
func (e *Engine) jobLog(ctx context.Context, jobID, format string, args ...any) {
	if err := e.catalog.AppendLog(context.WithoutCancel(ctx), jobID, fmt.Sprintf(format, args...)); err != nil {
		e.logger.Error("append job log", "job", jobID, "err", err)
	}
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

// canceller returns River's JobCancel, answering the job's state after it.
func canceller[TTx any](c *river.Client[TTx]) func(ctx context.Context, id int64) (rivertype.JobState, error) {
	return func(ctx context.Context, id int64) (rivertype.JobState, error) {
		j, err := c.JobCancel(ctx, id)
		if err != nil {
			return "", err
		}
		return j.State, nil
	}
}

func ptr[T any](v T) *T { return &v }

func now() time.Time { return time.Now().UTC() }

// rescuer returns what hands the River jobs this node was running when its
// process died back to the queue. River's own rescuer never does that for
// jobs without a timeout, which vigil's backups and restores are: they may
// take hours. Without it, a job picked up just before a crash would stay
// "running" forever, and a vault's maintenance, unique while running,
// could never be queued again. Each job's worker then finds its record
// ended (endInterrupted) and does nothing, or finds it PENDING and runs it.
func rescuer[TTx any](c *river.Client[TTx], exec riverdriver.Executor, clientID string) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		var p riverdriver.JobRescueManyParams
		now := time.Now().UTC()
		jobs, err := runningOf(ctx, c, clientID)
		if err != nil {
			return 0, err
		}
		for _, j := range jobs {
			msg, _ := json.Marshal(rivertype.AttemptError{At: now, Attempt: max(j.Attempt, 0),
				Error: "vigil on node " + clientID + " stopped while the job ran"})
			p.ID = append(p.ID, j.ID)
			p.Error = append(p.Error, msg)
			p.FinalizedAt = append(p.FinalizedAt, nil)
			p.ScheduledAt = append(p.ScheduledAt, now)
			p.State = append(p.State, string(rivertype.JobStateAvailable))
		}
		if len(p.ID) == 0 {
			return 0, nil
		}
		// Every one of them was attempted before this process started.
		p.StuckHorizon = now.Add(time.Minute)
		if _, err := exec.JobRescueMany(ctx, &p); err != nil {
			return 0, fmt.Errorf("requeue %d jobs: %w", len(p.ID), err)
		}
		return len(p.ID), nil
	}
}

// runningOf lists the River jobs running whose last attempt is by the job
// client clientID.
func runningOf[TTx any](ctx context.Context, c *river.Client[TTx], clientID string) ([]*rivertype.JobRow, error) {
	var out []*rivertype.JobRow
	params := river.NewJobListParams().States(rivertype.JobStateRunning).First(10000)
	for {
		res, err := c.JobList(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("list running jobs: %w", err)
		}
		for _, j := range res.Jobs {
			if len(j.AttemptedBy) > 0 && j.AttemptedBy[len(j.AttemptedBy)-1] == clientID {
				out = append(out, j)
			}
		}
		if res.LastCursor == nil || len(res.Jobs) == 0 {
			return out, nil
		}
		params = params.After(res.LastCursor)
	}
}
