package startcheck

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/app"
	"github.com/vigil-backup/vigil/resource/directory"
	"github.com/vigil-backup/vigil/resource/mysql"
	"github.com/vigil-backup/vigil/resource/postgres"
	"github.com/vigil-backup/vigil/resource/sqlite"
)

// TestRun: each kind of problem is found, named after what it is about,
// hard or a warning as it should be; what is fine gives no problem.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file.txt")
	os.WriteFile(file, []byte("not a database"), 0o600)
	good := filepath.Join(dir, "good.db")
	db, err := sql.Open("sqlite", good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	script := filepath.Join(dir, "check.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	notExec := filepath.Join(dir, "not-exec.sh")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String() // nothing listens there once closed
	ln.Close()

	yaml := `
vaults:
  - {name: good, storage: /v1, password_env: P}
  - {name: bad, storage: /v2, password_env: P}
resources:
  - {name: folder, type: directory, path: ` + dir + `}
  - {name: absent, type: directory, path: ` + filepath.Join(dir, "absent") + `}
  - {name: not-a-folder, type: directory, path: ` + file + `}
  - {name: web, type: app, path: ` + dir + `, run: [vigil-no-such-program], validate: [{command: {run: [` + notExec + `]}}]}
  - {name: web-ok, type: app, path: ` + dir + `, run: [sh, -c, "exit 0"], validate: [{command: {run: [` + script + `]}}]}
  - {name: web-own, type: app, path: ` + dir + `, run: ["{{.Dir}}/start.sh"]}
  - {name: lite, type: sqlite, path: ` + good + `}
  - {name: lite-absent, type: sqlite, path: ` + filepath.Join(dir, "absent.db") + `}
  - {name: lite-folder, type: sqlite, path: ` + dir + `}
  - {name: lite-text, type: sqlite, path: ` + file + `}
  - {name: pg, type: postgres, dsn: "postgres://postgres@127.0.0.1:5432/test"}
  - {name: pg-no-db, type: postgres, dsn: "postgres://postgres@127.0.0.1:5432/vigil_startcheck_no_such_db"}
  - {name: my, type: mysql, dsn: "root@tcp(127.0.0.1:3306)/mysql"}
  - {name: my-down, type: mysql, dsn: "root@tcp(` + down + `)/shop"}
notifications:
  - {name: fn, events: ["*"], command: [vigil-no-such-hook]}
`
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("P", "pw")
	if err := cfg.LoadPasswords(); err != nil {
		t.Fatal(err)
	}
	types := resource.NewRegistry(resource.Env{}, directory.Type{}, app.Type{}, postgres.Type, mysql.Type, sqlite.Type)
	got := Run(t.Context(), cfg, Options{Resources: types, Vault: func(_ context.Context, v config.Vault) error {
		if v.Name == "bad" {
			return errors.New("open vault \"bad\": wrong vault password")
		}
		return nil
	}})

	want := []vigil.Problem{
		{Hard: true, Subject: `vault "bad"`, Message: "wrong vault password"},
		{Subject: `resource "absent"`, Message: "does not exist now, so its backups fail until it does"},
		{Hard: true, Subject: `resource "not-a-folder"`, Message: file + " is not a folder"},
		{Hard: true, Subject: `resource "web"`, Message: "run: program vigil-no-such-program is not on PATH"},
		{Hard: true, Subject: `resource "web"`, Message: "validate[0].command.run: program " + notExec + " is not an executable file"},
		{Subject: `resource "lite-absent"`, Message: "database file " + filepath.Join(dir, "absent.db") + " does not exist now"},
		{Hard: true, Subject: `resource "lite-folder"`, Message: dir + " is a folder"},
		{Hard: true, Subject: `resource "lite-text"`, Message: file + " is not an SQLite database"},
		{Subject: `resource "pg-no-db"`, Message: `cannot reach the database postgres://postgres@127.0.0.1:5432/vigil_startcheck_no_such_db now (`},
		{Subject: `resource "my-down"`, Message: "cannot reach the database root@tcp(" + down + ")/shop now ("},
		{Hard: true, Subject: `notification "fn"`, Message: "its command: program vigil-no-such-hook is not on PATH"},
	}
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d:", len(got), len(want))
		for _, p := range got {
			t.Errorf("  %+v", p)
		}
		return
	}
	for i, w := range want {
		g := got[i]
		if g.Hard != w.Hard || g.Subject != w.Subject || !strings.Contains(g.Message, w.Message) {
			t.Errorf("problem %d: got %+v\nwant hard=%v %s, saying %q", i, g, w.Hard, w.Subject, w.Message)
		}
	}
}
