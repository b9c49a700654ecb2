package mysql_test

import (
	"testing"

	"github.com/vigil-backup/vigil/resource/mysql"
	"github.com/vigil-backup/vigil/resource/resourcetest"
)

// testMariaDB is the server on the test machine: .ci/run starts it.
const testMariaDB = "root@tcp(127.0.0.1:3306)/mysql"

func TestConformance(t *testing.T) {
	my := resourcetest.NewServer(t, mysql.Type, "MariaDB", testMariaDB)
	resourcetest.Conformance(t, my.Case(t, "orders",
		`CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL)`,
		`INSERT INTO orders VALUES (1, 'tea'), (2, 'cups'), (3, 'pot')`))
}
