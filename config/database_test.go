package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDatabaseResources(t *testing.T) {
	cfg, err := Parse([]byte(`
resources:
  - name: orders-db
    type: postgres
    dsn_env: ORDERS_DSN
    pg_dump_path: /usr/lib/postgresql/16/bin/pg_dump
    validate:
      - sql: {query: "select count(*) from orders", expect: "100000"}
      - sql: {query: "select max(created_at) > now() - interval '2 days' from orders", expect: "true"}
      - sql: {query: "select 1", expect_true: true}
      - sql: {query: "select * from orders limit 3", expect_rows: 3}
  - name: shop-db
    type: mysql
    dsn: root@tcp(127.0.0.1:3306)/shop
  - name: app-sqlite
    type: sqlite
    path: /srv/app/app.db
    validate:
      - checksum: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	orders, _ := cfg.Resource("orders-db")
	if len(orders.Validate) != 4 || orders.Validate[0].Kind() != "sql" || time.Duration(orders.Validate[0].SQL.Timeout) != DefaultSQLTimeout {
		t.Errorf("sql validators: %+v", orders.Validate)
	}
	if shop, _ := cfg.Resource("shop-db"); len(shop.Validate) != 0 {
		t.Errorf("a database gets no default validator (its tables are always checked): %+v", shop.Validate)
	}
	if !IsDatabase("sqlite") || IsDatabase("app") {
		t.Error("IsDatabase")
	}
}

func TestParseRefusesBadDatabaseResources(t *testing.T) {
	pg := func(more string) string {
		return "resources:\n  - name: db\n    type: postgres\n" + more
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"no dsn", pg(""), "needs dsn, dsn_env or dsn_file"},
		{"two dsns", pg("    dsn: postgres://u@h/db\n    dsn_env: X\n"), "only one of dsn, dsn_env and dsn_file"},
		{"password in the file", pg("    dsn: postgres://u:hunter2@h/db\n"), "holds a password"},
		{"not a URL", pg("    dsn: host=h dbname=db\n"), "is not a PostgreSQL URL"},
		{"no database", pg("    dsn: postgres://u@h:5432\n"), "names no database"},
		{"path on postgres", pg("    dsn: postgres://u@h/db\n    path: /x\n"), "reached through its dsn"},
		{"mysql tool on postgres", pg("    dsn: postgres://u@h/db\n    mysqldump_path: /x\n"), "mysqldump_path: does not belong"},
		{"checksum on postgres", pg("    dsn: postgres://u@h/db\n    validate:\n      - checksum: {}\n"), "use sql validators"},
		{"bad mysql dsn", "resources:\n  - {name: m, type: mysql, dsn: \"mysql://root@h/shop\"}\n", "is not a MySQL DSN"},
		{"sqlite without path", "resources:\n  - {name: s, type: sqlite}\n", "give the SQLite database file"},
		{"dsn on sqlite", "resources:\n  - {name: s, type: sqlite, path: /x.db, dsn: \"postgres://u@h/db\"}\n", "belong to types postgres and mysql"},
		{"sql on a directory", "resources:\n  - name: d\n    type: directory\n    path: /x\n    validate:\n      - sql: {query: select 1, expect: \"1\"}\n", "is not one"},
		{"sql without expectation", pg("    dsn: postgres://u@h/db\n    validate:\n      - sql: {query: select 1}\n"), "needs exactly one of expect"},
		{"sql with two expectations", pg("    dsn: postgres://u@h/db\n    validate:\n      - sql: {query: select 1, expect: \"1\", expect_true: true}\n"), "needs exactly one of expect"},
		{"sql without query", pg("    dsn: postgres://u@h/db\n    validate:\n      - sql: {expect_rows: 1}\n"), "sql.query: is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestLoadDatabaseSecretsAndTools(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "dsn"), []byte("root:s3cret@tcp(127.0.0.1:3306)/shop\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "pg_dump"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "pg_restore"), []byte("#!/bin/sh\n"), 0o755)
	cfgPath := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(cfgPath, []byte(`
resources:
  - {name: orders, type: postgres, dsn_env: ORDERS_DSN, pg_dump_path: ./pg_dump, pg_restore_path: ./pg_restore}
  - {name: shop, type: mysql, dsn_file: dsn}
  - {name: bad, type: postgres, dsn_env: BAD_DSN, pg_dump_path: ./pg_dump, pg_restore_path: ./pg_restore}
`), 0o600)
	t.Setenv("ORDERS_DSN", "postgres://app:pw@db:5432/orders")
	t.Setenv("BAD_DSN", "host=db password=leaked")
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.LoadPasswords()
	if err == nil || !strings.Contains(err.Error(), "resources[2].dsn_env") || strings.Contains(err.Error(), "leaked") {
		t.Fatalf("a bad DSN from the environment: %v", err)
	}
	orders, _ := cfg.Resource("orders")
	shop, _ := cfg.Resource("shop")
	if orders.Server.String() != "postgres://app@db:5432/orders" || !orders.Server.HasPassword() || shop.Server.Database != "shop" || !shop.Server.HasPassword() {
		t.Fatalf("servers: %q %q", orders.Server.String(), shop.Server.String())
	}
	if !strings.Contains(strings.Join(cfg.SecretEnv(), " "), "ORDERS_DSN") {
		t.Errorf("ORDERS_DSN is not treated as a secret: %v", cfg.SecretEnv())
	}

	t.Setenv("PATH", t.TempDir()) // no mariadb-dump for shop
	err = cfg.LookupTools()
	if err == nil || !strings.Contains(err.Error(), `mysql "shop"`) || !strings.Contains(err.Error(), "mariadb-client") || strings.Contains(err.Error(), `"orders"`) {
		t.Fatalf("LookupTools: %v", err)
	}
	orders, _ = cfg.Resource("orders")
	if orders.Tools.PGDump != filepath.Join(dir, "pg_dump") {
		t.Errorf("pg_dump_path is taken from the config's folder: %q", orders.Tools.PGDump)
	}
}
