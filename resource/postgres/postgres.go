// Package postgres is the resource type of a PostgreSQL database: dumped
// with pg_dump in a snapshot whose rows are counted in the same view,
// restored with pg_restore into a new database on the resource's server
// (or another), and checked table by table.
package postgres

import (
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/database"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/sqldb"
)

// Type is the postgres resource type.
type Type struct{}

var _ resource.Type = Type{}

func (Type) Name() string { return database.EnginePostgres }

func (Type) Open(cfg config.Resource, env resource.Env) (resource.Resource, error) {
	return sqldb.Open(cfg, env, database.EnginePostgres, false)
}
