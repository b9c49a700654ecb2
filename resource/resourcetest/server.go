package resourcetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/dbclient"
	"github.com/vigil-backup/vigil/resource"
)

// Server is a real database server (PostgreSQL, MariaDB) that the
// conformance test of a server database type backs up from and restores
// onto. The test reaches it through database/sql, not through vigil's
// database package, so that what it sees of a copy is the server's word.
type Server struct {
	Type resource.Type
	// Admin is the database the test connects to, as a user who may
	// create and drop databases.
	Admin dbclient.Server
	// Tools are the type's client programs, found on PATH.
	Tools dbclient.Tools

	service string
	sql     serverSQL
	db      *sql.DB
}

// serverSQL is what differs between the servers' SQL.
type serverSQL struct {
	driver string
	quote  func(name string) string
	// drop drops the database quoted at %s, ending its connections.
	drop string
	// count counts the databases named by its one parameter.
	count string
}

var serverSQLs = map[string]serverSQL{
	dbclient.Postgres: {
		driver: "pgx",
		quote:  func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` },
		drop:   "DROP DATABASE IF EXISTS %s WITH (FORCE)",
		count:  "SELECT count(*) FROM pg_database WHERE datname = $1",
	},
	dbclient.MySQL: {
		driver: "mysql",
		quote:  func(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" },
		drop:   "DROP DATABASE IF EXISTS %s",
		count:  "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?",
	},
}

// NewServer connects to the server of typ at dsn (a DSN as a resource of
// typ writes it) and finds the type's client programs. The test fails,
// naming service, when the server does not answer or a program is missing:
// .ci/run starts the servers and installs the programs.
func NewServer(t *testing.T, typ resource.Type, service, dsn string) *Server {
	t.Helper()
	q, ok := serverSQLs[typ.Name()]
	if !ok {
		t.Fatalf("resourcetest has no database server for resource type %s", typ.Name())
	}
	admin, err := dbclient.ParseDSN(typ.Name(), dsn)
	if err != nil {
		t.Fatalf("the DSN of %s %v", service, err)
	}
	s := &Server{Type: typ, Admin: admin, service: service, sql: q}
	if s.db, err = s.open(admin); err != nil {
		t.Fatalf("this test needs %s at %s: %v", service, admin, err)
	}
	t.Cleanup(func() { s.db.Close() })
	if s.Tools, err = dbclient.FindTools(typ.Name(), map[string]string{}); err != nil {
		t.Fatalf("this test needs the client programs of %s: %v", service, err)
	}
	return s
}

// open connects to database srv on the server.
func (s *Server) open(srv dbclient.Server) (*sql.DB, error) {
	db, err := sql.Open(s.sql.driver, srv.DSN())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// connect is open for a database that the test made or restored.
func (s *Server) connect(t testing.TB, srv dbclient.Server) *sql.DB {
	t.Helper()
	db, err := s.open(srv)
	if err != nil {
		t.Fatalf("connect to database %s on %s: %v", srv.Database, s.service, err)
	}
	return db
}

// Database creates database name on the server, a new one of its own
// when name is "", runs stmts in it, and drops it when the test ends. It
// returns the database's DSN.
func (s *Server) Database(t testing.TB, name string, stmts ...string) dbclient.Server {
	t.Helper()
	if name == "" {
		b := make([]byte, 6)
		rand.Read(b)
		name = "vigil_conformance_" + hex.EncodeToString(b)
	}
	if _, err := s.db.Exec("CREATE DATABASE " + s.sql.quote(name)); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := s.db.Exec(fmt.Sprintf(s.sql.drop, s.sql.quote(name))); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	s.Exec(t, name, stmts...)
	return s.Admin.WithDatabase(name)
}

// Exec runs stmts in database name.
func (s *Server) Exec(t testing.TB, name string, stmts ...string) {
	t.Helper()
	db := s.connect(t, s.Admin.WithDatabase(name))
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s in database %s: %v", stmt, name, err)
		}
	}
}

// Exists reports whether the server has a database called name.
func (s *Server) Exists(t testing.TB, name string) bool {
	t.Helper()
	var n int
	if err := s.db.QueryRow(s.sql.count, name).Scan(&n); err != nil {
		t.Fatalf("look for database %s: %v", name, err)
	}
	return n > 0
}

// Case is the conformance case of the server's type: its resource backs
// up a new database on the server that setup fills (dropped when the test
// ends), and checks with an sql validator that a copy's table holds the
// rows it held. A copy is its restore test's new database
// (target_database): it is damaged by deleting the table's rows, it exists
// while the server has a database of its name, and a squatter takes that
// name with a database that carries no mark of vigil's.
func (s *Server) Case(t testing.TB, table string, setup ...string) Case {
	t.Helper()
	src := s.Database(t, "", setup...)
	db := s.connect(t, src)
	defer db.Close()
	count := "SELECT count(*) FROM " + table
	var rows string
	if err := db.QueryRow(count).Scan(&rows); err != nil || rows == "0" {
		t.Fatalf("%s after setup: %s rows, %v; the copy's damage deletes its rows, so it needs some", table, rows, err)
	}
	copyOf := func(job vigil.RestoreJob) string { return job.Metadata[resource.MetaTargetDatabase] }
	return Case{
		Type: s.Type,
		Resource: config.Resource{Name: "source", Type: s.Type.Name(), DSN: src.String(), Server: src, Tools: s.Tools,
			Validate: []config.Validator{SQLCheck(count, rows)}},
		Damage: func(t testing.TB, _ resource.Copy, job vigil.RestoreJob) {
			s.Exec(t, copyOf(job), "DELETE FROM "+table)
		},
		Exists: func(t testing.TB, job vigil.RestoreJob) bool { return s.Exists(t, copyOf(job)) },
		Squat:  func(t testing.TB, job vigil.RestoreJob) { s.Database(t, copyOf(job)) },
	}
}
