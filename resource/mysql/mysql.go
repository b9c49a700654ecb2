// Package mysql is the resource type of a MySQL or MariaDB database:
// dumped with mariadb-dump (or mysqldump) in one transaction, its rows
// counted in the dump stream as it passes, restored with the mariadb (or
// mysql) client into a new database, its scheduled events disabled in a
// restore test's copy.
package mysql

import (
	"github.com/vigil-backup/vigil/database"
	"github.com/vigil-backup/vigil/resource/sqldb"
)

// Type is the mysql resource type.
var Type = sqldb.NewServerType("mysql", database.EngineMySQL)
