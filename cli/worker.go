package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/worker"
)

// workerOptions are the flags of `vigil worker`.
type workerOptions struct {
	Workers int
	Node    string
}

func newWorkerCommand(g *globalOptions) *cobra.Command {
	var opts workerOptions
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run jobs from a shared PostgreSQL catalog, with no API and no console",
		Long: `Run jobs (backups, restores, restore tests, plans, expiry, maintenance,
notifications) from the catalog's queue, beside a 'vigil serve' (often
started with --workers 0) and any number of other workers sharing the same
PostgreSQL catalog. It serves no API and no console.

Each worker needs its own node name (config node:, or --node), as the jobs
it runs are recorded under it; it keeps its files under
<data_dir>/workers/<node>. Its heartbeat is in the catalog:
'vigil workers list' shows it and what it runs.

The SQLite catalog belongs to one 'vigil serve' process: there, serve runs
the jobs itself. A worker refuses to start on it, and on a catalog whose
schema is behind ('vigil migrate' first).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Workers < 1 {
				return usageError(fmt.Errorf("--workers %d: a worker runs at least 1 job at once", opts.Workers))
			}
			hup := catchHangup()
			cfg, err := config.Load(config.Locate(g.ConfigPath))
			if err != nil {
				return usageError(err)
			}
			adjust := func(cfg *config.Config) {
				if opts.Node != "" {
					cfg.Node = opts.Node
				}
				cfg.DataDir = filepath.Join(cfg.DataDir, "workers", cfg.Node)
			}
			adjust(cfg)
			if cfg.Catalog == "" {
				return usageError(errors.New("vigil worker needs a PostgreSQL catalog: the SQLite catalog in data_dir belongs to one vigil serve, which runs the jobs itself. " +
					"To run workers beside it, set catalog: postgres://… in the config, run 'vigil migrate', then start serve and the workers"))
			}
			if err := cfg.LoadPasswords(); err != nil {
				return usageError(err)
			}
			if err := cfg.LookupTools(); err != nil {
				return usageError(err)
			}
			logger := newLogger(cfg, g.stderr)
			w, err := startWorker(cmd.Context(), cfg, worker.Options{Workers: opts.Workers, Logger: logger, Adjust: adjust})
			if err != nil {
				return err
			}
			logger.Info("vigil worker running", "worker", w.engine.WorkerID(), "node", cfg.Node, "data_dir", cfg.DataDir)
			reloadOnHangup(cmd.Context(), hup, w.engine, logger)
			logger.Info("vigil worker stopping: waiting for running jobs")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return w.Stop(ctx)
		},
	}
	cmd.Flags().IntVar(&opts.Workers, "workers", 4, "how many jobs of each kind run at once, where the config's workers section says nothing")
	cmd.Flags().StringVar(&opts.Node, "node", "", "this worker's node name (default: the config's node, or the host name)")
	return cmd
}

// runningWorker is a started `vigil worker`.
type runningWorker struct {
	catalog *catalog.Catalog
	engine  *worker.Engine
	lock    *os.File
}

// startWorker opens the catalog (refusing a schema that is behind) and
// starts the engine, undoing what it opened when a later step fails. The
// worker keeps its files in a data dir of its own under the config's, so
// that workers sharing a machine never remove each other's temporary
// files or copies at start.
func startWorker(ctx context.Context, cfg *config.Config, opts worker.Options) (_ *runningWorker, err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	logger := opts.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create the worker's data dir: %w", err)
	}
	cfg.UnsetSecretEnv()
	lock, err := lockDir(cfg.DataDir, "%s is in use by another vigil worker of the same node name: give each worker its own node name (--node, or node: in its config)")
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { lock.Close() })
	cat, err := openCatalog(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { cat.Close() })
	eng, err := worker.New(cfg, cat, opts)
	if err != nil {
		return nil, err
	}
	eng.FreeLeftovers(ctx)
	problems := eng.CheckStart(ctx)
	for _, p := range problems {
		if !p.Hard {
			logger.Warn("start-up check: "+p.Subject, "warning", p.Message)
		}
	}
	if hard := vigil.HardProblems(problems); len(hard) > 0 {
		return nil, usageError(fmt.Errorf("cannot start, %s to fix first:\n%s\n(vigil config check runs these checks without starting)", countProblems(len(hard), "problem"), listProblems(hard)))
	}
	if err := eng.Start(ctx); err != nil {
		return nil, err
	}
	return &runningWorker{catalog: cat, engine: eng, lock: lock}, nil
}

// Stop lets running jobs finish until ctx is done, then cancels them, and
// closes the catalog.
func (w *runningWorker) Stop(ctx context.Context) error {
	err := w.engine.Stop(ctx)
	err = errors.Join(err, w.catalog.Close())
	w.lock.Close()
	return err
}
