package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for validation queries

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/dbclient"
)

// postgresTablesQuery lists the tables whose rows a dump holds: ordinary
// and partitioned tables outside the system schemas, except those an
// extension creates (CREATE EXTENSION makes them again on restore). Names
// are quoted as SQL needs them, schema first.
const postgresTablesQuery = `
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1`

// quotedAsIs is the quoting of names that come quoted already.
func quotedAsIs(s string) string { return s }

func postgresEngine() engine {
	return engine{
		dumpName: "dump.pgdump",
		dump:     dumpPostgres,
		create:   createPostgres,
		exists: func(ctx context.Context, t Target) (bool, error) {
			_, found, err := postgresMark(ctx, t)
			return found, err
		},
		load:        loadPostgres,
		drop:        dropPostgres,
		open:        func(t Target) (*sql.DB, error) { return sql.Open("pgx", t.Server.WithDatabase(t.Database).DSN()) },
		tablesQuery: postgresTablesQuery,
		quote:       quotedAsIs,
	}
}

func dumpPostgres(ctx context.Context, src Source, w io.Writer) (*vigil.DatabaseInfo, error) {
	srv := src.Server
	fail := func(what string, err error) error {
		return fmt.Errorf("%s: %s", what, srv.Redact(err.Error()))
	}
	conn, err := pgx.Connect(ctx, srv.DSN())
	if err != nil {
		return nil, fail("connect to "+srv.String(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	// The snapshot this transaction exports is the one pg_dump dumps. The
	// transaction stays open until pg_dump is done, which keeps the
	// snapshot importable; it reads only the catalog, so it holds no lock
	// on any table.
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fail("begin a snapshot transaction", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck

	info := &vigil.DatabaseInfo{Engine: EnginePostgres, Database: srv.Database}
	var snapshot string
	err = tx.QueryRow(ctx, `SELECT pg_export_snapshot(), current_setting('server_version'),
		pg_encoding_to_char(d.encoding), d.datcollate, d.datctype
		FROM pg_database d WHERE d.datname = current_database()`).
		Scan(&snapshot, &info.Server, &info.Encoding, &info.Collate, &info.Ctype)
	if err != nil {
		return nil, fail("export a snapshot", err)
	}

	// The rows are counted in that same snapshot, so counts and dump
	// agree whatever is written meanwhile, and before pg_dump starts, in
	// a transaction that ends first: its table locks must be gone before
	// pg_dump takes its own. Held on, they would queue an ALTER TABLE
	// that pg_dump would then queue behind, waiting on vigil, which waits
	// on pg_dump: a deadlock the server cannot see, blocking the app.
	if info.Tables, err = countInSnapshot(ctx, srv, snapshot); err != nil {
		return nil, fail("count rows", err)
	}
	err = runTool(ctx, srv, src.Tools.PGDump, []string{
		"--format=custom", "--compress=0", "--snapshot=" + snapshot,
		"--no-password", "--dbname=" + srv.PGConnArg(),
	}, nil, w)
	if err != nil {
		return nil, err
	}
	return info, nil
}

// countInSnapshot counts every table's rows as the exported snapshot sees
// them, in a transaction of its own that is over when it returns.
func countInSnapshot(ctx context.Context, srv dbclient.Server, snapshot string) ([]vigil.TableRows, error) {
	conn, err := pgx.Connect(ctx, srv.DSN())
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapshot)); err != nil {
		return nil, err
	}
	tables, err := countPostgres(ctx, tx)
	if err != nil {
		return nil, err
	}
	return tables, tx.Commit(ctx)
}

func countPostgres(ctx context.Context, tx pgx.Tx) ([]vigil.TableRows, error) {
	rows, err := tx.Query(ctx, postgresTablesQuery)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	tables := make([]vigil.TableRows, 0, len(names))
	for _, name := range names {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+name).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", name, err)
		}
		tables = append(tables, vigil.TableRows{Name: name, Rows: n})
	}
	return tables, nil
}

// adminConn connects to the target server through its own database (the
// resource's), from where databases are created and dropped.
func adminConn(ctx context.Context, t Target) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, t.Server.DSN())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %s", t.Server.String(), t.Server.Redact(err.Error()))
	}
	return conn, nil
}

func createPostgres(ctx context.Context, t Target) error {
	conn, err := adminConn(ctx, t)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	name := pgx.Identifier{t.Database}.Sanitize()
	// template0, as pg_restore's documentation asks: template1 may hold
	// objects of its own that would collide with the dump's.
	stmt := "CREATE DATABASE " + name + " TEMPLATE template0"
	if i := t.Info; i != nil && i.Encoding != "" {
		stmt += " ENCODING " + quoteLiteral(i.Encoding) + " LC_COLLATE " + quoteLiteral(i.Collate) + " LC_CTYPE " + quoteLiteral(i.Ctype)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
			return fmt.Errorf("database %q on %s %w", t.Database, t.Server.ServerString(), ErrExists)
		}
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
			return fmt.Errorf("create database %q: %s: restores create a new database, so the user needs CREATEDB (ALTER ROLE name CREATEDB), or give target_dsn a user that has it", t.Database, t.Server.Redact(err.Error()))
		}
		return fmt.Errorf("create database %q: %s", t.Database, t.Server.Redact(err.Error()))
	}
	// CREATE DATABASE cannot run in a transaction, so the mark follows it.
	// Should vigil die in between, Drop finds an unmarked database and
	// leaves it alone, a leak a person can clear, never a wrong drop;
	// unless the job recorded that it sent CREATE (Target.CreateIssued).
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+name+" IS "+quoteLiteral(t.Mark)); err != nil {
		return fmt.Errorf("database %q was created but could not be marked as vigil's (%s), so vigil will not drop it: drop it by hand", t.Database, t.Server.Redact(err.Error()))
	}
	return nil
}

// postgresMark returns the comment on the target database, and whether it
// exists.
func postgresMark(ctx context.Context, t Target) (string, bool, error) {
	conn, err := adminConn(ctx, t)
	if err != nil {
		return "", false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return postgresMarkOn(ctx, conn, t)
}

func postgresMarkOn(ctx context.Context, conn *pgx.Conn, t Target) (string, bool, error) {
	var mark *string
	err := conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`, t.Database).Scan(&mark)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up database %q: %s", t.Database, t.Server.Redact(err.Error()))
	}
	if mark == nil {
		return "", true, nil
	}
	return *mark, true, nil
}

func loadPostgres(ctx context.Context, t Target, r io.Reader) error {
	// pg_restore reads the archive from standard input in one pass; its
	// default of one job is what a pg_restore of a file does too.
	return runTool(ctx, t.Server, t.Tools.PGRestore, []string{
		"--exit-on-error", "--no-password",
		"--dbname=" + t.Server.WithDatabase(t.Database).PGConnArg(),
	}, r, io.Discard)
}

func dropPostgres(ctx context.Context, t Target) error {
	conn, err := adminConn(ctx, t)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	mark, found, err := postgresMarkOn(ctx, conn, t)
	if err == nil && !found {
		// The process that sent CREATE may have died while the server was
		// still creating the database (it takes seconds on a slow disk):
		// its backend goes on and would finish the database after this
		// drop found nothing, leaving it unmarked for ever. End it, then
		// look again. This holds too for a drop that cannot know whether
		// CREATE was sent (a dead worker's test, ended by another worker
		// without its folder): the name is the job's own, and a CREATE of
		// it that has not finished has made nothing anyone could lose.
		if err := endPostgresCreate(ctx, conn, t); err != nil {
			return err
		}
		mark, found, err = postgresMarkOn(ctx, conn, t)
	}
	switch {
	case err != nil:
		return err
	case !found:
		return nil
	case mark != t.Mark && !(mark == "" && t.CreateIssued):
		return fmt.Errorf("database %q on %s %w (%q)", t.Database, t.Server.ServerString(), ErrNotMarked, t.Mark)
	}
	// Connections to the copy (a validator's, a person's) would make DROP
	// fail: they are ended first. FORCE does it in one step from 13 on.
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("read server version: %s", t.Server.Redact(err.Error()))
	}
	name := pgx.Identifier{t.Database}.Sanitize()
	stmt := "DROP DATABASE " + name + " WITH (FORCE)"
	if version < 130000 {
		if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", t.Database); err != nil {
			return fmt.Errorf("end connections to %q: %s", t.Database, t.Server.Redact(err.Error()))
		}
		stmt = "DROP DATABASE " + name
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("drop database %q: %s", t.Database, t.Server.Redact(err.Error()))
	}
	return nil
}

// endPostgresCreate ends the server's backends that are running CREATE
// DATABASE for t's database, as createPostgres sent it, and waits until
// they are gone: either the database was created meanwhile, or it never
// will be.
func endPostgresCreate(ctx context.Context, conn *pgx.Conn, t Target) error {
	const creating = `SELECT pid FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND query ILIKE 'CREATE DATABASE %' AND position($1 in query) > 0`
	name := pgx.Identifier{t.Database}.Sanitize()
	for wait := time.Duration(0); ; wait += 100 * time.Millisecond {
		rows, err := conn.Query(ctx, creating, name)
		if err != nil {
			return fmt.Errorf("look for a CREATE DATABASE %s still running: %s", name, t.Server.Redact(err.Error()))
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("look for a CREATE DATABASE %s still running: %s", name, t.Server.Redact(err.Error()))
		}
		if len(pids) == 0 {
			return nil
		}
		if wait > 30*time.Second {
			return fmt.Errorf("CREATE DATABASE %s of a vigil that stopped is still running on %s after 30s and could not be ended: end backend %v (SELECT pg_terminate_backend(pid)), then run the clean-up again",
				name, t.Server.ServerString(), pids)
		}
		for _, pid := range pids {
			if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
				return fmt.Errorf("end the CREATE DATABASE %s still running (backend %d): %s", name, pid, t.Server.Redact(err.Error()))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
