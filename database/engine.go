package database

import "github.com/vigil-backup/vigil/dbclient"

// The engines this package dumps and loads. The resource types that use
// them (resource/postgres, resource/mysql, resource/sqlite) have the same
// names.
const (
	EnginePostgres = dbclient.Postgres
	EngineMySQL    = dbclient.MySQL
	EngineSQLite   = "sqlite"
)
