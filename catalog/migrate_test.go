package catalog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-backup/vigil/catalog"
)

// queryInt runs a query returning one integer on the catalog's own pool.
func queryInt(t *testing.T, c *catalog.Catalog, query string) int {
	t.Helper()
	var n int
	var err error
	switch c.Dialect() {
	case catalog.DialectSQLite:
		err = c.SQLDB().QueryRow(query).Scan(&n)
	case catalog.DialectPostgres:
		err = c.PGXPool().QueryRow(context.Background(), query).Scan(&n)
	}
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// execSQL runs a statement on the catalog's own pool.
func execSQL(t *testing.T, c *catalog.Catalog, stmt string) {
	t.Helper()
	var err error
	switch c.Dialect() {
	case catalog.DialectSQLite:
		_, err = c.SQLDB().Exec(stmt)
	case catalog.DialectPostgres:
		_, err = c.PGXPool().Exec(context.Background(), stmt)
	}
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func TestOpenMigrates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		first := db.open(t)
		versions := queryInt(t, first, "SELECT COUNT(*) FROM vigil_migration")
		latest := queryInt(t, first, "SELECT MAX(version) FROM vigil_migration")
		if versions == 0 || versions != latest {
			t.Fatalf("vigil_migration holds %d versions up to %d, want 1…n", versions, latest)
		}
		if n := queryInt(t, first, "SELECT COUNT(*) FROM river_migration"); n == 0 {
			t.Fatal("River's migrations did not run")
		}
		riverVersions := queryInt(t, first, "SELECT COUNT(*) FROM river_migration")
		requireNoError(t, first.AppendLog(ctx, "bj-1", "kept across opens"))
		requireNoError(t, first.Close())

		// Opening again, even by several nodes at once, changes nothing.
		var wg sync.WaitGroup
		catalogs := make([]*catalog.Catalog, 3)
		errs := make([]error, 3)
		for i := range catalogs {
			wg.Go(func() { catalogs[i], errs[i] = catalog.Open(ctx, db.dsn, db.dataDir) })
		}
		wg.Wait()
		for i, c := range catalogs {
			if errs[i] != nil {
				t.Fatalf("open again: %v", errs[i])
			}
			t.Cleanup(func() { c.Close() })
		}
		again := catalogs[0]
		requireEqual(t, queryInt(t, again, "SELECT COUNT(*) FROM vigil_migration"), versions)
		requireEqual(t, queryInt(t, again, "SELECT COUNT(*) FROM river_migration"), riverVersions)
		lines, err := again.Logs(ctx, "bj-1")
		requireNoError(t, err)
		requireEqual(t, len(lines), 1)
	})
}

func TestOpenRefusesNewerCatalog(t *testing.T) {
	t.Parallel()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		execSQL(t, c, "INSERT INTO vigil_migration (version, name, applied_at) VALUES (9999, 'from_the_future', 0)")
		requireNoError(t, c.Close())

		_, err := catalog.Open(context.Background(), db.dsn, db.dataDir)
		if !errors.Is(err, catalog.ErrNewerCatalog) {
			t.Fatalf("got %v, want an error wrapping ErrNewerCatalog", err)
		}
		if !strings.Contains(err.Error(), "upgrade vigil") {
			t.Fatalf("error %q does not say what to do", err)
		}
	})
}

func TestOpenAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("UnsupportedDoesNotEchoPassword", func(t *testing.T) {
		t.Parallel()
		for _, dsn := range []string{"mysql://vigil:s3cret@db/vigil", "/var/lib/vigil/vigil.db", "file:vigil.db?pw=s3cret", "postgres:/x"} {
			_, err := catalog.Open(ctx, dsn, t.TempDir())
			if err == nil {
				t.Fatalf("Open(%q) succeeded", dsn)
			}
			if !strings.Contains(err.Error(), "postgres://") || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("Open(%q): %v: want the accepted forms, without the password", dsn, err)
			}
		}
		_, err := catalog.Open(ctx, "mysql://vigil:s3cret@db/vigil", t.TempDir())
		if !strings.Contains(err.Error(), `scheme "mysql"`) {
			t.Fatalf("error %q does not name the scheme it refused", err)
		}
	})

	t.Run("SQLiteNeedsDataDir", func(t *testing.T) {
		t.Parallel()
		_, err := catalog.Open(ctx, "", "")
		if err == nil || !strings.Contains(err.Error(), "data directory") {
			t.Fatalf("got %v, want an error asking for a data directory", err)
		}
	})

	t.Run("SQLiteFileIsPrivate", func(t *testing.T) {
		t.Parallel()
		dataDir := filepath.Join(t.TempDir(), "not yet", "there?")
		c, err := catalog.Open(ctx, "", dataDir)
		requireNoError(t, err)
		t.Cleanup(func() { c.Close() })
		requireEqual(t, c.Dialect(), catalog.DialectSQLite)
		if c.SQLDB() == nil || c.PGXPool() != nil {
			t.Fatal("a SQLite catalog must expose SQLDB and no PGXPool")
		}
		requireNoError(t, c.AppendLog(ctx, "bj-1", "write something"))
		for _, name := range []string{catalog.SQLiteFile, catalog.SQLiteFile + "-wal"} {
			info, err := os.Stat(filepath.Join(dataDir, name))
			requireNoError(t, err)
			if mode := info.Mode().Perm(); mode != 0o600 {
				t.Errorf("%s has mode %o, want 600", name, mode)
			}
		}
		info, err := os.Stat(dataDir)
		requireNoError(t, err)
		if mode := info.Mode().Perm(); mode != 0o700 {
			t.Errorf("data directory has mode %o, want 700", mode)
		}
	})

	t.Run("PostgresPool", func(t *testing.T) {
		t.Parallel()
		c := newPostgresDatabase(t).open(t)
		requireEqual(t, c.Dialect(), catalog.DialectPostgres)
		if c.SQLDB() != nil || c.PGXPool() == nil {
			t.Fatal("a PostgreSQL catalog must expose PGXPool and no SQLDB")
		}
	})

	t.Run("PostgresMissingSchema", func(t *testing.T) {
		t.Parallel()
		db := newPostgresDatabase(t)
		dsn := strings.Replace(db.dsn, "search_path=vigil_test_", "search_path=vigil_missing_", 1)
		_, err := catalog.Open(ctx, dsn, "")
		if err == nil || !strings.Contains(err.Error(), "CREATE SCHEMA") {
			t.Fatalf("got %v, want an error saying to create the schema", err)
		}
	})
}
