package catalog_test

import (
	"context"
	"testing"

	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

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
	return testDatabase{dialect: catalog.DialectPostgres, dsn: testsvc.PostgresSchema(t)}
}
