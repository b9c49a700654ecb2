package dbclient

import (
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, engine, dsn string) Server {
	t.Helper()
	s, err := ParseDSN(engine, dsn)
	if err != nil {
		t.Fatalf("parse %s DSN: %v", engine, err)
	}
	return s
}

func TestParseDSN(t *testing.T) {
	pg := mustParse(t, Postgres, "postgres://app:pw%40x@db.example:5433/orders?sslmode=require")
	if pg.Database != "orders" || !pg.HasPassword() {
		t.Fatalf("parsed %+v", pg)
	}
	if s := pg.String(); s != "postgres://app@db.example:5433/orders?sslmode=require" {
		t.Errorf("String() = %q", s)
	}
	if s := pg.WithDatabase("new").String(); s != "postgres://app@db.example:5433/new?sslmode=require" {
		t.Errorf("WithDatabase = %q", s)
	}
	if got := pg.Redact("FATAL: password pw@x rejected (pw%40x)"); strings.Contains(got, "pw@x") || strings.Contains(got, "pw%40x") {
		t.Errorf("Redact left the password: %q", got)
	}
	if env := pg.PasswordEnv(); !slices.Equal(env, []string{"PGPASSWORD=pw@x"}) {
		t.Errorf("PasswordEnv = %v", env)
	}
	other := mustParse(t, Postgres, "postgres://app@db.example:5433/orders?sslmode=require")
	if !other.SameServer(pg) || other.WithPasswordOf(pg).DSN() != pg.DSN() {
		t.Errorf("same server: %v; with password %q, want %q", other.SameServer(pg), other.WithPasswordOf(pg).DSN(), pg.DSN())
	}

	my := mustParse(t, MySQL, "shop:pw@tcp(127.0.0.1:3307)/shop?tls=true")
	if s := my.String(); strings.Contains(s, "pw") || !strings.Contains(s, "shop@tcp(127.0.0.1:3307)/shop") {
		t.Errorf("String() = %q", s)
	}
	if args := my.MySQLArgs(); !slices.Contains(args, "--port=3307") || !slices.Contains(args, "--ssl-verify-server-cert") || slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "pw") }) {
		t.Errorf("mysql args %v", args)
	}

	// A password in the query is kept as secret as one in the user part.
	q := mustParse(t, Postgres, "postgres://app@db:5432/orders?sslmode=disable&password=hunter2")
	if !q.HasPassword() || strings.Contains(q.String(), "hunter2") || strings.Contains(q.PGConnArg(), "hunter2") ||
		strings.Contains(q.ServerString(), "hunter2") || !strings.Contains(q.DSN(), "hunter2") {
		t.Errorf("password in the query: has %v, String %q, conn arg %q, DSN %q", q.HasPassword(), q.String(), q.PGConnArg(), q.DSN())
	}

	for _, bad := range []struct{ engine, dsn string }{
		{Postgres, "postgres://u@h:5432/app?dbname=orders"},
		{Postgres, "postgres://u@h:5432/app?database=orders"},
		{Postgres, "postgres://u@h:5432/app?sslpassword=secretpw"},
		{Postgres, "host=x dbname=y"},
		{Postgres, "postgres://x:secretpw@h:5432/"},
		{MySQL, "x:secretpw@tcp(h:3306)/"},
		{MySQL, "nonsense:secretpw@@@"},
	} {
		_, err := ParseDSN(bad.engine, bad.dsn)
		if err == nil || strings.Contains(err.Error(), "secretpw") {
			t.Errorf("ParseDSN(%s): got %v, want an error that does not quote the DSN", bad.engine, err)
		}
	}
}
