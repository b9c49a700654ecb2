// Package sqlite is the resource type of an SQLite database file: copied
// consistently with VACUUM INTO while the database is in use, restored into
// a new file, and checked with PRAGMA integrity_check and its tables' row
// counts.
package sqlite

import (
	"github.com/vigil-backup/vigil/database"
	"github.com/vigil-backup/vigil/resource/sqldb"
)

// Type is the sqlite resource type.
var Type = sqldb.NewFileType("sqlite", database.EngineSQLite)
