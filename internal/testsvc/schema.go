package testsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultTestDatabaseURL is the PostgreSQL database the tests use when
// TEST_DATABASE_URL is not set: the machine's own, with trust auth.
const DefaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresSchema makes an empty schema of its own for the test in the
// database TEST_DATABASE_URL names (DefaultTestDatabaseURL when unset),
// drops it when the test ends, after anything registered later (a
// catalog's Close), and returns a URL whose search_path selects it. An
// unreachable server fails the test: a skipped database test would pass
// silently.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = DefaultTestDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL test service unreachable (TEST_DATABASE_URL, default %s): start it or point TEST_DATABASE_URL at one: %v", DefaultTestDatabaseURL, err)
	}
	defer admin.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	schema := "vigil_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
