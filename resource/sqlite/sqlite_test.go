package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/resourcetest"
	"github.com/vigil-backup/vigil/resource/sqlite"
)

func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.db")
	// WAL, as an app that writes while it is backed up keeps it.
	sqlExec(t, path, `PRAGMA journal_mode = WAL`,
		`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`,
		`INSERT INTO notes (body) VALUES ('one'), ('two'), ('three')`)
	resourcetest.Conformance(t, resourcetest.Case{
		Type: sqlite.Type,
		Resource: config.Resource{Name: "notes", Type: "sqlite", Path: path,
			Validate: []config.Validator{resourcetest.SQLCheck("SELECT count(*) FROM notes", "3")}},
		Damage: func(t testing.TB, _ resource.Copy, job vigil.RestoreJob) {
			// mode=rw: a copy that is not there is an error, not a new
			// empty database.
			sqlExec(t, "file:"+job.Metadata[resource.MetaTargetPath]+"?mode=rw", `DELETE FROM notes WHERE id > 1`)
		},
		// The copy is a file in its instance folder: nothing of it is
		// outside.
	})
}

// sqlExec runs stmts in the SQLite database dsn (a file, created if need
// be, or a file: URI).
func sqlExec(t testing.TB, dsn string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
