package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/console"
	"github.com/vigil-backup/vigil/metrics"
	"github.com/vigil-backup/vigil/worker"
)

const (
	tokenFile = "api-token"
	lockFile  = "vigil.lock"
)

func newServeCommand(g *globalOptions) *cobra.Command {
	var workers int
	var node string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API, the scheduler and the workers in one process",
		Long: `Run the API under /api/v1 and /healthz, the backup plan scheduler, the
lifecycle checks and the workers in one process.

On first start vigil writes a random API token to <data_dir>/api-token
(mode 0600); clients using the same config find it there.

With --workers 0 it runs no jobs: 'vigil worker' processes sharing its
PostgreSQL catalog run them.

On the SQLite catalog serve brings the catalog's schema up to date by
itself. On a PostgreSQL catalog it refuses a schema that is behind: run
'vigil migrate' first, once, for every process sharing the catalog.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hup := catchHangup()
			cfg, err := config.Load(config.Locate(g.ConfigPath))
			if err != nil {
				return usageError(err)
			}
			// A reload reads the file again and must keep the flag's name.
			adjust := func(cfg *config.Config) {
				if node != "" {
					cfg.Node = node
				}
			}
			adjust(cfg)
			if err := cfg.LoadPasswords(); err != nil {
				return usageError(err)
			}
			if err := cfg.LookupTools(); err != nil {
				return usageError(err)
			}
			if workers == 0 && cfg.Catalog == "" {
				return usageError(errors.New("--workers 0 on the SQLite catalog would run no jobs at all: no vigil worker can share it. " +
					"Leave --workers out to run the jobs here, or set catalog: postgres://… and start vigil worker processes"))
			}
			if workers < 0 {
				return usageError(fmt.Errorf("--workers %d: give 0 (run no jobs here) or more", workers))
			}
			logger := newLogger(cfg, g.stderr)
			srv, err := startServer(cmd.Context(), cfg, worker.Options{Workers: workers, NoJobs: workers == 0, Logger: logger, Adjust: adjust})
			if err != nil {
				return err
			}
			logger.Info("vigil serving", "url", srv.URL, "data_dir", cfg.DataDir, "catalog", srv.catalog.Dialect(), "node", cfg.Node,
				"worker", srv.engine.WorkerID(), "runs_jobs", workers > 0)
			// What a person needs to open the console, said once where
			// they look first.
			logger.Info("console: open "+srv.URL+"/ and sign in with the token in "+filepath.Join(cfg.DataDir, tokenFile), "console", srv.URL+"/",
				"token_file", filepath.Join(cfg.DataDir, tokenFile))
			reloadOnHangup(cmd.Context(), hup, srv.engine, logger)
			logger.Info("vigil stopping: waiting for running jobs")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return srv.Stop(ctx)
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 4, "how many jobs of each kind run at once, where the config's workers section says nothing (0: run no jobs here)")
	cmd.Flags().StringVar(&node, "node", "", "this server's node name (default: the config's node, or the host name)")
	return cmd
}

// catchHangup takes SIGHUP from the start, whose default would end the
// process: one that comes while the server starts is answered once it
// has (reloadOnHangup).
func catchHangup() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// reloadOnHangup reloads eng's config on each SIGHUP until ctx is done.
// A refused reload is an error in the log; the running config stays.
func reloadOnHangup(ctx context.Context, hup chan os.Signal, eng *worker.Engine, logger *slog.Logger) {
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			logger.Info("SIGHUP: reloading the config")
			if _, err := eng.Reload(ctx); err != nil {
				logger.Error("config not reloaded", "err", err)
			}
		}
	}
}

// server is a running vigil: catalog, engine, and over HTTP the API, the
// console and the metrics.
type server struct {
	URL     string
	Token   string
	catalog *catalog.Catalog
	engine  *worker.Engine
	http    *http.Server
	lock    *os.File
	done    chan error

	// stopping closes when the server begins to stop: the API's long
	// polls and the console's event streams end, so that a connected
	// `vigil events tail` or jobs page does not hold up the stop.
	stopping chan struct{}
}

// startServer opens everything a server needs, in order, and undoes what it
// opened when a later step fails.
func startServer(ctx context.Context, cfg *config.Config, opts worker.Options) (_ *server, err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data_dir: %w", err)
	}
	// The secrets are read; no program vigil starts (a restored app, a
	// validator, a notification command) inherits them.
	cfg.UnsetSecretEnv()
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { lock.Close() })
	token, err := loadOrCreateToken(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cat, err := openCatalog(ctx, cfg, cfg.Catalog == "")
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { cat.Close() })
	logger := opts.Logger
	eng, err := worker.New(cfg, cat, opts)
	if err != nil {
		return nil, err
	}
	// The checks write to the data dir's disk (a vault's cache): what the
	// last run left there goes first, or a disk it filled fails them.
	eng.FreeLeftovers(ctx)
	// What would fail tonight's backup stops the start now; what may
	// pass by itself is a warning, here and on the console's overview.
	problems := eng.CheckStart(ctx)
	for _, p := range problems {
		if !p.Hard {
			logger.Warn("start-up check: "+p.Subject, "warning", p.Message)
		}
	}
	if hard := vigil.HardProblems(problems); len(hard) > 0 {
		return nil, usageError(fmt.Errorf("cannot start, %s to fix first:\n%s\n(vigil config check runs these checks without starting)", countProblems(len(hard), "problem"), listProblems(hard)))
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("listen on %s: %w: is another vigil running? change server.listen", cfg.Server.Listen, err)}
	}
	undo = append(undo, func() { ln.Close() })
	if err := eng.Start(ctx); err != nil {
		return nil, err
	}
	stopping := make(chan struct{})
	s := &server{
		URL:      "http://" + ln.Addr().String(),
		Token:    token,
		catalog:  cat,
		engine:   eng,
		lock:     lock,
		http:     newHTTPServer(cfg, newHandler(cfg, cat, eng, token, stopping, logger), token),
		done:     make(chan error, 1),
		stopping: stopping,
	}
	go func() { s.done <- s.http.Serve(ln) }()
	return s, nil
}

// openCatalog opens the config's catalog, migrating it when migrate is
// set. Otherwise a schema that is behind is refused, saying to run `vigil
// migrate`: on a shared PostgreSQL catalog the schema changes once, when a
// person upgrades, and never under running workers of an older vigil.
func openCatalog(ctx context.Context, cfg *config.Config, migrate bool) (*catalog.Catalog, error) {
	open := catalog.OpenCurrent
	if migrate {
		open = catalog.Open
	}
	cat, err := open(ctx, cfg.Catalog, cfg.DataDir)
	if errors.Is(err, catalog.ErrCatalogBehind) || errors.Is(err, catalog.ErrNewerCatalog) {
		return nil, usageError(err)
	}
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return cat, nil
}

// newHTTPServer serves h with the config's timeouts, and no more than its
// max_unauthenticated requests before sign-in at once: a client that
// trickles its request, or never reads its answer, is cut off, and a flood
// of them cannot hold back the operators. The routes that must outlast the
// write timeout lift it for themselves once their request is
// authenticated: long polls and vault verifications (api.Server), the
// console's event stream (a deadline per write).
func newHTTPServer(cfg *config.Config, h http.Handler, token string) *http.Server {
	read := time.Duration(cfg.Server.ReadTimeout)
	return &http.Server{
		Handler:           api.LimitUnauthenticated(token, cfg.Server.MaxUnauthenticated, int(max(read/time.Second, 1)), h),
		ReadHeaderTimeout: min(10*time.Second, read),
		ReadTimeout:       read,
		WriteTimeout:      time.Duration(cfg.Server.WriteTimeout),
		IdleTimeout:       time.Duration(cfg.Server.IdleTimeout),
	}
}

// newHandler serves the API under /api/v1 and /healthz, the metrics under
// /metrics with the API's token, and the web console at every other path,
// behind its own sign-in. stopping ends the API's long polls and the
// console's event streams.
func newHandler(cfg *config.Config, cat *catalog.Catalog, eng *worker.Engine, token string, stopping <-chan struct{}, logger *slog.Logger) http.Handler {
	apiServer := api.NewServer(cfg, cat, eng, token, stopping, logger)
	// The metrics and the console share one measurement of each S3
	// vault's size.
	sizes := metrics.NewVaultSizes(eng, 0, logger)
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", apiServer)
	// Every other path under /api/, whatever its method, is the API's,
	// which answers the ones it has no route for.
	mux.Handle("/api/", apiServer)
	// Prometheus scrapes with the same token (bearer_token_file).
	mux.Handle("GET /metrics", api.RequireToken(token,
		"missing or wrong API token: scrape with 'Authorization: Bearer <token>' (Prometheus: authorization: {credentials_file: <data_dir>/api-token})",
		metrics.Handler(metrics.NewCollector(cfg, cat, sizes, logger))))
	con := console.New(cfg, cat, eng, token, stopping, logger)
	con.UseVaultSizes(sizes)
	mux.Handle("/", con)
	return mux
}

// Stop stops taking requests, lets running jobs finish until ctx is done,
// then cancels them (they end ABORTED) and closes the catalog.
func (s *server) Stop(ctx context.Context) error {
	close(s.stopping) // long polls answer now, or Shutdown would wait for them
	err := s.http.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	err = errors.Join(err, s.engine.Stop(ctx))
	err = errors.Join(err, s.catalog.Close())
	s.lock.Close()
	return err
}

// lockDataDir makes sure one server at a time uses a data_dir: two would
// each think the other's running jobs were interrupted.
func lockDataDir(dir string) (*os.File, error) {
	return lockDir(dir, "data_dir %s is in use by another vigil serve: stop it, or give this one its own data_dir")
}

// lockWait is how long lockDir waits for another process to let go of the
// lock: a vigil killed a moment ago (by a person, or a service manager
// about to restart it) holds it until its last process has exited, and a
// child caught between fork and exec holds a copy of it too.
var lockWait = 5 * time.Second

// lockDir takes dir's lock file, or fails with busy (which has a %s for
// dir) when another process holds it for longer than lockWait.
func lockDir(dir, busy string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for deadline := time.Now().Add(lockWait); ; time.Sleep(50 * time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf(busy, dir)}
		}
	}
}

// loadOrCreateToken returns the API token, writing a new random one (mode
// 0600) on first start.
func loadOrCreateToken(dir string) (string, error) {
	path := filepath.Join(dir, tokenFile)
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 0 {
		return string(trimNewline(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read API token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate API token: %w", err)
	}
	token := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write API token: %w", err)
	}
	return token, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
