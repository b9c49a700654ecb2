package catalog_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-backup/vigil/catalog"
)

// defaultTestDatabaseURL is the PostgreSQL the tests use unless
// TEST_DATABASE_URL names another. Every test works in a schema of its own
// in that database and drops it at the end.
const defaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// testDatabase is an empty database for one test: a temporary directory for
// SQLite, a fresh schema for PostgreSQL.
type testDatabase struct {
	dialect string
	dsn     string // "" for SQLite
	dataDir string
}

// open opens a catalog on the database, closed when the test ends.
func (db testDatabase) open(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Open(context.Background(), db.dsn, db.dataDir)
	if err != nil {
		t.Fatalf("open %s catalog: %v", db.dialect, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close catalog: %v", err)
		}
	})
	return c
}

// forEachDialect runs test, in parallel, on an empty SQLite database and on
// an empty PostgreSQL schema: one test body for both, as the catalog
// promises the same behaviour on both.
func forEachDialect(t *testing.T, test func(t *testing.T, db testDatabase)) {
	t.Helper()
	t.Run(catalog.DialectSQLite, func(t *testing.T) {
		t.Parallel()
		test(t, newSQLiteDatabase(t))
	})
	t.Run(catalog.DialectPostgres, func(t *testing.T) {
		t.Parallel()
		test(t, newPostgresDatabase(t))
	})
}

func newSQLiteDatabase(t *testing.T) testDatabase {
	t.Helper()
	return testDatabase{dialect: catalog.DialectSQLite, dataDir: t.TempDir()}
}

// newPostgresDatabase creates a schema of its own for the test, dropped at
// its end, and returns a URL whose search_path selects it. An unreachable
// server fails the test: a skipped database test passes silently.
func newPostgresDatabase(t *testing.T) testDatabase {
	t.Helper()
	baseURL := os.Getenv("TEST_DATABASE_URL")
	if baseURL == "" {
		baseURL = defaultTestDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		t.Fatalf("PostgreSQL test service unreachable (TEST_DATABASE_URL, default %s): start it or point TEST_DATABASE_URL at one: %v",
			defaultTestDatabaseURL, err)
	}
	defer admin.Close(context.Background())

	schema := "vigil_test_" + randomHex(t)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// Runs after the catalog's Close, registered later.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, baseURL)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return testDatabase{dialect: catalog.DialectPostgres, dsn: u.String()}
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("read random bytes: %v", err)
	}
	return hex.EncodeToString(b[:])
}
