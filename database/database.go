// Package database dumps and loads the databases of the database resource
// types (resource/postgres, resource/mysql, resource/sqlite): PostgreSQL
// with pg_dump and pg_restore, MySQL and MariaDB with mariadb-dump (or
// mysqldump) and the mariadb (or mysql) client, and SQLite through the
// SQLite that vigil links.
//
// # Dumps
//
// Dump writes a consistent dump into an io.Writer, which the caller pipes
// into a vault: no copy of the whole dump is kept on disk. With the dump it
// records each table's row count, as the dump holds it, so that a restore
// test can check the restored copy table by table:
//
//   - PostgreSQL: a REPEATABLE READ transaction exports its snapshot, pg_dump
//     dumps with --snapshot, and the rows are counted in that transaction
//     while pg_dump runs: the counts and the dump see the same data. The
//     dump is pg_dump's custom format (the one pg_restore loads, in parallel
//     with -j from a file), uncompressed: the vault compresses, and an
//     uncompressed dump deduplicates against yesterday's.
//   - MySQL/MariaDB: mariadb-dump --single-transaction. A consistent
//     snapshot cannot be shared with a second connection, so the rows are
//     counted in the dump stream itself as it passes (package dumpcount).
//   - SQLite: VACUUM INTO makes a consistent copy of the live database in a
//     temporary file, which is counted, streamed, and removed.
//
// # New databases
//
// A restore always creates a new database (a new file for SQLite) and
// refuses a name that exists. The database is marked as vigil's the moment
// it exists (a comment naming the restore job), and Drop drops only a
// database that carries that exact mark: vigil never drops a database it
// did not create.
package database

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/dbclient"
)

// ErrExists means the new database's name is taken: nothing was created,
// and the existing database was not touched.
var ErrExists = errors.New("already exists")

// ErrNotMarked means a database exists under the name vigil would drop, but
// does not carry the mark of the restore that was to create it: vigil did
// not create it (or was stopped between creating and marking it), so it is
// left alone.
var ErrNotMarked = errors.New("does not carry vigil's mark")

// Source is a database to back up.
type Source struct {
	Engine string          // EnginePostgres, EngineMySQL or EngineSQLite
	Server dbclient.Server // postgres and mysql
	Path   string          // sqlite: the database file
	Tools  dbclient.Tools
	// TempDir is where SQLite's consistent copy is made.
	TempDir string
}

// DumpName is the name of the dump file in a database recovery point.
func DumpName(name string) string {
	e, err := engineOf(name)
	if err != nil {
		return sqliteEngine().dumpName
	}
	return e.dumpName
}

// Dump writes a consistent dump of src into w and returns what it recorded:
// the server's version and each table's row count. When it fails, what was
// written to w is not a usable dump.
func Dump(ctx context.Context, src Source, w io.Writer) (*vigil.DatabaseInfo, error) {
	e, err := engineOf(src.Engine)
	if err != nil {
		return nil, err
	}
	return e.dump(ctx, src, w)
}

// Target is a new database to restore into.
type Target struct {
	Engine string
	// Server is the server to create the database on, connected to its
	// own database (the resource's) to do so; Database names the new one.
	Server   dbclient.Server
	Database string
	// Path is the new SQLite file.
	Path string
	// Mark is the comment that marks the database as made by one restore,
	// such as "vigil restore job rj-…".
	Mark string
	// CreateIssued says that the restore job recorded, before it sent
	// CREATE DATABASE, that it was about to, and that CREATE did not fail
	// for the name being taken. A database under the name without a mark
	// is then the job's own, created by a vigil that died before it could
	// mark it (CREATE DATABASE and its comment are two statements, and
	// the server finishes CREATE without its client), and Drop drops it.
	// One with another mark is still left alone.
	CreateIssued bool
	Tools        dbclient.Tools
	// Info is the recovery point's record: the new database gets its
	// encoding and collation.
	Info *vigil.DatabaseInfo
	// DisableEvents creates a MySQL dump's scheduled events DISABLED, so
	// that none runs in a restore test's copy.
	DisableEvents bool
}

// String names the new database for people: a DSN without password, or
// the SQLite file.
func (t Target) String() string {
	if e, _ := engineOf(t.Engine); e.file {
		return t.Path
	}
	return t.Server.WithDatabase(t.Database).String()
}

// Create makes the new, empty, marked database. It fails with ErrExists,
// touching nothing, when the name is taken.
func Create(ctx context.Context, t Target) error {
	e, err := engineOf(t.Engine)
	if err != nil {
		return err
	}
	return e.create(ctx, t)
}

// Exists reports whether the target's name is taken.
func Exists(ctx context.Context, t Target) (bool, error) {
	e, err := engineOf(t.Engine)
	if err != nil {
		return false, err
	}
	return e.exists(ctx, t)
}

// Load reads a dump from r into the database Create made.
func Load(ctx context.Context, t Target, r io.Reader) error {
	e, err := engineOf(t.Engine)
	if err != nil {
		return err
	}
	return e.load(ctx, t, r)
}

// Release hands a restored database over to its user once a plain
// restore completed: a MySQL mark table goes (comments stay; they only
// say where the database came from).
func Release(ctx context.Context, t Target) error {
	if e, _ := engineOf(t.Engine); e.release != nil {
		return e.release(ctx, t)
	}
	return nil
}

// Drop deletes the target database, first ending every connection to it,
// if it carries t.Mark. A database that does not exist is not an error; one
// without the mark is left alone (ErrNotMarked). An SQLite file is simply
// removed: it lives where only its restore put it.
func Drop(ctx context.Context, t Target) error {
	e, err := engineOf(t.Engine)
	if err != nil {
		return err
	}
	if t.Mark == "" && !e.file {
		// An empty mark would match every database without one.
		return fmt.Errorf("drop %s: no mark to check it against", t)
	}
	return e.drop(ctx, t)
}

// DB is a restored database, open for validation.
type DB struct {
	engine engine
	db     *sql.DB
	redact func(string) string
}

// Open connects to the target database.
func Open(ctx context.Context, t Target) (*DB, error) {
	e, err := engineOf(t.Engine)
	if err != nil {
		return nil, err
	}
	db, err := e.open(t)
	if err != nil {
		return nil, errors.New(t.Server.Redact(err.Error()))
	}
	db.SetMaxOpenConns(2)
	out := &DB{engine: e, db: db, redact: t.Server.Redact}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %s", t, out.redact(err.Error()))
	}
	return out, nil
}

// CheckSource connects to the database src names, as its backup would,
// and reads from it; it writes nothing. Its error never holds a password.
func CheckSource(ctx context.Context, src Source) error {
	e, err := engineOf(src.Engine)
	if err != nil {
		return err
	}
	if e.file {
		db, err := openSQLite(src.Path, "ro")
		if err != nil {
			return err
		}
		defer db.Close()
		var n int
		return db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n)
	}
	db, err := Open(ctx, Target{Engine: src.Engine, Server: src.Server, Database: src.Server.Database})
	if err != nil {
		return err
	}
	return db.Close()
}

// Ping checks that the database still answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// Close closes the connections.
func (d *DB) Close() error { return d.db.Close() }

// Tables counts the rows of every table.
func (d *DB) Tables(ctx context.Context) ([]vigil.TableRows, error) {
	tables, err := d.tables(ctx)
	if err != nil {
		return nil, errors.New(d.redact(err.Error()))
	}
	return tables, nil
}

func (d *DB) tables(ctx context.Context) ([]vigil.TableRows, error) {
	return countTables(ctx, d.db, d.engine.tablesQuery, d.engine.quote)
}

// IntegrityCheck runs the engine's check of a database's structure
// (SQLite's PRAGMA integrity_check); engines with nothing equivalent that
// is cheap pass.
func (d *DB) IntegrityCheck(ctx context.Context) error {
	if d.engine.integrityCheck == nil {
		return nil
	}
	return d.engine.integrityCheck(ctx, d.db)
}

// Query runs q and returns its column names and rows, each value as text:
// NULL, true/false, numbers in decimal, times in RFC 3339, the rest as the
// server sends it.
func (d *DB) Query(ctx context.Context, q string) ([]string, [][]string, error) {
	cols, rows, err := query(ctx, d.db, q)
	if err != nil {
		return nil, nil, errors.New(d.redact(err.Error()))
	}
	return cols, rows, nil
}

func query(ctx context.Context, db *sql.DB, q string) ([]string, [][]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]string
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = Text(v)
		}
		out = append(out, row)
	}
	return cols, out, rows.Err()
}

// Text writes a value from database/sql as text.
func Text(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(v)
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// CompareTables says how got (the restored copy) differs from want (the
// recovery point's record), one line per table: missing, unexpected, or
// with a different row count. Empty means equal.
func CompareTables(want, got []vigil.TableRows) []string {
	have := map[string]int64{}
	for _, t := range got {
		have[t.Name] = t.Rows
	}
	var diffs []string
	for _, t := range want {
		rows, ok := have[t.Name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("table %s is missing (the recovery point has it, with %d rows)", t.Name, t.Rows))
		case rows != t.Rows:
			diffs = append(diffs, fmt.Sprintf("table %s has %d rows, the recovery point %d", t.Name, rows, t.Rows))
		}
		delete(have, t.Name)
	}
	var extra []string
	for name := range have {
		extra = append(extra, name)
	}
	slices.Sort(extra)
	for _, name := range extra {
		diffs = append(diffs, fmt.Sprintf("table %s is not in the recovery point", name))
	}
	return diffs
}

// countTables lists tables with list (one column: the name as the
// engine's identifier quoting needs it, or raw with quote) and counts each.
func countTables(ctx context.Context, db *sql.DB, list string, quote func(string) string) ([]vigil.TableRows, error) {
	_, rows, err := query(ctx, db, list)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	tables := make([]vigil.TableRows, 0, len(rows))
	for _, r := range rows {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quote(r[0])).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", r[0], err)
		}
		tables = append(tables, vigil.TableRows{Name: r[0], Rows: n})
	}
	return tables, nil
}

// runTool runs one client program, feeding stdin and writing its standard
// output to stdout. Its error carries the program's last output lines,
// with the password redacted.
func runTool(ctx context.Context, srv dbclient.Server, path string, args []string, stdin io.Reader, stdout io.Writer) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), srv.PasswordEnv()...)
	copied := func() error { return nil }
	if stdin != nil {
		f, wait, err := feed(stdin)
		if err != nil {
			return err
		}
		cmd.Stdin, copied = f, wait
	}
	// A tool's output is read to its end before Wait: exec's own copier
	// would give a slow reader (a vault flushing) only WaitDelay once the
	// tool has exited.
	var out io.ReadCloser
	if f, ok := stdout.(*os.File); ok {
		cmd.Stdout = f
	} else if stdout != nil {
		var err error
		if out, err = cmd.StdoutPipe(); err != nil {
			return err
		}
	}
	var stderr tailBuffer
	cmd.Stderr = &stderr
	// A killed tool's pipes are closed after this long even if a child
	// still holds them.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		copied()
		return fmt.Errorf("start %s: %w", path, err)
	}
	var outErr error
	if out != nil {
		_, outErr = io.CopyBuffer(stdout, out, make([]byte, 256<<10))
		// A reader that failed stops the tool: it gets EPIPE.
		out.Close()
	}
	err := cmd.Wait()
	copyErr := copied()
	if copyErr == nil && outErr != nil {
		copyErr = outErr
	}
	name := path[strings.LastIndexByte(path, '/')+1:]
	switch {
	case err == nil && copyErr == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s was stopped: %w", name, context.Cause(ctx))
	case copyErr != nil:
		// The input broke off: that is the cause, whatever the tool
		// made of it.
		return fmt.Errorf("passing %s's data on failed: %w", name, copyErr)
	}
	said := strings.TrimSpace(stderr.String())
	if said == "" {
		return fmt.Errorf("%s failed: %s", name, srv.Redact(err.Error()))
	}
	return fmt.Errorf("%s failed (%s): %s", name, srv.Redact(err.Error()), srv.Redact(said))
}

// tailBuffer keeps the last few KiB written to it: a tool's last words.
type tailBuffer struct{ b []byte }

const maxToolOutput = 4 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*maxToolOutput {
		t.b = append(t.b[:0], t.b[len(t.b)-maxToolOutput:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	b := t.b
	if len(b) > maxToolOutput {
		b = b[len(b)-maxToolOutput:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		return "…" + string(b)
	}
	return string(b)
}
