// Package sqlite is the resource type of an SQLite database file: copied
// consistently with VACUUM INTO while the database is in use, restored into
// a new file, and checked with PRAGMA integrity_check and its tables' row
// counts.
package sqlite

import (
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/database"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/sqldb"
)

// Type is the sqlite resource type.
type Type struct{}

var _ resource.Type = Type{}

func (Type) Name() string { return database.EngineSQLite }

func (Type) Open(cfg config.Resource, env resource.Env) (resource.Resource, error) {
	return sqldb.Open(cfg, env, database.EngineSQLite, true)
}
