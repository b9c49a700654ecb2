package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/vigil-backup/vigil"
)

// sqliteTablesQuery lists the tables of an SQLite database, without
// SQLite's own.
const sqliteTablesQuery = `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`

// sqliteQuote quotes an identifier with double quotes.
func sqliteQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// openSQLite opens the database file at path in mode ro or rw; neither
// creates a file, so a wrong path is an error, not a new empty database.
func openSQLite(path, mode string) (*sql.DB, error) {
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: url.Values{
		"mode":    {mode},
		"_pragma": {"busy_timeout(10000)"},
	}.Encode()}
	return sql.Open("sqlite", u.String())
}

func dumpSQLite(ctx context.Context, src Source, w io.Writer) (*vigil.DatabaseInfo, error) {
	fi, err := os.Stat(src.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("SQLite database %s does not exist: check the resource's path", src.Path)
		}
		return nil, fmt.Errorf("SQLite database %s: %w", src.Path, err)
	}
	if err := os.MkdirAll(src.TempDir, 0o700); err != nil {
		return nil, fmt.Errorf("create temporary folder: %w", err)
	}
	tmp, err := os.CreateTemp(src.TempDir, "sqlite-*.db")
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	tmp.Close()
	// VACUUM INTO wants to create the file itself.
	os.Remove(tmp.Name())
	defer os.Remove(tmp.Name())

	db, err := openSQLite(src.Path, "ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// The copy VACUUM INTO makes is in rollback-journal mode whatever the
	// source's: the restore sets the source's again (only WAL is kept in
	// the file; the other modes are each connection's own).
	var journal string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal); err != nil {
		return nil, fmt.Errorf("read the journal mode of %s: %w", src.Path, err)
	}
	// VACUUM INTO reads the live database in one read transaction, so the
	// copy is consistent even while the app writes (in WAL mode without
	// blocking it), and is compact.
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmp.Name()); err != nil {
		return nil, fmt.Errorf("copy SQLite database %s: %w", src.Path, err)
	}
	db.Close()

	copyDB, err := openSQLite(tmp.Name(), "ro")
	if err != nil {
		return nil, err
	}
	defer copyDB.Close()
	info := &vigil.DatabaseInfo{Engine: EngineSQLite, Database: filepath.Base(src.Path),
		JournalMode: strings.ToLower(journal), FileMode: fmt.Sprintf("%#o", fi.Mode().Perm())}
	if err := copyDB.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&info.Server); err != nil {
		return nil, fmt.Errorf("read the copy of %s: %w", src.Path, err)
	}
	if info.Tables, err = countTables(ctx, copyDB, sqliteTablesQuery, sqliteQuote); err != nil {
		return nil, fmt.Errorf("count rows of the copy of %s: %w", src.Path, err)
	}
	copyDB.Close()

	f, err := os.Open(tmp.Name())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return nil, fmt.Errorf("stream the copy of %s: %w", src.Path, err)
	}
	return info, nil
}

func sqliteEngine() engine {
	return engine{
		dumpName: "database.sqlite",
		dump:     dumpSQLite,
		create:   func(_ context.Context, t Target) error { return createSQLite(t) },
		exists: func(_ context.Context, t Target) (bool, error) {
			_, err := os.Lstat(t.Path)
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			return err == nil, err
		},
		load: func(_ context.Context, t Target, r io.Reader) error { return loadSQLite(t, r) },
		// Only the file the restore created: a -wal or -journal beside
		// it was not written by vigil (a restore test's sit inside its
		// instance folder, which goes as a whole).
		drop: func(_ context.Context, t Target) error {
			if err := os.Remove(t.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		},
		open:           func(t Target) (*sql.DB, error) { return openSQLite(t.Path, "rw") },
		tablesQuery:    sqliteTablesQuery,
		quote:          sqliteQuote,
		integrityCheck: integrityCheck,
		file:           true,
	}
}

// integrityCheck runs PRAGMA integrity_check and reports what it found.
func integrityCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("PRAGMA integrity_check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("PRAGMA integrity_check: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("PRAGMA integrity_check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("PRAGMA integrity_check found %d problems: %s", len(problems), strings.Join(problems[:min(5, len(problems))], "; "))
	}
	return nil
}

func createSQLite(t Target) error {
	if err := os.MkdirAll(filepath.Dir(t.Path), 0o700); err != nil {
		return fmt.Errorf("create folder for %s: %w", t.Path, err)
	}
	f, err := os.OpenFile(t.Path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("file %s %w", t.Path, ErrExists)
	}
	if err != nil {
		return err
	}
	return f.Close()
}

func loadSQLite(t Target, r io.Reader) error {
	// O_NOFOLLOW: the file Create made, never a link put in its place.
	f, err := os.OpenFile(t.Path, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", t.Path, err)
	}
	if t.Info != nil && t.Info.FileMode != "" {
		mode, err := strconv.ParseUint(t.Info.FileMode, 8, 32)
		if err != nil {
			f.Close()
			return fmt.Errorf("recovery point's file mode %q is not octal", t.Info.FileMode)
		}
		if err := f.Chmod(os.FileMode(mode) & os.ModePerm); err != nil {
			f.Close()
			return fmt.Errorf("set the mode of %s: %w", t.Path, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", t.Path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if t.Info != nil && t.Info.JournalMode == "wal" {
		if err := setWAL(t.Path); err != nil {
			return fmt.Errorf("put %s in WAL mode, as its source was: %w", t.Path, err)
		}
	}
	return nil
}

// setWAL switches the database file at path to WAL mode, which SQLite
// keeps in the file.
func setWAL(path string) error {
	db, err := openSQLite(path, "rw")
	if err != nil {
		return err
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("SQLite answered journal mode %q", mode)
	}
	return db.Close()
}
