package catalog

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// ErrNewerCatalog is returned (wrapped) by Open when the catalog holds a
// migration this vigil does not know: a newer vigil wrote it, and this one
// would misread it.
var ErrNewerCatalog = errors.New("catalog was written by a newer vigil: upgrade vigil")

// ErrCatalogBehind is returned (wrapped) by OpenCurrent when the catalog
// lacks migrations this vigil needs: `vigil migrate` applies them.
var ErrCatalogBehind = errors.New("the catalog's schema is older than this vigil: run 'vigil migrate --config FILE' once, then start again")

// migrationFiles are vigil's migrations, NNN_name.sql, numbered from 001
// without gaps. A released migration is never edited: a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered step of the catalog's schema.
type migration struct {
	version int
	name    string
	sql     string // with {{tokens}}; see dialectSQL
}

// migrations is every migration, in order; loaded once from migrationFiles.
var migrations = mustLoadMigrations(migrationFiles)

var migrationName = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.sql$`)

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err) // the embedded files are fixed at build time and checked by the tests
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	paths, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []migration
	for i, p := range paths { // fs.Glob sorts
		m := migrationName.FindStringSubmatch(path.Base(p))
		if m == nil {
			return nil, fmt.Errorf("migration %s: name it NNN_name.sql", p)
		}
		version, _ := strconv.Atoi(m[1])
		if version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %03d: number migrations from 001 without gaps", p, i+1)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", p, err)
		}
		ms = append(ms, migration{version: version, name: m[2], sql: string(b)})
	}
	return ms, nil
}

// dialectTokens are the few things SQLite and PostgreSQL spell differently,
// written as {{token}} in migrations.
var dialectTokens = map[string]map[string]string{
	DialectSQLite: {
		// AUTOINCREMENT: SQLite would otherwise reuse the id of a deleted last row.
		"autoincrement_primary_key": "INTEGER PRIMARY KEY AUTOINCREMENT",
	},
	DialectPostgres: {
		"autoincrement_primary_key": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
	},
}

var tokenPattern = regexp.MustCompile(`\{\{\s*([a-z_]+)\s*\}\}`)

// dialectSQL replaces the {{tokens}} of a migration for dialect.
func dialectSQL(dialect, sqlText string) (string, error) {
	var unknown []string
	out := tokenPattern.ReplaceAllStringFunc(sqlText, func(token string) string {
		name := tokenPattern.FindStringSubmatch(token)[1]
		v, ok := dialectTokens[dialect][name]
		if !ok {
			unknown = append(unknown, name)
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown token {{%s}} for %s", strings.Join(unknown, "}}, {{"), dialect)
	}
	return out, nil
}

const (
	createMigrationTableSQL = `CREATE TABLE IF NOT EXISTS vigil_migration (
		version    BIGINT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`

	latestMigrationSQL = `SELECT COALESCE(MAX(version), 0) FROM vigil_migration`

	insertMigrationSQL = `INSERT INTO vigil_migration (version, name, applied_at) VALUES (?, ?, ?)`

	// migrationLockSQL names the PostgreSQL advisory lock that makes nodes
	// starting together migrate one after the other. It is per schema, so
	// catalogs in other schemas of the same database do not wait for each
	// other. SQLite needs no lock: every transaction begins IMMEDIATE, which
	// already excludes other writers, and each one reads the version it
	// builds on inside itself.
	migrationLockSQL = `hashtext('vigil_migration ' || COALESCE(current_schema(), ''))`
)

// migrate brings vigil's tables and River's up to date and refuses a
// catalog migrated by a newer vigil. vigil's migrations run in one
// transaction, so a failure leaves them as they were; River's each run in
// a transaction of their own, as some of them must commit before the next
// (PostgreSQL will not use an enum value added in the same transaction).
func (c *Catalog) migrate(ctx context.Context) error {
	inTx := c.InTx
	if c.dialect == DialectPostgres {
		// Everything runs on the connection holding the lock, which also
		// keeps a pool limited to one connection from waiting on itself.
		conn, err := c.pgxPool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock("+migrationLockSQL+")"); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		defer func() {
			if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+migrationLockSQL+")"); err != nil {
				// Ending the session is what releases the lock, then.
				conn.Hijack().Close(context.WithoutCancel(ctx))
			}
		}()
		inTx = func(ctx context.Context, fn func(tx *Tx) error) error { return inPgxTx(ctx, conn, fn) }
	}

	if err := inTx(ctx, func(tx *Tx) error { return c.migrateVigil(ctx, tx) }); err != nil {
		return err
	}
	for {
		var applied int
		err := inTx(ctx, func(tx *Tx) (err error) {
			applied, err = c.migrateRiverStep(ctx, tx)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate River's tables: %w", err)
		}
		if applied == 0 {
			return nil
		}
	}
}

// migrateVigil applies vigil's pending migrations in tx.
func (c *Catalog) migrateVigil(ctx context.Context, tx *Tx) error {
	if _, err := tx.db.exec(ctx, createMigrationTableSQL); err != nil {
		return fmt.Errorf("create migration table: %w", err)
	}
	var current int
	if err := tx.db.queryRow(ctx, latestMigrationSQL).Scan(&current); err != nil {
		return fmt.Errorf("read migration version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("catalog is at migration %d, this vigil knows up to %d: %w", current, len(migrations), ErrNewerCatalog)
	}
	for _, m := range migrations[current:] {
		sqlText, err := dialectSQL(c.dialect, m.sql)
		if err != nil {
			return fmt.Errorf("migration %03d_%s: %w", m.version, m.name, err)
		}
		if _, err := tx.db.exec(ctx, sqlText); err != nil {
			return fmt.Errorf("apply migration %03d_%s: %w", m.version, m.name, err)
		}
		if _, err := tx.db.exec(ctx, insertMigrationSQL, m.version, m.name, micros(now())); err != nil {
			return fmt.Errorf("record migration %03d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}

// migrateRiverStep applies River's next pending migration, if any, in tx,
// with the River driver matching the catalog's database, and returns how
// many it applied.
func (c *Catalog) migrateRiverStep(ctx context.Context, tx *Tx) (int, error) {
	var (
		res *rivermigrate.MigrateResult
		err error
	)
	oneStep := &rivermigrate.MigrateOpts{MaxSteps: 1}
	switch c.dialect {
	case DialectSQLite:
		var migrator *rivermigrate.Migrator[*sql.Tx]
		if migrator, err = rivermigrate.New(riversqlite.New(c.sqlDB), nil); err == nil {
			res, err = migrator.MigrateTx(ctx, tx.Raw().(*sql.Tx), rivermigrate.DirectionUp, oneStep)
		}
	case DialectPostgres:
		var migrator *rivermigrate.Migrator[pgx.Tx]
		if migrator, err = rivermigrate.New(riverpgxv5.New(c.pgxPool), nil); err == nil {
			res, err = migrator.MigrateTx(ctx, tx.Raw().(pgx.Tx), rivermigrate.DirectionUp, oneStep)
		}
	}
	if err != nil {
		return 0, err
	}
	return len(res.Versions), nil
}

// SchemaVersions are how far a catalog's schema is, and how far this vigil
// would take it.
type SchemaVersions struct {
	Vigil, VigilWanted int
	River, RiverWanted int
}

// Current reports whether nothing is left to migrate.
func (v SchemaVersions) Current() bool {
	return v.Vigil >= v.VigilWanted && v.River >= v.RiverWanted
}

// SchemaVersions reads the versions of vigil's and River's migrations the
// catalog holds, without changing anything.
func (c *Catalog) SchemaVersions(ctx context.Context) (SchemaVersions, error) {
	v := SchemaVersions{VigilWanted: len(migrations)}
	exists, err := c.tableExists(ctx, "vigil_migration")
	if err != nil {
		return v, fmt.Errorf("read migration version: %w", err)
	}
	if exists {
		if err := c.db.queryRow(ctx, latestMigrationSQL).Scan(&v.Vigil); err != nil {
			return v, fmt.Errorf("read migration version: %w", err)
		}
	}
	var existing, all []rivermigrate.Migration
	switch c.dialect {
	case DialectSQLite:
		var migrator *rivermigrate.Migrator[*sql.Tx]
		if migrator, err = rivermigrate.New(riversqlite.New(c.sqlDB), nil); err == nil {
			all = migrator.AllVersions()
			existing, err = migrator.ExistingVersions(ctx)
		}
	case DialectPostgres:
		var migrator *rivermigrate.Migrator[pgx.Tx]
		if migrator, err = rivermigrate.New(riverpgxv5.New(c.pgxPool), nil); err == nil {
			all = migrator.AllVersions()
			existing, err = migrator.ExistingVersions(ctx)
		}
	}
	if err != nil {
		return v, fmt.Errorf("read River's migration version: %w", err)
	}
	if len(all) > 0 {
		v.RiverWanted = all[len(all)-1].Version
	}
	if len(existing) > 0 {
		v.River = existing[len(existing)-1].Version
	}
	return v, nil
}

// checkSchema refuses a catalog that is behind this vigil's migrations, or
// ahead of them.
func (c *Catalog) checkSchema(ctx context.Context) error {
	v, err := c.SchemaVersions(ctx)
	if err != nil {
		return err
	}
	if v.Vigil > v.VigilWanted {
		return fmt.Errorf("catalog is at migration %d, this vigil knows up to %d: %w", v.Vigil, v.VigilWanted, ErrNewerCatalog)
	}
	if !v.Current() {
		return fmt.Errorf("catalog is at migration %d of %d (River's tables at %d of %d): %w",
			v.Vigil, v.VigilWanted, v.River, v.RiverWanted, ErrCatalogBehind)
	}
	return nil
}

// tableExists reports whether the catalog's schema has a table called name.
func (c *Catalog) tableExists(ctx context.Context, name string) (bool, error) {
	query := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if c.dialect == DialectPostgres {
		query = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`
	}
	var n int
	if err := c.db.queryRow(ctx, query, name).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}
