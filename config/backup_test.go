package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseExcludesAndHooks(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse([]byte(`
data_dir: ` + dir + `
resources:
  - name: site
    type: app
    path: /srv/site
    run: ["./serve", "{{.Port}}"]
    exclude: ["*.tmp", "node_modules/", "cache/**"]
    exclude_if_present: .nobackup
    one_file_system: true
    exclude_larger_than: 1GiB
    before_backup: {run: ["./flush.sh", "--now"], timeout: 30s}
    after_backup: {run: [logger, done], env: {TAG: x}}
  - name: shop
    type: postgres
    dsn: postgres://vigil@db/shop
    before_backup: {run: [psql, -c, CHECKPOINT]}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Resources[0]
	if !reflect.DeepEqual(r.Exclude, []string{"*.tmp", "node_modules/", "cache/**"}) || r.ExcludeIfPresent != ".nobackup" || !r.OneFileSystem || r.ExcludeLargerThan != 1<<30 {
		t.Errorf("excludes = %q %q %v %d", r.Exclude, r.ExcludeIfPresent, r.OneFileSystem, r.ExcludeLargerThan)
	}
	if h := r.BeforeBackup; h == nil || h.Timeout != Duration(30*time.Second) || h.Run[1] != "--now" {
		t.Errorf("before_backup = %+v", h)
	}
	if h := r.AfterBackup; h == nil || h.Timeout != Duration(DefaultHookTimeout) || h.Env["TAG"] != "x" || h.Run[0] != "logger" {
		t.Errorf("after_backup = %+v, want the default timeout and the program looked up on PATH", h)
	}
	if h := cfg.Resources[1].BeforeBackup; h == nil || h.Timeout != Duration(DefaultHookTimeout) {
		t.Errorf("a database's before_backup = %+v", h)
	}
}

// A hook's program named with a slash is found from the config's folder,
// as validators' are.
func TestHookProgramFromConfigFolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte("resources:\n  - {name: d, type: directory, path: ./docs, before_backup: {run: [./flush.sh]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Resources[0].BeforeBackup.Run[0]; got != filepath.Join(dir, "flush.sh") {
		t.Errorf("hook program = %s, want it in the config's folder", got)
	}
}

func TestParseRefusesBadExcludesAndHooks(t *testing.T) {
	dirRes := func(extra string) string {
		return "resources:\n  - {name: d, type: directory, path: /x, " + extra + "}\n"
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"excludes on a database", "resources:\n  - {name: s, type: sqlite, path: /x/a.db, exclude: [\"*.tmp\"]}\n", "belong to types directory and app, not sqlite"},
		{"empty pattern", dirRes(`exclude: [""]`), `resources[0].exclude[0]: "" is no pattern`},
		{"marker with a slash", dirRes(`exclude_if_present: a/.nobackup`), `exclude_if_present: "a/.nobackup" is not a file name`},
		{"size without unit", dirRes(`exclude_larger_than: 100`), "write it with its unit"},
		{"hook without run", dirRes(`before_backup: {timeout: 5s}`), "resources[0].before_backup.run: is missing"},
		{"negative hook timeout", dirRes(`after_backup: {run: [x], timeout: -1s}`), "after_backup.timeout: must not be negative"},
		{"hook key typo", dirRes(`before_backup: {run: [x], timout: 5s}`), `unknown key "timout" in a hook: did you mean "timeout"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
