package database

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/database/dumpcount"
	"github.com/vigil-backup/vigil/dbclient"
)

// mysqlTablesQuery lists the base tables of the connection's database.
const mysqlTablesQuery = `SELECT table_name FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' AND table_name <> '` + mysqlMarkTable + `'
ORDER BY table_name`

// mysqlMarkTable holds the mark of a database vigil created on a server
// whose schemas take no comment (MySQL; MariaDB has schema comments from
// 10.5). It is left out of table comparisons.
const mysqlMarkTable = "vigil_restore_mark"

// mysqlQuote quotes an identifier with backquotes.
func mysqlEngine() engine {
	return engine{
		dumpName: "dump.sql",
		dump:     dumpMySQL,
		create:   createMySQL,
		exists: func(ctx context.Context, t Target) (bool, error) {
			_, found, err := mysqlMark(ctx, t)
			return found, err
		},
		load:        loadMySQL,
		release:     releaseMySQL,
		drop:        dropMySQL,
		open:        func(t Target) (*sql.DB, error) { return sql.Open("mysql", t.Server.WithDatabase(t.Database).DSN()) },
		tablesQuery: mysqlTablesQuery,
		quote:       mysqlQuote,
	}
}

func mysqlQuote(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func openMySQL(srv dbclient.Server) (*sql.DB, error) {
	db, err := sql.Open("mysql", srv.DSN())
	if err != nil {
		return nil, errors.New(srv.Redact(err.Error()))
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func dumpMySQL(ctx context.Context, src Source, w io.Writer) (*vigil.DatabaseInfo, error) {
	srv := src.Server
	db, err := openMySQL(srv)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	info := &vigil.DatabaseInfo{Engine: EngineMySQL, Database: srv.Database}
	// Connecting first turns a wrong password or a missing database into
	// the server's own message before the dump starts.
	err = db.QueryRowContext(ctx, `SELECT VERSION(), default_character_set_name, default_collation_name
		FROM information_schema.schemata WHERE schema_name = DATABASE()`).Scan(&info.Server, &info.Encoding, &info.Collate)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %s", srv.String(), srv.Redact(err.Error()))
	}

	counter := dumpcount.New()
	args := append(srv.MySQLArgs(),
		// One consistent snapshot of InnoDB tables, without locking them.
		"--single-transaction",
		"--routines", "--triggers", "--events",
		// Binary columns as hex: the dump stays valid text whatever the
		// bytes.
		"--hex-blob",
		// Tablespaces need the PROCESS privilege on MySQL 8 and are not
		// part of one database.
		"--no-tablespaces",
		// A database that was itself restored by vigil on MySQL may
		// still hold a mark table; it is vigil's, not the data.
		"--ignore-table="+srv.Database+"."+mysqlMarkTable,
		"--", srv.Database)
	if err := runTool(ctx, srv, src.Tools.MySQLDump, args, nil, io.MultiWriter(w, counter)); err != nil {
		return nil, err
	}
	info.Tables = counter.Tables()
	return info, nil
}

// schemaComments reports whether the server keeps schema comments:
// MariaDB from 10.5 on. MySQL and older MariaDB get the mark table.
func schemaComments(ctx context.Context, db *sql.DB) (bool, error) {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return false, err
	}
	if !strings.Contains(strings.ToLower(v), "mariadb") {
		return false, nil
	}
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return false, nil
	}
	return major > 10 || major == 10 && minor >= 5, nil
}

// markByTable makes createMySQL mark databases with a table even on
// MariaDB, so that the MySQL path is tested on a MariaDB server.
var markByTable = false

func createMySQL(ctx context.Context, t Target) error {
	db, err := openMySQL(t.Server)
	if err != nil {
		return err
	}
	defer db.Close()
	fail := func(what string, err error) error {
		return fmt.Errorf("%s: %s", what, t.Server.Redact(err.Error()))
	}
	comments, err := schemaComments(ctx, db)
	if err != nil {
		return fail("connect to "+t.Server.String(), err)
	}
	name := mysqlQuote(t.Database)
	stmt := "CREATE DATABASE " + name
	if i := t.Info; i != nil && plainWord(i.Encoding) && plainWord(i.Collate) {
		stmt += " CHARACTER SET " + i.Encoding + " COLLATE " + i.Collate
	}
	byComment := comments && !markByTable
	if byComment {
		// The database and its mark come into being together.
		stmt += " COMMENT " + mysqlLiteral(t.Mark)
	}
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		var myErr *mysql.MySQLError
		if errors.As(err, &myErr) && myErr.Number == 1007 { // ER_DB_CREATE_EXISTS
			return fmt.Errorf("database %q on %s %w", t.Database, t.Server.ServerString(), ErrExists)
		}
		if errors.As(err, &myErr) && (myErr.Number == 1044 || myErr.Number == 1045) { // access denied
			return fmt.Errorf("create database %q: %s: restores create a new database, so the user needs CREATE and DROP on it, e.g. GRANT ALL ON `vigil\\_restore\\_%%`.* TO the user", t.Database, t.Server.Redact(err.Error()))
		}
		return fail(fmt.Sprintf("create database %q", t.Database), err)
	}
	if !byComment {
		// As with PostgreSQL, a crash between the two statements leaves
		// an unmarked database that Drop will not touch.
		_, err := db.ExecContext(ctx, "CREATE TABLE "+name+"."+mysqlMarkTable+" (mark varchar(255) NOT NULL)")
		if err == nil {
			_, err = db.ExecContext(ctx, "INSERT INTO "+name+"."+mysqlMarkTable+" VALUES (?)", t.Mark)
		}
		if err != nil {
			return fmt.Errorf("database %q was created but could not be marked as vigil's (%s), so vigil will not drop it: drop it by hand", t.Database, t.Server.Redact(err.Error()))
		}
	}
	return nil
}

// mysqlMark returns the mark of the target database, and whether it exists.
func mysqlMark(ctx context.Context, t Target) (string, bool, error) {
	db, err := openMySQL(t.Server)
	if err != nil {
		return "", false, err
	}
	defer db.Close()
	return mysqlMarkOn(ctx, db, t)
}

func mysqlMarkOn(ctx context.Context, db *sql.DB, t Target) (string, bool, error) {
	fail := func(err error) (string, bool, error) {
		return "", false, fmt.Errorf("look up database %q: %s", t.Database, t.Server.Redact(err.Error()))
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", t.Database).Scan(&n); err != nil {
		return fail(err)
	}
	if n == 0 {
		return "", false, nil
	}
	var hasTable int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", t.Database, mysqlMarkTable).Scan(&hasTable); err != nil {
		return fail(err)
	}
	var mark sql.NullString
	if hasTable > 0 {
		err := db.QueryRowContext(ctx, "SELECT MIN(mark) FROM "+mysqlQuote(t.Database)+"."+mysqlMarkTable).Scan(&mark)
		if err != nil {
			return fail(err)
		}
		return mark.String, true, nil
	}
	comments, err := schemaComments(ctx, db)
	if err != nil || !comments {
		return "", true, err
	}
	if err := db.QueryRowContext(ctx, "SELECT schema_comment FROM information_schema.schemata WHERE schema_name = ?", t.Database).Scan(&mark); err != nil {
		return fail(err)
	}
	return mark.String, true, nil
}

func loadMySQL(ctx context.Context, t Target, r io.Reader) error {
	if t.DisableEvents {
		r = disableEvents(r)
	}
	args := append(t.Server.MySQLArgs(),
		// The dump's strings may hold any byte, escaped; binary mode
		// reads them as data, not as client commands.
		"--binary-mode",
		"--database="+t.Database)
	return runTool(ctx, t.Server, t.Tools.MySQL, args, r, io.Discard)
}

func dropMySQL(ctx context.Context, t Target) error {
	db, err := openMySQL(t.Server)
	if err != nil {
		return err
	}
	defer db.Close()
	mark, found, err := mysqlMarkOn(ctx, db, t)
	switch {
	case err != nil:
		return err
	case !found:
		return nil
	case mark != t.Mark && !(mark == "" && t.CreateIssued):
		return fmt.Errorf("database %q on %s %w (%q)", t.Database, t.Server.ServerString(), ErrNotMarked, t.Mark)
	}
	// A connection that uses the copy would hold DROP DATABASE back on
	// its metadata locks: such connections are ended first.
	rows, err := db.QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()", t.Database)
	if err != nil {
		return fmt.Errorf("list connections to %q: %s", t.Database, t.Server.Redact(err.Error()))
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		// The connection may have ended by itself meanwhile.
		_, _ = db.ExecContext(ctx, fmt.Sprintf("KILL %d", id))
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE "+mysqlQuote(t.Database)); err != nil {
		return fmt.Errorf("drop database %q: %s", t.Database, t.Server.Redact(err.Error()))
	}
	return nil
}

// mysqlLiteral quotes s as a MySQL string literal (marks hold no
// backslash, so NO_BACKSLASH_ESCAPES does not change its meaning).
func mysqlLiteral(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// plainWord reports whether s is a non-empty name of letters, digits and
// underscores, such as a character set: safe to write into a statement.
func plainWord(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return s != ""
}

// eventLine starts the line that creates an event in a mysqldump or
// mariadb-dump: "/*!50106 CREATE*/ /*!50117 DEFINER=…*/ /*!50106 EVENT `e`
// ON SCHEDULE … ON COMPLETION [NOT] PRESERVE ENABLE [COMMENT '…'] DO …".
var eventLine = []byte("/*!50106 CREATE*/ ")

// disableEvents rewrites the events of a dump to be created DISABLED. A
// restore test's copy lives on a real server: with the event scheduler on,
// an enabled event would run in it, changing the copy under validation or,
// if its body names the source database, writing to the source.
//
// The dump writes one statement of data per row line, and escapes
// newlines inside strings, so a line that starts with eventLine is an
// event's definition and never data; its first " PRESERVE ENABLE " is the
// event's status, which comes before its comment and body.
func disableEvents(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		br := bufio.NewReaderSize(r, 1<<20)
		lineStart := true
		for {
			chunk, err := br.ReadSlice('\n')
			if lineStart && bytes.HasPrefix(chunk, eventLine) && bytes.Contains(chunk, []byte("/*!50106 EVENT ")) {
				chunk = bytes.Replace(chunk, []byte(" PRESERVE ENABLE "), []byte(" PRESERVE DISABLE "), 1)
			}
			if len(chunk) > 0 {
				if _, werr := pw.Write(chunk); werr != nil {
					return
				}
				lineStart = chunk[len(chunk)-1] == '\n'
			}
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
			case errors.Is(err, io.EOF):
				pw.Close()
				return
			case err != nil:
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// releaseMySQL removes the mark table from a database a plain restore
// completed: the database is the user's now, and a mark inside it would
// go into its own backups.
func releaseMySQL(ctx context.Context, t Target) error {
	db, err := openMySQL(t.Server)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+mysqlQuote(t.Database)+"."+mysqlMarkTable); err != nil {
		return fmt.Errorf("remove vigil's mark table from %q: %s", t.Database, t.Server.Redact(err.Error()))
	}
	return nil
}
