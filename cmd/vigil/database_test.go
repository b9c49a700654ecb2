package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/vigil-backup/vigil"
)

// The database servers of the test machine, which .ci/run starts.
const (
	e2ePostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	e2eMySQL    = "root@tcp(127.0.0.1:3306)/mysql"
)

// sqlDB opens a database/sql handle, closed when the test ends.
func sqlDB(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func execAll(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%.80s: %v", s, err)
		}
	}
}

// dbName is a database name unique to this test run.
func dbName(t *testing.T, what string) string {
	return fmt.Sprintf("vigil_e2e_%s_%d_%d", what, os.Getpid(), time.Now().UnixNano()%1e6)
}

// pgbenchDB makes a database with pgbench -i at the given scale (100,000
// accounts per unit), a schema this project did not design, and drops it
// when the test ends.
func pgbenchDB(t *testing.T, scale int) string {
	t.Helper()
	admin := sqlDB(t, "pgx", e2ePostgres)
	name := dbName(t, "pgbench")
	execAll(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	out, err := exec.Command("pgbench", "-h", "127.0.0.1", "-U", "postgres", "-i", "-q", "-s", fmt.Sprint(scale), name).CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	return name
}

// shopDB makes a MariaDB database with several related tables, a view, a
// trigger and a procedure, and drops it when the test ends.
func shopDB(t *testing.T, bigRows int) string {
	t.Helper()
	admin := sqlDB(t, "mysql", e2eMySQL)
	name := dbName(t, "shop")
	execAll(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name) })
	db := sqlDB(t, "mysql", strings.Replace(e2eMySQL, "/mysql", "/"+name, 1))
	execAll(t, db,
		`CREATE TABLE customers (id int PRIMARY KEY, name varchar(100) NOT NULL, note text)`,
		`CREATE TABLE products (sku varchar(20) PRIMARY KEY, title text, price decimal(10,2), photo blob)`,
		`CREATE TABLE orders (id int AUTO_INCREMENT PRIMARY KEY, customer int NOT NULL, sku varchar(20) NOT NULL, qty int,
			FOREIGN KEY (customer) REFERENCES customers(id), FOREIGN KEY (sku) REFERENCES products(sku))`,
		`CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, what text)`,
		`INSERT INTO customers SELECT seq, concat('customer ', seq), IF(seq % 7 = 0, 'it''s (a),(b); \\ "q"', NULL) FROM seq_1_to_500`,
		`INSERT INTO products VALUES ('A-1', 'lamp', 19.90, x'00ff275c0a'), ('B-2', 'chair', 49.00, NULL), ('C-3', 'desk', 120.00, NULL)`,
		fmt.Sprintf(`INSERT INTO orders (customer, sku, qty) SELECT 1 + seq %% 500, ELT(1 + seq %% 3, 'A-1', 'B-2', 'C-3'), seq %% 5 FROM seq_1_to_%d`, bigRows),
		`CREATE VIEW big_orders AS SELECT * FROM orders WHERE qty > 3`,
		`CREATE TRIGGER orders_audit AFTER DELETE ON orders FOR EACH ROW INSERT INTO audit (what) VALUES (concat('deleted ', OLD.id))`,
		`CREATE PROCEDURE reset_audit() BEGIN DELETE FROM audit; INSERT INTO audit (what) VALUES ('reset'); END`,
	)
	return name
}

// TestDatabaseRestoreTests backs up a pgbench database (1,000,000
// accounts), a MariaDB shop and an SQLite file, and proves each restorable:
// the restore test of each completed backup loads it into a new database,
// finds the same tables and row counts, passes the resource's sql and
// command validators, and drops the new database.
func TestDatabaseRestoreTests(t *testing.T) {
	t.Parallel()
	pg := pgbenchDB(t, 10)
	shop := shopDB(t, 20000)
	const pgPassword = "pg-secret-that-trust-auth-ignores"
	e := newTestEnv(t, fmt.Sprintf(`  - name: orders-db
    type: postgres
    dsn_env: ORDERS_DSN
    validate:
      - sql: {query: "select count(*) from pgbench_accounts", expect: "1000000"}
      - sql: {query: "select sum(abalance) = 0 and count(distinct bid) = 10 from pgbench_accounts", expect_true: true}
      - command: {run: ["sh", "-c", "test \"$(psql \"$VIGIL_RESTORE_DSN\" -Atc 'select count(*) from pgbench_branches')\" = 10"]}
  - name: shop-db
    type: mysql
    dsn: root@tcp(127.0.0.1:3306)/%s
    validate:
      - sql: {query: "select count(*) from orders o join customers c on c.id = o.customer", expect: "20000"}
      - sql: {query: "select sku from products order by sku", expect_rows: 3}
      - sql: {query: "select hex(photo) from products where sku = 'A-1'", expect: "00FF275C0A"}
  - name: app-sqlite
    type: sqlite
    path: ./app.db
    validate:
      - sql: {query: "select count(*) from notes where body like 'note %%'", expect: "2000"}
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: ["*"]
    targets: {rto: 5m, rpo: 1h}
`, shop))
	e.env = append(e.env, "ORDERS_DSN=postgres://postgres:"+pgPassword+"@127.0.0.1:5432/"+pg+"?sslmode=disable")
	lite := sqlDB(t, "sqlite", "file:"+e.path("app.db")+"?_pragma=journal_mode(wal)")
	execAll(t, lite, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`,
		`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 2000) INSERT INTO notes (body) SELECT 'note ' || n FROM g`)
	e.serve()

	admin := sqlDB(t, "pgx", e2ePostgres)
	my := sqlDB(t, "mysql", e2eMySQL)
	for _, tc := range []struct {
		resource string
		tables   int
		rows     string
		exists   func(name string) bool
	}{
		{"orders-db", 4, "4 tables and 1000110 rows", func(name string) bool {
			var n int
			admin.QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n)
			return n > 0
		}},
		{"shop-db", 4, "4 tables and 20503 rows", func(name string) bool {
			var n int
			my.QueryRow("SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n)
			return n > 0
		}},
		{"app-sqlite", 1, "1 table and 2000 rows", func(name string) bool {
			_, err := os.Stat(name)
			return err == nil
		}},
	} {
		t.Run(tc.resource, func(t *testing.T) {
			b := e.backup(tc.resource)
			if b.Status != vigil.BackupCompleted {
				t.Fatalf("backup %s: %s", b.Status, b.StatusMessage)
			}
			var rp vigil.RecoveryPoint
			e.mustJSON(&rp, "recovery-points", "show", b.RecoveryPointID)
			if rp.Database == nil || len(rp.Database.Tables) != tc.tables {
				t.Fatalf("recovery point records %+v, want %d tables", rp.Database, tc.tables)
			}
			job := e.waitTest(e.testOf(rp.ID).ID)
			if job.ValidationStatus != vigil.ValidationSuccessful || job.DeletionStatus != vigil.DeletionSuccessful {
				t.Fatalf("restore test: validation %s (%s), deletion %s (%s)\nlog:\n%s", job.ValidationStatus, job.ValidationMessage,
					job.DeletionStatus, job.DeletionMessage, e.logText(job.ID))
			}
			if !strings.Contains(job.ValidationMessage, tc.rows+" match the recovery point") {
				t.Errorf("verdict %q does not report the table check (%s)", job.ValidationMessage, tc.rows)
			}
			target := job.Metadata["target_database"]
			if tc.resource == "app-sqlite" {
				target = job.Metadata["target_path"]
			} else if target != "vigil_restore_"+job.ID {
				t.Errorf("restored into %q, want vigil_restore_%s", target, job.ID)
			}
			if tc.exists(target) {
				t.Errorf("the restored copy %s still exists after the test", target)
			}
			if tc.resource != "app-sqlite" && !strings.Contains(job.DeletionMessage, "dropped") {
				t.Errorf("deletion message %q does not say the database was dropped", job.DeletionMessage)
			}
			t.Logf("%s: restore %.2fs, validation %.2fs, clean-up %.2fs, total %.2fs: %s", tc.resource,
				job.RestoreSeconds, job.ValidationSeconds, job.CleanupSeconds, job.TotalSeconds, job.ValidationMessage)
		})
	}
	e.requireNoLeak()

	// A plain restore creates a new database and leaves it to the user.
	t.Run("PlainRestores", func(t *testing.T) {
		for _, tc := range []struct {
			resource, set, count string
			db                   *sql.DB
			query                string
		}{
			{"orders-db", "target_database=" + pg + "_copy", "1000000", admin, "SELECT count(*) FROM %s.public.pgbench_accounts"},
			{"shop-db", "target_database=" + shop + "_copy", "20000", my, "SELECT count(*) FROM %s.orders"},
		} {
			var rps []vigil.RecoveryPoint
			e.mustJSON(&rps, "recovery-points", "list", "--resource", tc.resource)
			var job vigil.RestoreJob
			e.mustJSON(&job, "restore", "start", "--recovery-point", rps[0].ID, "--set", tc.set, "--wait")
			name := strings.TrimPrefix(tc.set, "target_database=")
			if tc.db == admin {
				t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
			} else {
				t.Cleanup(func() { my.Exec("DROP DATABASE IF EXISTS " + name) })
			}
			if job.Status != vigil.RestoreCompleted || !strings.HasSuffix(job.CreatedResourceLocation, "/"+name) && !strings.Contains(job.CreatedResourceLocation, "/"+name+"?") {
				t.Fatalf("restore of %s: %s %q at %q", tc.resource, job.Status, job.StatusMessage, job.CreatedResourceLocation)
			}
			if tc.db == admin {
				// PostgreSQL cannot query another database: connect to it.
				copyDB := sqlDB(t, "pgx", strings.Replace(e2ePostgres, "/test?", "/"+name+"?", 1))
				var n string
				if err := copyDB.QueryRow("SELECT count(*) FROM pgbench_accounts").Scan(&n); err != nil || n != tc.count {
					t.Fatalf("restored %s: %s rows, %v; want %s", name, n, err, tc.count)
				}
				continue
			}
			var n string
			if err := tc.db.QueryRow(fmt.Sprintf(tc.query, "`"+name+"`")).Scan(&n); err != nil || n != tc.count {
				t.Fatalf("restored %s: %s rows, %v; want %s", name, n, err, tc.count)
			}
		}
		var rps []vigil.RecoveryPoint
		e.mustJSON(&rps, "recovery-points", "list", "--resource", "app-sqlite")
		var job vigil.RestoreJob
		e.mustJSON(&job, "restore", "start", "--recovery-point", rps[0].ID, "--wait")
		restored := sqlDB(t, "sqlite", "file:"+job.Metadata["target_path"]+"?mode=ro")
		var n int
		if err := restored.QueryRow("SELECT count(*) FROM notes").Scan(&n); err != nil || n != 2000 || filepath.Base(job.Metadata["target_path"]) != "app.db" {
			t.Fatalf("restored SQLite file %s: %d rows, %v", job.Metadata["target_path"], n, err)
		}
	})

	// The DSN's password is nowhere: not in the catalog, logs, events or
	// API output.
	events := e.mustRun("events", "list", "--json")
	jobs := e.mustRun("jobs", "list", "--type", "restore", "--json")
	meta := e.mustRun("recovery-points", "list", "--json")
	for what, text := range map[string]string{"events": events, "jobs": jobs, "recovery points": meta, "server log": e.serverLog.String()} {
		if strings.Contains(text, pgPassword) {
			t.Errorf("%s show the DSN's password", what)
		}
	}
	e.stop()
	grepTree(t, e.path("vigil-data"), pgPassword)
}

// TestDatabaseFailures: dumps cut off half-way, a restored copy that
// differs, a wrong answer, a server that refuses, a target that exists and
// a missing tool each end the way a person can act on.
func TestDatabaseFailures(t *testing.T) {
	t.Parallel()
	pg := pgbenchDB(t, 10)
	shop := shopDB(t, 20000)
	e := newTestEnv(t, fmt.Sprintf(`  - name: pgbench
    type: postgres
    dsn: postgres://postgres@127.0.0.1:5432/%[1]s?sslmode=disable
  - name: pgbench-tampered
    type: postgres
    dsn: postgres://postgres@127.0.0.1:5432/%[1]s?sslmode=disable
    pg_restore_path: ./drop-a-table.sh
  - name: shop
    type: mysql
    dsn: root@tcp(127.0.0.1:3306)/%[2]s
  - name: wrong-password
    type: mysql
    dsn_env: WRONG_DSN
  - name: no-such-db
    type: postgres
    dsn: postgres://postgres@127.0.0.1:5432/vigil_e2e_no_such_db?sslmode=disable
  - name: no-server
    type: postgres
    dsn: postgres://postgres@127.0.0.1:1/test?sslmode=disable
  - name: app-sqlite
    type: sqlite
    path: ./app.db
    validate:
      - sql: {query: "select count(*) from notes", expect: "3"}
restore_testing:
  - name: checks
    resources: ["*"]
`, pg, shop))
	const wrongPassword = "wrong-pw-do-not-show"
	e.env = append(e.env, "WRONG_DSN=root:"+wrongPassword+"@tcp(127.0.0.1:3306)/"+shop)
	// pg_restore, then a table is dropped: the restored copy differs from
	// what was backed up, as a broken restore's would.
	writeScript(t, e.path("drop-a-table.sh"), `#!/bin/sh
pg_restore "$@" || exit $?
for a; do case "$a" in --dbname=*) url="${a#--dbname=}";; esac; done
psql "$url" -qc 'DROP TABLE pgbench_branches CASCADE'
`)
	lite := sqlDB(t, "sqlite", "file:"+e.path("app.db"))
	execAll(t, lite, `CREATE TABLE notes (body TEXT)`, `INSERT INTO notes VALUES ('a'), ('b')`)
	e.serve()
	admin := sqlDB(t, "pgx", e2ePostgres)
	my := sqlDB(t, "mysql", e2eMySQL)

	// cutDump starts a backup and cuts the dump's connection while it
	// copies the big table; a dump that finished first is tried again.
	cutDump := func(t *testing.T, resource string, findAndKill func() bool) vigil.BackupJob {
		t.Helper()
		for try := 1; try <= 5; try++ {
			var job vigil.BackupJob
			e.mustJSON(&job, "backup", "start", "--resource", resource, "--vault", "lab-vault")
			// The database server is asked tightly for the dump's
			// connection; whether the job ended is asked beside it,
			// through the CLI, which takes a process each time.
			ended := make(chan struct{})
			stop := make(chan struct{})
			go func() {
				defer close(ended)
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					r := e.run("jobs", "show", job.ID, "--json")
					var j vigil.BackupJob
					if json.Unmarshal([]byte(r.stdout), &j) == nil && j.Status.Final() {
						return
					}
				}
			}()
			killed := false
			deadline := time.Now().Add(60 * time.Second)
		poll:
			for time.Now().Before(deadline) {
				select {
				case <-ended:
					break poll
				default:
				}
				if killed = findAndKill(); killed {
					break
				}
				time.Sleep(time.Millisecond)
			}
			close(stop)
			<-ended
			done := waitBackup(t, e, job.ID)
			if killed {
				return done
			}
			t.Logf("try %d: the dump ended before its connection could be cut: %s %s", try, done.Status, done.StatusMessage)
		}
		t.Fatal("could not catch the dump while it ran")
		return vigil.BackupJob{}
	}
	requireCutOff := func(t *testing.T, job vigil.BackupJob, want string) {
		t.Helper()
		if job.Status != vigil.BackupFailed || !strings.Contains(job.StatusMessage, want) || job.RecoveryPointID != "" {
			t.Fatalf("backup cut off half-way: %s %q, recovery point %q; want FAILED with %q and none", job.Status, job.StatusMessage, job.RecoveryPointID, want)
		}
		var rps []vigil.RecoveryPoint
		e.mustJSON(&rps, "recovery-points", "list", "--resource", job.Resource)
		if len(rps) != 0 {
			t.Fatalf("a failed dump listed recovery points: %+v", rps)
		}
		e.mustRun("vault", "verify", "lab-vault", "--read-data-percent", "100")
	}

	t.Run("PostgresDumpCutHalfWay", func(t *testing.T) {
		job := cutDump(t, "pgbench", func() bool {
			var n int
			admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = $1 AND application_name = 'pg_dump' AND query LIKE 'COPY public.pgbench_accounts%'`, pg).Scan(&n)
			return n > 0
		})
		requireCutOff(t, job, "pg_dump failed")
		t.Logf("message: %s", job.StatusMessage)
	})

	t.Run("MariaDBDumpCutHalfWay", func(t *testing.T) {
		// products is dumped after audit, customers and orders: a
		// session holding it locked stops the dump there, half-way,
		// where its connection is then cut.
		ctx := t.Context()
		locker, err := my.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer locker.Close()
		if _, err := locker.ExecContext(ctx, "LOCK TABLES "+shop+".products WRITE"); err != nil {
			t.Fatal(err)
		}
		defer locker.ExecContext(context.Background(), "UNLOCK TABLES")
		job := cutDump(t, "shop", func() bool {
			var id int64
			err := my.QueryRow(`SELECT id FROM information_schema.processlist
				WHERE db = ? AND state LIKE 'Waiting for table metadata lock%' AND info LIKE '%products%' LIMIT 1`, shop).Scan(&id)
			if err != nil {
				return false
			}
			_, err = my.Exec(fmt.Sprintf("KILL %d", id))
			return err == nil
		})
		requireCutOff(t, job, "mariadb-dump failed")
		t.Logf("message: %s", job.StatusMessage)
	})

	t.Run("RestoredCopyDiffers", func(t *testing.T) {
		if b := e.backup("pgbench-tampered"); b.Status != vigil.BackupCompleted {
			t.Fatalf("backup: %s %s", b.Status, b.StatusMessage)
		}
		r := e.run("restore-test", "start", "--resource", "pgbench-tampered", "--plan", "checks", "--wait", "--json")
		var job vigil.RestoreJob
		if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || r.code != 1 {
			t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		if job.ValidationStatus != vigil.ValidationFailed || !strings.Contains(job.ValidationMessage, "table public.pgbench_branches is missing") {
			t.Fatalf("verdict %s: %q; want FAILED naming the missing table", job.ValidationStatus, job.ValidationMessage)
		}
		var n int
		admin.QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1", job.Metadata["target_database"]).Scan(&n)
		if job.DeletionStatus != vigil.DeletionSuccessful || n != 0 {
			t.Fatalf("the differing copy was not dropped: %s %q, exists %d", job.DeletionStatus, job.DeletionMessage, n)
		}
	})

	t.Run("WrongAnswer", func(t *testing.T) {
		e.backup("app-sqlite")
		r := e.run("restore-test", "start", "--resource", "app-sqlite", "--plan", "checks", "--wait", "--json")
		var job vigil.RestoreJob
		json.Unmarshal([]byte(r.stdout), &job)
		if r.code != 1 || job.ValidationStatus != vigil.ValidationFailed || !strings.Contains(job.ValidationMessage, `expected "3", got "2"`) {
			t.Fatalf("exit %d, verdict %s: %q", r.code, job.ValidationStatus, job.ValidationMessage)
		}
		if job.ValidationSeconds > 10 {
			t.Errorf("a wrong answer was retried for %.1fs: it is final at once", job.ValidationSeconds)
		}
	})

	t.Run("ServerRefuses", func(t *testing.T) {
		for resource, want := range map[string]string{
			"wrong-password": "Access denied for user 'root'",
			"no-such-db":     `database "vigil_e2e_no_such_db" does not exist`,
			"no-server":      "connect",
		} {
			r := e.run("backup", "start", "--resource", resource, "--vault", "lab-vault", "--wait", "--json")
			var job vigil.BackupJob
			json.Unmarshal([]byte(r.stdout), &job)
			if r.code != 1 || job.Status != vigil.BackupFailed || !strings.Contains(job.StatusMessage, want) || job.RecoveryPointID != "" {
				t.Errorf("%s: exit %d, %s %q; want FAILED with %q", resource, r.code, job.Status, job.StatusMessage, want)
			}
		}
		out := e.mustRun("events", "list", "--json") + e.mustRun("jobs", "list", "--json") + e.mustRun("logs", mustLastBackup(t, e, "wrong-password"))
		if strings.Contains(out, wrongPassword) || strings.Contains(e.serverLog.String(), wrongPassword) {
			t.Error("the DSN's password shows in events, jobs, logs or the server's output")
		}
	})

	t.Run("TargetExists", func(t *testing.T) {
		var rps []vigil.RecoveryPoint
		e.mustJSON(&rps, "recovery-points", "list", "--resource", "pgbench")
		if len(rps) == 0 {
			b := e.backup("pgbench")
			e.mustJSON(&rps, "recovery-points", "list", "--resource", "pgbench")
			if len(rps) == 0 {
				t.Fatalf("no recovery point: %s", b.StatusMessage)
			}
		}
		r := e.run("restore", "start", "--recovery-point", rps[0].ID, "--set", "target_database="+pg)
		if r.code != 1 && r.code != 2 || !strings.Contains(r.stderr, "already exists") {
			t.Fatalf("restore into the existing database %s: exit %d, %s", pg, r.code, r.stderr)
		}
		var n int
		if err := admin.QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1", pg).Scan(&n); err != nil || n != 1 {
			t.Fatalf("the existing database is gone: %d %v", n, err)
		}
	})

	// vigil killed while it loads a restore test's database: on restart
	// the test ends "interrupted" and the half-loaded database is dropped.
	t.Run("KilledDuringRestore", func(t *testing.T) {
		job := e.startTest("pgbench", "checks")
		name := "vigil_restore_" + job.ID
		// Whatever happens, no copy outlives the test.
		t.Cleanup(func() { admin.Exec(`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`) })
		// Killed once the database is created and marked: while the dump
		// loads. (Killed between CREATE DATABASE and its COMMENT, vigil
		// would rightly leave the unmarked database alone: README.)
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var n int
			admin.QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1 AND shobj_description(oid, 'pg_database') = $2",
				name, "vigil restore job "+job.ID).Scan(&n)
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("database %s was never created", name)
			}
		}
		e.kill()
		var mid vigil.RestoreJob
		e.serve()
		e.mustJSON(&mid, "jobs", "show", job.ID)
		if mid.ValidationStatus != vigil.ValidationAborted || !strings.Contains(mid.ValidationMessage, "interrupted") ||
			mid.DeletionStatus != vigil.DeletionSuccessful || !strings.Contains(mid.DeletionMessage, "dropped") {
			t.Fatalf("after the restart: validation %s (%s), deletion %s (%s)", mid.ValidationStatus, mid.ValidationMessage, mid.DeletionStatus, mid.DeletionMessage)
		}
		var n int
		admin.QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n)
		if n != 0 {
			t.Fatalf("database %s is still there after the restart", name)
		}
		// The recovery point is tested again, to a verdict.
		again := e.waitTest(e.retryOf(mid).ID)
		t.Cleanup(func() { admin.Exec(`DROP DATABASE IF EXISTS "vigil_restore_` + again.ID + `" WITH (FORCE)`) })
		if again.ValidationStatus != vigil.ValidationSuccessful || again.DeletionStatus != vigil.DeletionSuccessful {
			t.Errorf("the test queued again: validation %s (%s), deletion %s (%s)", again.ValidationStatus, again.ValidationMessage, again.DeletionStatus, again.DeletionMessage)
		}
		e.requireNoLeak()
	})

	e.stop()
	grepTree(t, e.path("vigil-data"), wrongPassword)

	t.Run("MissingTool", func(t *testing.T) {
		f := newEnv(t, envOptions{extra: `  - name: db
    type: postgres
    dsn: postgres://postgres@127.0.0.1:5432/test
`})
		f.env = append(f.env, "PATH="+t.TempDir())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, vigilBin, "serve")
		cmd.Env = f.environ()
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "pg_dump is not on PATH: install the Debian package postgresql-client") {
			t.Fatalf("serve without pg_dump: %v\n%s", err, out)
		}
	})
}

// mustLastBackup returns the id of the resource's latest backup job.
func mustLastBackup(t *testing.T, e *testEnv, resource string) string {
	t.Helper()
	var jobs []vigil.BackupJob
	e.mustJSON(&jobs, "jobs", "list", "--type", "backup")
	for _, j := range jobs {
		if j.Resource == resource {
			return j.ID
		}
	}
	t.Fatalf("no backup job of %s", resource)
	return ""
}

// waitBackup polls a backup job until it ends.
func waitBackup(t *testing.T, e *testEnv, id string) vigil.BackupJob {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var job vigil.BackupJob
		e.mustJSON(&job, "jobs", "show", id)
		if job.Status.Final() {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup %s did not end: %+v", id, job)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
