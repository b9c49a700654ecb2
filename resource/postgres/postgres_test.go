package postgres_test

import (
	"testing"

	"github.com/vigil-backup/vigil/resource/postgres"
	"github.com/vigil-backup/vigil/resource/resourcetest"
)

// testPostgres is the server on the test machine: .ci/run starts it.
const testPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func TestConformance(t *testing.T) {
	pg := resourcetest.NewServer(t, postgres.Type, "PostgreSQL", testPostgres)
	resourcetest.Conformance(t, pg.Case(t, "shop.orders",
		`CREATE SCHEMA shop`,
		`CREATE TABLE shop.orders (id int PRIMARY KEY, item text NOT NULL)`,
		`INSERT INTO shop.orders VALUES (1, 'tea'), (2, 'cups'), (3, 'pot')`))
}
