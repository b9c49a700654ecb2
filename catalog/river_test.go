package catalog_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// finishBackupArgs is a River job carrying a catalog change on: its worker
// marks a backup job COMPLETED, as vigil's workers will.
type finishBackupArgs struct {
	BackupJobID string `json:"backup_job_id"`
}

func (finishBackupArgs) Kind() string { return "catalog_test_finish_backup" }

type finishBackupWorker struct {
	river.WorkerDefaults[finishBackupArgs]

	catalog *catalog.Catalog
	errs    chan<- error
}

func (w *finishBackupWorker) Work(ctx context.Context, job *river.Job[finishBackupArgs]) error {
	err := w.catalog.InTx(ctx, func(tx *catalog.Tx) error {
		bj, err := tx.GetBackupJob(ctx, job.Args.BackupJobID)
		if err != nil {
			return err
		}
		bj.Status = vigil.BackupCompleted
		bj.CompletedAt = new(time.Now())
		if err := tx.UpdateBackupJob(ctx, &bj); err != nil {
			return err
		}
		return tx.AppendLog(ctx, bj.ID, "completed")
	})
	if err != nil && w.errs != nil {
		// A retried job would hide the error until the test times out.
		w.errs <- fmt.Errorf("work job %d: %w", job.ID, err)
	}
	return err
}

// riverClient is what the tests need of a river.Client, whatever its
// transaction type.
type riverClient interface {
	insertTx(ctx context.Context, tx *catalog.Tx, args river.JobArgs) error
	jobs(ctx context.Context, states ...rivertype.JobState) ([]*rivertype.JobRow, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

type riverClientOf[TTx any] struct {
	*river.Client[TTx]
}

func (c riverClientOf[TTx]) insertTx(ctx context.Context, tx *catalog.Tx, args river.JobArgs) error {
	_, err := c.InsertTx(ctx, tx.Raw().(TTx), args, nil)
	return err
}

func (c riverClientOf[TTx]) jobs(ctx context.Context, states ...rivertype.JobState) ([]*rivertype.JobRow, error) {
	params := river.NewJobListParams().First(10_000)
	if len(states) > 0 {
		params = params.States(states...)
	}
	res, err := c.JobList(ctx, params)
	if err != nil {
		return nil, err
	}
	return res.Jobs, nil
}

// newRiverClient builds a River client on the catalog's own pool, with the
// driver matching its dialect.
func newRiverClient(t *testing.T, c *catalog.Catalog, config *river.Config) riverClient {
	t.Helper()
	switch c.Dialect() {
	case catalog.DialectSQLite:
		client, err := river.NewClient(riversqlite.New(c.SQLDB()), config)
		requireNoError(t, err)
		return riverClientOf[*sql.Tx]{client}
	case catalog.DialectPostgres:
		client, err := river.NewClient(riverpgxv5.New(c.PGXPool()), config)
		requireNoError(t, err)
		return riverClientOf[pgx.Tx]{client}
	}
	t.Fatalf("no River driver for dialect %q", c.Dialect())
	return nil
}

func TestInTxCommitsRiverJobWithCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		workers := river.NewWorkers()
		river.AddWorker(workers, &finishBackupWorker{catalog: c})
		// Insert-only: no queues, so nothing works the jobs and they stay
		// where the transaction left them.
		client := newRiverClient(t, c, &river.Config{Workers: workers, Logger: testLogger(t, nil)})

		startBackup := func(fail error) (vigil.BackupJob, error) {
			job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupPending}
			return job, c.InTx(ctx, func(tx *catalog.Tx) error {
				if err := tx.InsertBackupJob(ctx, &job); err != nil {
					return err
				}
				if err := client.insertTx(ctx, tx, finishBackupArgs{BackupJobID: job.ID}); err != nil {
					return err
				}
				return fail
			})
		}

		committed, err := startBackup(nil)
		requireNoError(t, err)
		_, err = c.GetBackupJob(ctx, committed.ID)
		requireNoError(t, err)
		jobs, err := client.jobs(ctx)
		requireNoError(t, err)
		if len(jobs) != 1 {
			t.Fatalf("after commit River holds %d jobs, want 1", len(jobs))
		}
		var args finishBackupArgs
		requireNoError(t, json.Unmarshal(jobs[0].EncodedArgs, &args))
		requireEqual(t, args.BackupJobID, committed.ID)

		errAbort := errors.New("abort")
		rolledBack, err := startBackup(errAbort)
		if !errors.Is(err, errAbort) {
			t.Fatalf("InTx returned %v, want %v", err, errAbort)
		}
		_, err = c.GetBackupJob(ctx, rolledBack.ID)
		requireNotFound(t, err)
		jobs, err = client.jobs(ctx)
		requireNoError(t, err)
		if len(jobs) != 1 {
			t.Fatalf("after rollback River holds %d jobs, want still 1", len(jobs))
		}
	})
}

// TestRiverWorksJobsDuringCatalogWrites runs a River client working jobs,
// each a catalog transaction, while other goroutines write the catalog and
// insert jobs in the same transactions, and readers list. On SQLite this is
// the case the pool settings exist for: no writer may fail with
// SQLITE_BUSY, and none may deadlock.
func TestRiverWorksJobsDuringCatalogWrites(t *testing.T) {
	t.Parallel()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c := db.open(t)

		errs := make(chan error, 1000)
		workers := river.NewWorkers()
		river.AddWorker(workers, &finishBackupWorker{catalog: c, errs: errs})
		client := newRiverClient(t, c, &river.Config{
			Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 8}},
			Workers:           workers,
			FetchCooldown:     5 * time.Millisecond,
			FetchPollInterval: 20 * time.Millisecond,
			Logger:            testLogger(t, errs),
		})
		requireNoError(t, client.Start(ctx))
		t.Cleanup(func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := client.Stop(stopCtx); err != nil {
				t.Errorf("stop River client: %v", err)
			}
		})

		const writers, perWriter = 4, 25
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupPending, Resource: fmt.Sprintf("r%d", w)}
					err := c.InTx(ctx, func(tx *catalog.Tx) error {
						if err := tx.InsertBackupJob(ctx, &job); err != nil {
							return err
						}
						return client.insertTx(ctx, tx, finishBackupArgs{BackupJobID: job.ID})
					})
					if err != nil {
						errs <- fmt.Errorf("writer %d, job %d: %w", w, i, err)
						return
					}
					// A write outside any transaction, between them.
					if err := c.AppendLog(ctx, job.ID, "queued"); err != nil {
						errs <- fmt.Errorf("writer %d, log %d: %w", w, i, err)
						return
					}
				}
			})
		}
		var readers atomic.Bool
		readers.Store(true)
		wg.Go(func() {
			for readers.Load() {
				if _, err := c.ListBackupJobs(ctx, catalog.BackupJobFilter{Status: []vigil.BackupJobStatus{vigil.BackupPending}}); err != nil {
					errs <- fmt.Errorf("reader: %w", err)
					return
				}
			}
		})

		// Done when every backup job is COMPLETED by its River job.
		for {
			done, err := c.ListBackupJobs(ctx, catalog.BackupJobFilter{Status: []vigil.BackupJobStatus{vigil.BackupCompleted}})
			if err != nil {
				t.Fatalf("list completed backup jobs: %v", err)
			}
			if len(done) == writers*perWriter {
				break
			}
			select {
			case err := <-errs:
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatalf("%d of %d backup jobs completed before the deadline", len(done), writers*perWriter)
			case <-time.After(20 * time.Millisecond):
			}
		}
		readers.Store(false)
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	})
}

// testLogger is River's logger for a test: everything goes to t.Log, and an
// error River logs (a failed completion, a busy database) also goes to errs
// when it is given, failing the test.
func testLogger(t *testing.T, errs chan<- error) *slog.Logger {
	return slog.New(&testLogHandler{t: t, errs: errs})
}

type testLogHandler struct {
	t     *testing.T
	errs  chan<- error
	attrs []slog.Attr
}

func (h *testLogHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}

func (h *testLogHandler) Handle(_ context.Context, r slog.Record) error {
	msg := r.Level.String() + " " + r.Message
	for _, a := range h.attrs {
		msg += " " + a.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	h.t.Log(msg)
	if h.errs != nil && r.Level >= slog.LevelError {
		select {
		case h.errs <- errors.New("River logged: " + msg):
		default:
		}
	}
	return nil
}

func (h *testLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &testLogHandler{t: h.t, errs: h.errs, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

func (h *testLogHandler) WithGroup(string) slog.Handler { return h }
