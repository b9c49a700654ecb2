package database

import (
	"context"
	"database/sql"
	"fmt"
	"io"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/dbclient"
)

// The engines this package dumps and loads. The resource types that use
// them (resource/postgres, resource/mysql, resource/sqlite) have the same
// names.
const (
	EnginePostgres = dbclient.Postgres
	EngineMySQL    = dbclient.MySQL
	EngineSQLite   = "sqlite"
)

// engine is one database engine's part of each operation; the exported
// functions of this package look it up and add what every engine shares.
// Each engine's file (postgres.go, mysql.go, sqlite.go) defines its own.
type engine struct {
	// dumpName is the dump's file name in a recovery point.
	dumpName string
	dump     func(ctx context.Context, src Source, w io.Writer) (*vigil.DatabaseInfo, error)
	create   func(ctx context.Context, t Target) error
	exists   func(ctx context.Context, t Target) (bool, error)
	load     func(ctx context.Context, t Target, r io.Reader) error
	// release, when set, hands a restored database over to its user.
	release func(ctx context.Context, t Target) error
	drop    func(ctx context.Context, t Target) error
	open    func(t Target) (*sql.DB, error)
	// tablesQuery lists the tables whose rows are counted; quote quotes
	// one's name.
	tablesQuery string
	quote       func(string) string
	// integrityCheck, when set, checks a restored database's structure.
	integrityCheck func(ctx context.Context, db *sql.DB) error
	// file: the engine keeps a database in one file, which names it, and
	// which a restore made where nothing was, so it needs no mark.
	file bool
}

// engineOf returns the engine called name.
func engineOf(name string) (engine, error) {
	switch name {
	case EnginePostgres:
		return postgresEngine(), nil
	case EngineMySQL:
		return mysqlEngine(), nil
	case EngineSQLite:
		return sqliteEngine(), nil
	}
	return engine{}, fmt.Errorf("resource type %q is not a database", name)
}
