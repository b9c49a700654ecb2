package worker

import (
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/app"
	"github.com/vigil-backup/vigil/resource/directory"
	"github.com/vigil-backup/vigil/resource/mysql"
	"github.com/vigil-backup/vigil/resource/postgres"
	"github.com/vigil-backup/vigil/resource/sqlite"
)

// resourceTypes are the resource types this build knows: a new type is
// its package and one line here (and its rules in config's type table).
var resourceTypes = []resource.Type{
	directory.Type{},
	app.Type{},
	postgres.Type,
	mysql.Type,
	sqlite.Type,
}
