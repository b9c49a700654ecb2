package catalog

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestRebind(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ? AND c IN (?, ?)", "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"},
		{"SELECT '?', \"odd?name\" FROM t WHERE x = ?", "SELECT '?', \"odd?name\" FROM t WHERE x = $1"},
		{"SELECT 'it''s ?' WHERE x = ?", "SELECT 'it''s ?' WHERE x = $1"},
		{"-- why?\nSELECT ? /* a ? here */ , ?", "-- why?\nSELECT $1 /* a ? here */ , $2"},
		{"SELECT 'unterminated ?", "SELECT 'unterminated ?"},
	}
	for _, tt := range tests {
		if got := rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMigrationsRenderForEveryDialect checks the embedded migrations are
// numbered right and use only tokens every dialect defines.
func TestMigrationsRenderForEveryDialect(t *testing.T) {
	t.Parallel()
	if len(migrations) == 0 {
		t.Fatal("no migrations embedded")
	}
	for _, m := range migrations {
		for dialect := range dialectTokens {
			out, err := dialectSQL(dialect, m.sql)
			if err != nil {
				t.Fatalf("migration %03d for %s: %v", m.version, dialect, err)
			}
			if strings.Contains(out, "{{") {
				t.Fatalf("migration %03d for %s keeps a token", m.version, dialect)
			}
		}
	}
	if _, err := dialectSQL(DialectSQLite, "CREATE TABLE x (id {{no_such_token}})"); err == nil {
		t.Fatal("an unknown token was accepted")
	}
}

func TestLoadMigrationsChecksNumbering(t *testing.T) {
	t.Parallel()
	for name, files := range map[string]fstest.MapFS{
		"gap":      {"migrations/001_a.sql": {}, "migrations/003_c.sql": {}},
		"bad name": {"migrations/001-a.sql": {}},
		"from two": {"migrations/002_b.sql": {}},
	} {
		if _, err := loadMigrations(files); err == nil {
			t.Errorf("%s: loadMigrations accepted %v", name, files)
		}
	}
	ms, err := loadMigrations(fstest.MapFS{"migrations/002_b.sql": {Data: []byte("B")}, "migrations/001_a.sql": {Data: []byte("A")}})
	if err != nil || len(ms) != 2 || ms[0].name != "a" || ms[1].sql != "B" {
		t.Fatalf("loadMigrations = %+v, %v", ms, err)
	}
}

// TestBusyErrorSaysWhatToDo provokes a real SQLITE_BUSY: a second pool on
// the catalog file, not waiting at all, tries to write while a catalog
// transaction holds the write lock.
func TestBusyErrorSaysWhatToDo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	c, err := Open(ctx, "", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	impatient, err := sql.Open("sqlite", strings.Replace(sqliteDSN(dataDir+"/"+SQLiteFile), "_busy_timeout=10000", "_busy_timeout=0", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer impatient.Close()

	err = c.InTx(ctx, func(tx *Tx) error {
		if err := tx.AppendLog(ctx, "bj-1", "holding the write lock"); err != nil {
			return err
		}
		return (records{db: sqlDBTX{impatient}}).AppendLog(ctx, "bj-1", "cannot get in")
	})
	if err == nil || !strings.Contains(err.Error(), "write through the *Tx") {
		t.Fatalf("got %v, want SQLITE_BUSY explained", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got a timeout, want SQLITE_BUSY: %v", err)
	}
}
