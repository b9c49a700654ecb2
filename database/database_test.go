package database

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/dbclient"
)

// The servers on the test machine: .ci/run starts them.
const (
	testPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	testMySQL    = "root@tcp(127.0.0.1:3306)/mysql"
)

func tools(t *testing.T, engine string) dbclient.Tools {
	t.Helper()
	tl, err := dbclient.FindTools(engine, nil)
	if err != nil {
		t.Fatalf("find tools: %v", err)
	}
	return tl
}

func mustParse(t *testing.T, engine, dsn string) dbclient.Server {
	t.Helper()
	s, err := dbclient.ParseDSN(engine, dsn)
	if err != nil {
		t.Fatalf("parse %s DSN: %v", engine, err)
	}
	return s
}

// uniqueName is a database name no other test run uses.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), time.Now().UnixNano()%1e9)
}

// sqlExec runs statements on a database/sql connection, failing the test
// on an error.
func sqlExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// newPostgresDB creates an empty database and drops it when the test ends.
func newPostgresDB(t *testing.T) (dbclient.Server, *sql.DB) {
	t.Helper()
	admin, err := sql.Open("pgx", testPostgres)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	name := uniqueName("vigil_test_src")
	sqlExec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	srv := mustParse(t, EnginePostgres, strings.Replace(testPostgres, "/test?", "/"+name+"?", 1))
	db, err := sql.Open("pgx", srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return srv, db
}

func newMySQLDB(t *testing.T) (dbclient.Server, *sql.DB) {
	t.Helper()
	admin, err := sql.Open("mysql", testMySQL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	name := uniqueName("vigil_test_src")
	sqlExec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name) })
	srv := mustParse(t, EngineMySQL, strings.Replace(testMySQL, "/mysql", "/"+name, 1))
	db, err := sql.Open("mysql", srv.DSN()+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return srv, db
}

// roundTrip dumps src, restores the dump into a new database and checks
// that it has the tables and rows the dump recorded. It returns the
// target, still existing, and what the dump recorded.
func roundTrip(t *testing.T, src Source, newName string) (Target, *vigil.DatabaseInfo) {
	t.Helper()
	ctx := t.Context()
	var dump bytes.Buffer
	info, err := Dump(ctx, src, &dump)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	if info.Engine != src.Engine || info.Server == "" || len(info.Tables) == 0 {
		t.Fatalf("dump recorded %+v", info)
	}
	target := Target{Engine: src.Engine, Server: src.Server, Database: newName, Path: newName,
		Mark: "vigil restore job rj-" + newName, Tools: src.Tools, Info: info}
	if err := Create(ctx, target); err != nil {
		t.Fatalf("create %s: %v", target, err)
	}
	t.Cleanup(func() { Drop(context.Background(), target) })
	if err := Create(ctx, target); !errors.Is(err, ErrExists) {
		t.Fatalf("creating %s a second time: got %v, want ErrExists", target, err)
	}
	if err := Load(ctx, target, bytes.NewReader(dump.Bytes())); err != nil {
		t.Fatalf("load: %v", err)
	}
	db, err := Open(ctx, target)
	if err != nil {
		t.Fatalf("open the restored database: %v", err)
	}
	defer db.Close()
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatalf("integrity check: %v", err)
	}
	got, err := db.Tables(ctx)
	if err != nil {
		t.Fatalf("count the restored tables: %v", err)
	}
	if diffs := CompareTables(info.Tables, got); len(diffs) > 0 {
		t.Fatalf("restored copy differs: %v", diffs)
	}
	return target, info
}

func wantTables(t *testing.T, info *vigil.DatabaseInfo, want map[string]int64) {
	t.Helper()
	got := map[string]int64{}
	for _, tr := range info.Tables {
		got[tr.Name] = tr.Rows
	}
	for name, rows := range want {
		if got[name] != rows {
			t.Errorf("table %s: recorded %d rows, want %d (all: %v)", name, got[name], rows, info.Tables)
		}
	}
	if len(got) != len(want) {
		t.Errorf("recorded tables %v, want %v", info.Tables, want)
	}
}

// checkDrop checks that only the right mark drops the database.
func checkDrop(t *testing.T, target Target) {
	t.Helper()
	ctx := t.Context()
	wrong := target
	wrong.Mark = "vigil restore job rj-someone-else"
	if err := Drop(ctx, wrong); !errors.Is(err, ErrNotMarked) {
		t.Fatalf("drop with another job's mark: got %v, want ErrNotMarked", err)
	}
	if ok, err := Exists(ctx, target); err != nil || !ok {
		t.Fatalf("after a refused drop: exists %v, %v; want it still there", ok, err)
	}
	if err := Drop(ctx, target); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if ok, err := Exists(ctx, target); err != nil || ok {
		t.Fatalf("after drop: exists %v, %v", ok, err)
	}
	if err := Drop(ctx, target); err != nil {
		t.Fatalf("dropping a database that is gone: %v", err)
	}
}

func TestPostgresRoundTrip(t *testing.T) {
	srv, db := newPostgresDB(t)
	sqlExec(t, db,
		`CREATE SCHEMA shop`,
		`CREATE TABLE shop.orders (id bigserial PRIMARY KEY, item text, created_at timestamptz DEFAULT now())`,
		`INSERT INTO shop.orders (item) SELECT 'item ' || g FROM generate_series(1, 5000) g`,
		`CREATE TABLE "Odd Name" (x int)`,
		`INSERT INTO "Odd Name" VALUES (1), (2)`,
		`CREATE TABLE empty (x int)`,
		`CREATE TABLE events (at date NOT NULL, n int) PARTITION BY RANGE (at)`,
		`CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`,
		`INSERT INTO events SELECT '2026-03-01'::date + (g % 200), g FROM generate_series(1, 300) g`,
		`CREATE VIEW order_count AS SELECT count(*) FROM shop.orders`,
	)
	src := Source{Engine: EnginePostgres, Server: srv, Tools: tools(t, EnginePostgres)}
	target, info := roundTrip(t, src, uniqueName("vigil_test_restore"))
	wantTables(t, info, map[string]int64{
		"shop.orders": 5000, `public."Odd Name"`: 2, "public.empty": 0, "public.events": 300, "public.events_2026": 300,
	})
	if info.Encoding == "" || info.Collate == "" {
		t.Errorf("encoding and collation not recorded: %+v", info)
	}

	restored, err := Open(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	cols, rows, err := restored.Query(t.Context(), `SELECT count(*), max(id) > 4999, NULL::text, 1.5::numeric FROM shop.orders`)
	restored.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 4 || !slices.Equal(rows[0], []string{"5000", "true", "NULL", "1.5"}) {
		t.Fatalf("query values as text: got %v %v", cols, rows)
	}
	var mark string
	admin, _ := sql.Open("pgx", testPostgres)
	defer admin.Close()
	if err := admin.QueryRow(`SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`, target.Database).Scan(&mark); err != nil || mark != target.Mark {
		t.Fatalf("mark on the new database: %q, %v; want %q", mark, err, target.Mark)
	}
	checkDrop(t, target)
}

// TestPostgresCountsMatchTheDump writes to the source all through the dump:
// the recorded counts must still be exactly what the dump holds, since they
// are taken in the snapshot pg_dump dumps.
func TestPostgresCountsMatchTheDump(t *testing.T) {
	srv, db := newPostgresDB(t)
	sqlExec(t, db,
		`CREATE TABLE a (id bigserial PRIMARY KEY, pad text)`,
		`CREATE TABLE b (id bigserial PRIMARY KEY, pad text)`,
		`INSERT INTO a (pad) SELECT repeat('x', 200) FROM generate_series(1, 200000)`,
	)
	stop := make(chan struct{})
	var inserted atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			// One transaction touches both tables: a dump taken across
			// two snapshots would see one insert and not the other.
			if _, err := db.Exec(`WITH x AS (INSERT INTO a (pad) VALUES ('w') RETURNING 1) INSERT INTO b (pad) VALUES ('w')`); err == nil {
				inserted.Add(1)
			}
		}
	}()
	src := Source{Engine: EnginePostgres, Server: srv, Tools: tools(t, EnginePostgres)}
	target, info := roundTrip(t, src, uniqueName("vigil_test_restore"))
	close(stop)
	wg.Wait()
	Drop(t.Context(), target)
	rows := map[string]int64{}
	for _, tr := range info.Tables {
		rows[tr.Name] = tr.Rows
	}
	if inserted.Load() == 0 {
		t.Fatal("the writer inserted nothing during the dump: the test proves nothing")
	}
	if rows["public.a"]-200000 != rows["public.b"] {
		t.Fatalf("counts from two moments: a has %d rows (200000 + %d), b %d", rows["public.a"], rows["public.a"]-200000, rows["public.b"])
	}
	t.Logf("%d writes during the dump; %d of them are in it", inserted.Load(), rows["public.b"])
}

func TestMySQLRoundTrip(t *testing.T) {
	for _, byTable := range []bool{false, true} {
		t.Run(fmt.Sprintf("markByTable=%v", byTable), func(t *testing.T) {
			old := markByTable
			markByTable = byTable
			t.Cleanup(func() { markByTable = old })

			srv, db := newMySQLDB(t)
			sqlExec(t, db,
				`CREATE TABLE customers (id int PRIMARY KEY, name text, photo blob)`,
				`INSERT INTO customers VALUES (1, 'it''s (a),(b); \\ x', x'00ff275c0a'), (2, NULL, NULL)`,
				"CREATE TABLE `we``ird` (x int)",
				"INSERT INTO `we``ird` VALUES (5)",
				`CREATE TABLE empty (x int)`,
				`CREATE TABLE many (id int PRIMARY KEY)`,
				`INSERT INTO many SELECT seq FROM seq_1_to_3000`,
				`CREATE VIEW v AS SELECT id FROM customers`,
				`CREATE TRIGGER t AFTER INSERT ON customers FOR EACH ROW INSERT INTO empty VALUES (NEW.id)`,
			)
			src := Source{Engine: EngineMySQL, Server: srv, Tools: tools(t, EngineMySQL)}
			target, info := roundTrip(t, src, uniqueName("vigil_test_restore"))
			wantTables(t, info, map[string]int64{"customers": 2, "we`ird": 1, "empty": 0, "many": 3000})

			restored, err := Open(t.Context(), target)
			if err != nil {
				t.Fatal(err)
			}
			_, rows, err := restored.Query(t.Context(), `SELECT name, hex(photo) FROM customers WHERE id = 1`)
			restored.Close()
			if err != nil || len(rows) != 1 || rows[0][0] != `it's (a),(b); \ x` || rows[0][1] != "00FF275C0A" {
				t.Fatalf("restored row: %v, %v", rows, err)
			}
			if byTable {
				// Handed over after a plain restore, the database loses
				// its mark table, and a dump of it never holds one.
				if err := Release(t.Context(), target); err != nil {
					t.Fatal(err)
				}
				again := Source{Engine: EngineMySQL, Server: srv.WithDatabase(target.Database), Tools: src.Tools}
				var out bytes.Buffer
				info, err := Dump(t.Context(), again, &out)
				if err != nil {
					t.Fatal(err)
				}
				wantTables(t, info, map[string]int64{"customers": 2, "we`ird": 1, "empty": 0, "many": 3000})
				sqlExec(t, db, "CREATE TABLE "+mysqlQuote(target.Database)+"."+mysqlMarkTable+" (mark text)")
				if _, err := Dump(t.Context(), again, &out); err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(out.Bytes(), []byte(mysqlMarkTable)) {
					t.Fatal("a mark table went into a dump")
				}
				target.Mark = ""
				if err := Drop(t.Context(), target); err == nil {
					t.Fatal("Drop with no mark dropped an unmarked database")
				}
				sqlExec(t, db, "DROP DATABASE "+mysqlQuote(target.Database))
				return
			}
			checkDrop(t, target)
		})
	}
}

func TestSQLiteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	db, err := openSQLite(path, "rwc")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sqlExec(t, db,
		`PRAGMA journal_mode = WAL`,
		`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`,
		`CREATE TABLE "odd ""name""" (x)`,
		`INSERT INTO "odd ""name""" VALUES (1)`,
		`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1000) INSERT INTO notes (body) SELECT 'note ' || n FROM g`,
	)
	src := Source{Engine: EngineSQLite, Path: path, TempDir: filepath.Join(dir, "tmp")}
	target, info := roundTrip(t, src, filepath.Join(dir, "restored", "app.db"))
	wantTables(t, info, map[string]int64{"notes": 1000, `odd "name"`: 1})
	if left, _ := os.ReadDir(src.TempDir); len(left) != 0 {
		t.Fatalf("the consistent copy was left in %s: %v", src.TempDir, left)
	}
	if err := Drop(t.Context(), target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("restored file still there after drop: %v", err)
	}

	// A damaged file fails the integrity check.
	damaged := filepath.Join(dir, "damaged.db")
	b, _ := os.ReadFile(path)
	os.WriteFile(damaged, b, 0o600)
	var dump bytes.Buffer
	if _, err := Dump(t.Context(), Source{Engine: EngineSQLite, Path: path, TempDir: dir}, &dump); err != nil {
		t.Fatal(err)
	}
	raw := dump.Bytes()
	for i := 4096; i+100 < len(raw); i += 4096 { // every page but the first
		copy(raw[i+50:i+100], bytes.Repeat([]byte{0xA5}, 50))
	}
	os.WriteFile(damaged, raw, 0o600)
	ddb, err := Open(t.Context(), Target{Engine: EngineSQLite, Path: damaged})
	if err != nil {
		t.Fatalf("open the damaged copy: %v", err)
	}
	defer ddb.Close()
	if err := ddb.IntegrityCheck(t.Context()); err == nil {
		if _, err := ddb.Tables(t.Context()); err == nil {
			t.Fatal("a damaged database passed the integrity check and could be counted")
		}
	}

	// A path that is not there is an error, not a new empty database.
	_, err = Dump(t.Context(), Source{Engine: EngineSQLite, Path: filepath.Join(dir, "nope.db"), TempDir: dir}, &dump)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("dump of a missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("dumping a missing file created it")
	}
}

// TestDumpErrorsHidePasswords checks that a server's refusal reaches the
// caller with its reason, never with the password.
func TestDumpErrorsHidePasswords(t *testing.T) {
	const pw = "Sup3r-s3cret/pw"
	for _, tc := range []struct {
		engine, dsn, want string
	}{
		{EnginePostgres, "postgres://postgres:Sup3r-s3cret%2Fpw@127.0.0.1:5432/vigil_no_such_db?sslmode=disable", `database "vigil_no_such_db" does not exist`},
		{EnginePostgres, "postgres://postgres:Sup3r-s3cret%2Fpw@127.0.0.1:1/test?sslmode=disable", "connect"},
		{EngineMySQL, "root:" + pw + "@tcp(127.0.0.1:3306)/mysql", "Access denied"},
		{EngineMySQL, "root@tcp(127.0.0.1:3306)/vigil_no_such_db", "Unknown database"},
	} {
		srv := mustParse(t, tc.engine, tc.dsn)
		var out bytes.Buffer
		_, err := Dump(t.Context(), Source{Engine: tc.engine, Server: srv, Tools: tools(t, tc.engine)}, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s dump of %s: got %v, want an error with %q", tc.engine, srv, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "Sup3r-s3cret%2Fpw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

func TestCompareTables(t *testing.T) {
	want := []vigil.TableRows{{Name: "a", Rows: 1}, {Name: "b", Rows: 2}, {Name: "c", Rows: 0}}
	got := []vigil.TableRows{{Name: "a", Rows: 1}, {Name: "b", Rows: 3}, {Name: "z", Rows: 5}}
	diffs := CompareTables(want, got)
	wantDiffs := []string{
		"table b has 3 rows, the recovery point 2",
		"table c is missing (the recovery point has it, with 0 rows)",
		"table z is not in the recovery point",
	}
	if !slices.Equal(diffs, wantDiffs) {
		t.Fatalf("diffs:\n%s\nwant:\n%s", strings.Join(diffs, "\n"), strings.Join(wantDiffs, "\n"))
	}
	if d := CompareTables(want, want); len(d) != 0 {
		t.Fatalf("equal lists differ: %v", d)
	}
}

// TestPostgresDumpDoesNotBlockDDL: an ALTER TABLE issued while the dump
// starts must neither hang the dump nor, queued behind vigil, the app.
// Counting rows in a transaction held open until pg_dump ends would queue
// the ALTER behind vigil and pg_dump behind the ALTER: a deadlock the
// server cannot see.
func TestPostgresDumpDoesNotBlockDDL(t *testing.T) {
	srv, db := newPostgresDB(t)
	sqlExec(t, db, `CREATE TABLE a (id int)`, `INSERT INTO a SELECT generate_series(1, 1000)`)
	// pg_dump that takes a moment to start, like one reading a large
	// catalog.
	slow := filepath.Join(t.TempDir(), "pg_dump")
	real := tools(t, EnginePostgres)
	os.WriteFile(slow, []byte("#!/bin/sh\nsleep 1\nexec "+real.PGDump+" \"$@\"\n"), 0o755)
	real.PGDump = slow

	altered := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := db.Exec(`SET lock_timeout = '20s'; ALTER TABLE a ADD COLUMN z int`)
		altered <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	info, err := Dump(ctx, Source{Engine: EnginePostgres, Server: srv, Tools: real}, &out)
	if err != nil {
		t.Fatalf("dump with an ALTER TABLE waiting: %v", err)
	}
	if err := <-altered; err != nil {
		t.Fatalf("the ALTER TABLE was held up: %v", err)
	}
	wantTables(t, info, map[string]int64{"public.a": 1000})
}

// TestMySQLEventsDisabled: a restore test's copy gets the dump's events
// DISABLED, so none runs against the copy (or, through a qualified name,
// against the source); a plain restore keeps them as they were.
func TestMySQLEventsDisabled(t *testing.T) {
	srv, db := newMySQLDB(t)
	sqlExec(t, db,
		`CREATE TABLE t (x int)`,
		`INSERT INTO t VALUES (1)`,
		"CREATE EVENT wipe ON SCHEDULE EVERY 1 HOUR COMMENT 'PRESERVE ENABLE in a comment' DO DELETE FROM "+srv.Database+".t",
		`CREATE EVENT later ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 DAY ON COMPLETION PRESERVE DISABLE DO DELETE FROM t`,
	)
	src := Source{Engine: EngineMySQL, Server: srv, Tools: tools(t, EngineMySQL)}
	var dump bytes.Buffer
	if _, err := Dump(t.Context(), src, &dump); err != nil {
		t.Fatal(err)
	}
	admin := sqlDBForTest(t)
	for _, disable := range []bool{true, false} {
		target := Target{Engine: EngineMySQL, Server: srv, Database: uniqueName("vigil_test_events"),
			Mark: "vigil restore job rj-events", Tools: src.Tools, DisableEvents: disable}
		if err := Create(t.Context(), target); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Drop(context.Background(), target) })
		// Fed in small pieces, so that event lines are cut anywhere.
		if err := Load(t.Context(), target, iotestHalfReader(dump.Bytes())); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		rows, err := admin.Query(`SELECT event_name, status, event_comment FROM information_schema.events WHERE event_schema = ?`, target.Database)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name, status, comment string
			rows.Scan(&name, &status, &comment)
			got[name] = status
			if name == "wipe" && comment != "PRESERVE ENABLE in a comment" {
				t.Errorf("the event's comment changed: %q", comment)
			}
		}
		rows.Close()
		want := map[string]string{"wipe": "ENABLED", "later": "DISABLED"}
		if disable {
			want["wipe"] = "DISABLED"
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("DisableEvents %v: events %v, want %v", disable, got, want)
		}
	}
}

func sqlDBForTest(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", testMySQL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// iotestHalfReader reads b at most 7 bytes at a time.
func iotestHalfReader(b []byte) *smallReader { return &smallReader{b: b} }

type smallReader struct{ b []byte }

func (r *smallReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 7)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// TestSQLiteRestoreKeepsJournalAndFileMode: a restored SQLite database has
// its source's journal mode (WAL stays WAL, a rollback journal stays one)
// and permissions.
func TestSQLiteRestoreKeepsJournalAndFileMode(t *testing.T) {
	for _, tc := range []struct {
		journal string
		mode    os.FileMode
	}{
		{"wal", 0o640},
		{"delete", 0o604},
	} {
		t.Run(tc.journal, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.db")
			db, err := openSQLite(path, "rwc")
			if err != nil {
				t.Fatal(err)
			}
			sqlExec(t, db, `PRAGMA journal_mode = `+tc.journal, `CREATE TABLE notes (body TEXT)`, `INSERT INTO notes VALUES ('a')`)
			db.Close()
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}

			target, info := roundTrip(t, Source{Engine: EngineSQLite, Path: path, TempDir: filepath.Join(dir, "tmp")}, filepath.Join(dir, "restored", "app.db"))
			if info.JournalMode != tc.journal || info.FileMode != fmt.Sprintf("%#o", tc.mode) {
				t.Errorf("the dump recorded journal mode %q and file mode %q, want %q and %#o", info.JournalMode, info.FileMode, tc.journal, tc.mode)
			}
			restored, err := openSQLite(target.Path, "ro")
			if err != nil {
				t.Fatal(err)
			}
			defer restored.Close()
			var journal string
			if err := restored.QueryRow("PRAGMA journal_mode").Scan(&journal); err != nil {
				t.Fatal(err)
			}
			if journal != tc.journal {
				t.Errorf("restored database's journal mode is %q, want the source's %q", journal, tc.journal)
			}
			fi, err := os.Stat(target.Path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.mode {
				t.Errorf("restored database has mode %v, want the source's %v", fi.Mode().Perm(), tc.mode)
			}
		})
	}
}

// TestDropUnmarkedCreateIssued: CREATE DATABASE and the comment that
// marks it are two statements, so a vigil killed between them (CREATE
// DATABASE takes a while, and the server finishes it without the client)
// leaves a database without a mark. When the job recorded that it sent
// CREATE (CreateIssued), such a database is the job's, and Drop drops it;
// without that record, or with someone else's comment, it is still left
// alone.
func TestDropUnmarkedCreateIssued(t *testing.T) {
	srv, _ := newPostgresDB(t)
	admin, err := sql.Open("pgx", testPostgres)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	for _, tc := range []struct {
		name    string
		own     bool
		comment string
		dropped bool
	}{
		{"unmarked, CREATE sent", true, "", true},
		{"unmarked, no CREATE sent", false, "", false},
		{"another's comment, CREATE sent", true, "made by a person", false},
	} {
		name := uniqueName("vigil_test_unmarked")
		sqlExec(t, admin, "CREATE DATABASE "+name)
		t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
		if tc.comment != "" {
			sqlExec(t, admin, "COMMENT ON DATABASE "+name+" IS '"+tc.comment+"'")
		}
		target := Target{Engine: EnginePostgres, Server: srv, Database: name, Mark: "vigil restore job rj-0123456789abcdef", CreateIssued: tc.own}
		err := Drop(t.Context(), target)
		exists, xerr := Exists(t.Context(), target)
		if xerr != nil {
			t.Fatal(xerr)
		}
		switch {
		case tc.dropped && (err != nil || exists):
			t.Errorf("%s: Drop = %v, exists %v; want it dropped", tc.name, err, exists)
		case !tc.dropped && (!errors.Is(err, ErrNotMarked) || !exists):
			t.Errorf("%s: Drop = %v, exists %v; want ErrNotMarked and the database left alone", tc.name, err, exists)
		}
	}
}

// TestDropEndsAnOrphanedCreate: a vigil killed while the server was still
// running its CREATE DATABASE leaves a backend that finishes the database
// later. The clean-up's Drop used to find nothing and return, and the
// database then appeared, unmarked, for ever (seen in the scale-out test
// after a kill -9, with a slow checkpoint). Drop must end such a CREATE
// and leave no database behind. The CREATE is held here on a lock of its
// template: a COMMENT in an open transaction.
func TestDropEndsAnOrphanedCreate(t *testing.T) {
	// with the job's record that it sent CREATE, and without it: another
	// worker ending a dead worker's test does not have its folder
	for _, createIssued := range []bool{true, false} {
		t.Run(fmt.Sprintf("CreateIssued=%v", createIssued), func(t *testing.T) { dropEndsAnOrphanedCreate(t, createIssued) })
	}
}

func dropEndsAnOrphanedCreate(t *testing.T, createIssued bool) {
	srv, _ := newPostgresDB(t)
	admin, err := sql.Open("pgx", testPostgres)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	template := uniqueName("vigil_test_template")
	sqlExec(t, admin, "CREATE DATABASE "+template)
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + template + " WITH (FORCE)") })
	name := "vigil_restore_rj-" + strings.TrimPrefix(uniqueName("x"), "x_")
	t.Cleanup(func() { admin.Exec(`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`) })

	hold, err := admin.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := hold.Exec("COMMENT ON DATABASE " + template + " IS 'held by the test'"); err != nil {
		t.Fatal(err)
	}

	// the "killed" vigil's CREATE: sent, and waiting on the server
	orphan, err := sql.Open("pgx", testPostgres)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orphan.Close() })
	created := make(chan error, 1)
	go func() {
		_, err := orphan.Exec(`CREATE DATABASE "` + name + `" TEMPLATE ` + template)
		created <- err
	}()
	waitFor(t, func() bool {
		var n int
		admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE "` + name + `"%' AND wait_event_type = 'Lock'`).Scan(&n)
		return n == 1
	})

	target := Target{Engine: EnginePostgres, Server: srv, Database: name, Mark: "vigil restore job rj-0123456789abcdef", CreateIssued: createIssued}
	if err := Drop(t.Context(), target); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	// the lock goes: an orphaned CREATE still there would now finish
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-created; err == nil {
		t.Error("the orphaned CREATE DATABASE completed: Drop did not end it")
	}
	exists, err := Exists(t.Context(), target)
	if err != nil || exists {
		t.Fatalf("database %s exists after Drop (%v): the orphaned CREATE finished it", name, err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 200 {
		if ok() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("timed out waiting")
}
