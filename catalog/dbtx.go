package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/vigil-backup/vigil"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dbtx is what the record methods need from a database handle. It hides
// whether that handle is a pool or a transaction, and whether it speaks
// database/sql (SQLite) or pgx (PostgreSQL), so every query is written once.
//
// Queries use ? placeholders; the PostgreSQL adapter rebinds them to $n.
type dbtx interface {
	// exec runs a statement and returns the number of rows it affected.
	exec(ctx context.Context, query string, args ...any) (int64, error)
	// query runs a statement returning rows; the caller must Close them.
	query(ctx context.Context, query string, args ...any) (rows, error)
	// queryRow runs a statement returning at most one row. Its Scan returns
	// errNoRows when there was none.
	queryRow(ctx context.Context, query string, args ...any) row
}

// rows is a result set, the common part of *sql.Rows and pgx.Rows.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// row is a single-row result, the common part of *sql.Row and pgx.Row.
type row interface {
	Scan(dest ...any) error
}

// errNoRows is what row.Scan returns, on either driver, when no row matched.
var errNoRows = errors.New("no rows in result set")

// sqlExecutor is satisfied by both *sql.DB and *sql.Tx.
type sqlExecutor interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqlDBTX adapts a database/sql handle (the SQLite catalog) to dbtx.
type sqlDBTX struct {
	db sqlExecutor
}

func (d sqlDBTX) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, explainSQLiteError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("read rows affected: %w", err)
	}
	return n, nil
}

func (d sqlDBTX) query(ctx context.Context, query string, args ...any) (rows, error) {
	r, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, explainSQLiteError(err)
	}
	return r, nil
}

func (d sqlDBTX) queryRow(ctx context.Context, query string, args ...any) row {
	return sqlRow{d.db.QueryRowContext(ctx, query, args...)}
}

type sqlRow struct{ *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoRows
	}
	return explainSQLiteError(err)
}

// explainSQLiteError adds what to do to SQLite's "database is locked". With
// the pragmas Open sets, that error means a writer waited busyTimeout for the
// write lock in vain; the usual cause is code inside InTx writing through
// the *Catalog instead of its *Tx, so waiting for its own transaction.
func explainSQLiteError(err error) error {
	var sqliteErr *sqlite.Error
	if err == nil || !errors.As(err, &sqliteErr) || sqliteErr.Code()&0xff != sqlite3.SQLITE_BUSY {
		return err
	}
	return fmt.Errorf("%w: another writer kept the catalog's write lock (SQLite waits up to %s for it); "+
		"inside Catalog.InTx write through the *Tx, not the *Catalog, and keep transactions short", err, busyTimeout)
}

// pgxExecutor is satisfied by both *pgxpool.Pool and pgx.Tx.
type pgxExecutor interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgxDBTX adapts a pgx handle (the PostgreSQL catalog) to dbtx.
type pgxDBTX struct {
	db pgxExecutor
}

func (d pgxDBTX) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := d.db.Exec(ctx, rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (d pgxDBTX) query(ctx context.Context, query string, args ...any) (rows, error) {
	r, err := d.db.Query(ctx, rebind(query), args...)
	if err != nil {
		return nil, err
	}
	return pgxRows{r}, nil
}

func (d pgxDBTX) queryRow(ctx context.Context, query string, args ...any) row {
	return pgxRow{d.db.QueryRow(ctx, rebind(query), args...)}
}

type pgxRows struct{ pgx.Rows }

func (r pgxRows) Close() error {
	r.Rows.Close()
	return r.Rows.Err()
}

type pgxRow struct{ pgx.Row }

func (r pgxRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	return err
}

// rebind turns the ? placeholders of a query into PostgreSQL's $1, $2, ….
// A ? inside a quoted string, a quoted identifier or a comment is left alone.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(query[i+1:], c)
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+2])
			i += end + 1
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+1])
			i += end
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+4])
			i += end + 3
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Recorder writes a state change and its events in one transaction: the
// change and its events (and their deliveries to notifications) exist
// together or not at all. Record must write even when ctx is cancelled: a
// final status is written while vigil stops. The worker is one.
type Recorder interface {
	Record(ctx context.Context, update func(ctx context.Context, tx *Tx) error, events ...vigil.Event) error
}
