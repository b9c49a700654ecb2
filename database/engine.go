package database

import "github.com/vigil-backup/vigil"

// The engines this package dumps and loads, named as the resource types
// that use them.
const (
	EnginePostgres = vigil.ResourcePostgres
	EngineMySQL    = vigil.ResourceMySQL
	EngineSQLite   = vigil.ResourceSQLite
)
