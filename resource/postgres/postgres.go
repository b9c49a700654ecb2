// Package postgres is the resource type of a PostgreSQL database: dumped
// with pg_dump in a snapshot whose rows are counted in the same view,
// restored with pg_restore into a new database on the resource's server
// (or another), and checked table by table.
package postgres

import (
	"github.com/vigil-backup/vigil/database"
	"github.com/vigil-backup/vigil/resource/sqldb"
)

// Type is the postgres resource type.
var Type = sqldb.NewServerType("postgres", database.EnginePostgres)
