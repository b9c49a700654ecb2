// Package catalog is vigil's record of its work: backup and restore jobs,
// recovery points and job logs, kept in SQLite (the embedded default) or
// PostgreSQL (for many workers), with one set of migrations for both.
//
// River's tables live in the same database, so a catalog change and the
// River job that carries it on commit together: inside Catalog.InTx, pass
// tx.Raw() to River's Client.InsertTx. There is then no moment where a job
// record says RUNNING and no River job exists to finish it, or the reverse.
//
// # Choosing the database
//
// Open takes a DSN. An empty DSN means SQLite at <dataDir>/vigil.db; a
// postgres:// or postgresql:// URL means PostgreSQL. To keep vigil's and
// River's tables in a PostgreSQL schema other than the default, name it in
// the URL's search_path parameter (postgres://host/db?search_path=vigil);
// pgx sends it when each connection starts, so every query of the catalog
// and of River (leave river.Config.Schema empty) finds its tables there.
// The schema must exist.
//
// # Transactions on SQLite
//
// SQLite allows one writer at a time. The catalog opens SQLite in WAL mode,
// with several connections and every transaction begun IMMEDIATE (taking the
// write lock up front), so readers never wait, writers queue on
// busy_timeout, and River can work jobs while the catalog is written
// (measured: River working jobs that each write the catalog, while other
// goroutines insert catalog rows and River jobs together and others list,
// never meets SQLITE_BUSY). Always use the *Tx inside InTx: a write through
// the *Catalog there waits for the very transaction that waits for it, and
// fails after busy_timeout with an error saying so; a read through the
// *Catalog does not see the transaction's writes.
//
// Give SQLDB to riversqlite.New as it is. Do not SetMaxOpenConns(1) on it,
// as riversqlite's documentation suggests for pools without these
// settings: with a single connection, any use of the *Catalog inside InTx,
// even a read, would wait forever instead of failing.
//
// Times are stored as unix microseconds in UTC, so they come back in UTC
// at microsecond precision.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialects, as Catalog.Dialect reports them.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// urlScheme matches what may precede :// in a URL, and nothing secret.
var urlScheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]{0,31}$`)

// SQLiteFile is the name of the SQLite catalog inside the data directory.
const SQLiteFile = "vigil.db"

// SQLite pool settings; see the package documentation for why.
const (
	// busyTimeout is how long a SQLite writer waits for the write lock
	// before failing. Transactions hold it for milliseconds; the margin is
	// for slow disks, where synchronous=FULL makes every commit an fsync.
	busyTimeout = 10 * time.Second

	// sqliteMaxConns bounds the SQLite pool. Only one connection writes at
	// a time, but the others read concurrently under WAL, and River's
	// services (fetch, complete, elect, maintain) each want one.
	sqliteMaxConns = 8
)

// Catalog is vigil's catalog. Its record methods (InsertBackupJob, …) each
// run in their own transaction; use InTx to group several, or to commit
// them with a River job.
type Catalog struct {
	records

	dialect string
	sqlDB   *sql.DB
	pgxPool *pgxpool.Pool
	// beatPool is one connection for heartbeats, on PostgreSQL.
	beatPool *pgxpool.Pool
}

// Tx is a catalog transaction, valid only inside the function given to
// Catalog.InTx. It has the same record methods as Catalog.
type Tx struct {
	records

	raw any
}

// Raw returns the driver's transaction, *sql.Tx on SQLite and pgx.Tx on
// PostgreSQL, for River's Client.InsertTx and friends.
func (tx *Tx) Raw() any { return tx.raw }

// Open opens the catalog. An empty dsn means SQLite at <dataDir>/vigil.db,
// creating dataDir (mode 0700) and the file (mode 0600) if they are
// missing; a postgres:// or postgresql:// URL means PostgreSQL. It brings
// vigil's tables and River's up to date before returning, and refuses a
// catalog written by a newer vigil (ErrNewerCatalog). `vigil migrate` and
// the single-process SQLite server open the catalog this way.
func Open(ctx context.Context, dsn, dataDir string) (*Catalog, error) {
	c, err := connect(ctx, dsn, dataDir)
	if err != nil {
		return nil, err
	}
	if err := c.migrate(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return c, nil
}

// OpenCurrent opens the catalog as Open does, but changes nothing in its
// schema: it refuses a catalog that is behind this vigil's migrations
// (ErrCatalogBehind, saying to run `vigil migrate`) or ahead of them
// (ErrNewerCatalog). Processes sharing a PostgreSQL catalog open it this
// way, so that a schema changes only when a person upgrades it, once, and
// never under workers of the older vigil still running jobs.
func OpenCurrent(ctx context.Context, dsn, dataDir string) (*Catalog, error) {
	c, err := connect(ctx, dsn, dataDir)
	if err != nil {
		return nil, err
	}
	if err := c.checkSchema(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return c, nil
}

// Migrate brings the catalog's schema up to date, as Open does, and closes
// it again: `vigil migrate`. It returns the versions before and after.
func Migrate(ctx context.Context, dsn, dataDir string) (before, after SchemaVersions, err error) {
	c, err := connect(ctx, dsn, dataDir)
	if err != nil {
		return before, after, err
	}
	defer c.Close()
	if before, err = c.SchemaVersions(ctx); err != nil {
		return before, after, fmt.Errorf("migrate catalog: %w", err)
	}
	if err := c.migrate(ctx); err != nil {
		return before, after, fmt.Errorf("migrate catalog: %w", err)
	}
	if after, err = c.SchemaVersions(ctx); err != nil {
		return before, after, fmt.Errorf("migrate catalog: %w", err)
	}
	return before, after, nil
}

// connect opens the catalog's database, without looking at its schema.
func connect(ctx context.Context, dsn, dataDir string) (*Catalog, error) {
	var (
		c   *Catalog
		err error
	)
	switch {
	case dsn == "":
		c, err = openSQLite(dataDir)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		c, err = openPostgres(ctx, dsn)
	default:
		// The DSN itself may hold a password, so at most its scheme is echoed.
		what := "unsupported catalog address"
		if scheme, _, found := strings.Cut(dsn, "://"); found && urlScheme.MatchString(scheme) {
			what = fmt.Sprintf("unsupported catalog address scheme %q", scheme)
		}
		return nil, fmt.Errorf("open catalog: %s: leave it empty for SQLite in the data directory, "+
			"or give a PostgreSQL URL starting with postgres:// or postgresql://", what)
	}
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return c, nil
}

func openSQLite(dataDir string) (*Catalog, error) {
	if dataDir == "" {
		return nil, errors.New("no data directory for the SQLite catalog: set the data directory, or give a PostgreSQL URL")
	}
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve data directory: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dataDir, SQLiteFile)
	// Creating the file ourselves sets its mode: SQLite would use 0644 less
	// the umask, and gives its -wal and -shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create catalog file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("create catalog file: %w", err)
	}

	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(sqliteMaxConns)
	// Keep connections open: each new one re-runs the pragmas, and closing
	// the last one checkpoints and removes the WAL.
	db.SetMaxIdleConns(sqliteMaxConns)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &Catalog{
		records: records{db: sqlDBTX{db}},
		dialect: DialectSQLite,
		sqlDB:   db,
	}, nil
}

// sqliteDSN is the modernc.org/sqlite address of the catalog file with the
// pragmas every connection gets:
//
//   - journal_mode=WAL: readers do not block the writer nor it them, so
//     River's fetches and the API's reads go on during a write.
//   - busy_timeout: a writer finding the lock taken waits instead of failing
//     at once with SQLITE_BUSY.
//   - _txlock=immediate: every transaction takes the write lock at BEGIN. A
//     deferred transaction that reads and then writes cannot wait for the
//     lock (SQLite fails it with SQLITE_BUSY whatever busy_timeout says,
//     because its snapshot may be stale); River's transactions read first.
//   - synchronous=FULL: a commit is on disk when it returns. Catalog commits
//     are few and follow work that takes seconds; losing a recorded
//     recovery point to a power cut costs more than an fsync.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	return (&url.URL{Scheme: "file", Path: path}).String() + "?" + q.Encode()
}

func openPostgres(ctx context.Context, dsn string) (*Catalog, error) {
	config, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password from the URL it quotes.
		return nil, fmt.Errorf("parse PostgreSQL URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	// Connect now, so a wrong address is reported by Open and not by the
	// first query, and check the schema the tables will go to exists.
	var schema *string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", redactedHost(config), err)
	}
	if schema == nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL at %s: no schema of search_path %q exists: "+
			"create it (CREATE SCHEMA …) or fix search_path in the catalog URL",
			redactedHost(config), config.ConnConfig.RuntimeParams["search_path"])
	}
	// Heartbeats have a connection of their own (HeartbeatWorker).
	beatConfig := config.Copy()
	beatConfig.MaxConns, beatConfig.MinConns = 1, 0
	beatPool, err := pgxpool.NewWithConfig(ctx, beatConfig)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return &Catalog{
		records:  records{db: pgxDBTX{pool}},
		dialect:  DialectPostgres,
		pgxPool:  pool,
		beatPool: beatPool,
	}, nil
}

// HeartbeatWorker is records.HeartbeatWorker, on PostgreSQL through a
// connection of its own: a pool that jobs' work keeps busy must not hold
// up the beat that says this process is alive, or the others count it
// dead while it works.
func (c *Catalog) HeartbeatWorker(ctx context.Context, id string, at time.Time, running []string) error {
	if c.beatPool == nil {
		return c.records.HeartbeatWorker(ctx, id, at, running)
	}
	return records{db: pgxDBTX{c.beatPool}}.HeartbeatWorker(ctx, id, at, running)
}

// redactedHost names a PostgreSQL server in an error without credentials.
func redactedHost(config *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d/%s", config.ConnConfig.Host, config.ConnConfig.Port, config.ConnConfig.Database)
}

// Close closes the catalog's connections. River clients using SQLDB or
// PGXPool must be stopped first.
func (c *Catalog) Close() error {
	if c.sqlDB != nil {
		if err := c.sqlDB.Close(); err != nil {
			return fmt.Errorf("close catalog: %w", err)
		}
	}
	if c.pgxPool != nil {
		c.pgxPool.Close()
		c.beatPool.Close()
	}
	return nil
}

// Dialect returns DialectSQLite or DialectPostgres.
func (c *Catalog) Dialect() string { return c.dialect }

// SQLDB returns the SQLite pool, for riversqlite.New; nil on PostgreSQL.
func (c *Catalog) SQLDB() *sql.DB { return c.sqlDB }

// PGXPool returns the PostgreSQL pool, for riverpgxv5.New; nil on SQLite.
func (c *Catalog) PGXPool() *pgxpool.Pool { return c.pgxPool }

// InTx runs fn in one transaction, committing when fn returns nil and
// rolling back when it returns an error (which InTx returns as is) or
// panics. Inside fn, use tx for every catalog call (on SQLite, a write
// through c would wait for this very transaction) and pass tx.Raw() to
// River's InsertTx. Keep fn short: on SQLite it holds the only write lock.
// On PostgreSQL, an error that is the server being unreachable, with
// nothing committed, is marked ErrUnreachable: fn may then run again.
func (c *Catalog) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	switch c.dialect {
	case DialectSQLite:
		sqlTx, err := c.sqlDB.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin catalog transaction: %w", explainSQLiteError(err))
		}
		return finishTx(&Tx{records: records{db: sqlDBTX{sqlTx}}, raw: sqlTx}, fn,
			func() error { return explainSQLiteError(sqlTx.Commit()) },
			sqlTx.Rollback)
	default:
		return inPgxTx(ctx, c.pgxPool, fn)
	}
}

// pgxBeginner is satisfied by *pgxpool.Pool and *pgxpool.Conn.
type pgxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

func inPgxTx(ctx context.Context, db pgxBeginner, fn func(tx *Tx) error) error {
	pgxTx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return markUnreachable(fmt.Errorf("begin catalog transaction: %w", err), false)
	}
	// A rollback must run even when ctx is what ended fn.
	rollbackCtx := context.WithoutCancel(ctx)
	atCommit := false
	err = finishTx(&Tx{records: records{db: pgxDBTX{pgxTx}}, raw: pgxTx}, fn,
		func() error { atCommit = true; return pgxTx.Commit(ctx) },
		func() error { return pgxTx.Rollback(rollbackCtx) })
	return markUnreachable(err, atCommit)
}

func finishTx(tx *Tx, fn func(tx *Tx) error, commit, rollback func() error) (err error) {
	committed := false
	defer func() {
		if committed {
			return
		}
		// Rolling back also covers a panic in fn, which then carries on.
		if rbErr := rollback(); rbErr != nil && err != nil {
			err = errors.Join(err, fmt.Errorf("roll back catalog transaction: %w", rbErr))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committed = true
	if err := commit(); err != nil {
		return fmt.Errorf("commit catalog transaction: %w", err)
	}
	return nil
}
