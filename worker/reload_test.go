package worker

import (
	"slices"
	"testing"

	"github.com/vigil-backup/vigil/config"
)

// TestReloadChanges: what a reload would change is listed by name, and
// what only a restart changes is found in every section it covers.
func TestReloadChanges(t *testing.T) {
	parse := func(y string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := `vaults:
  - {name: v, storage: /srv/v, password_env: P}
resources:
  - {name: a, type: directory, path: /srv/a}
  - {name: b, type: directory, path: /srv/b}
backup_plans:
  - {name: nightly, schedule: "0 2 * * *", resources: [a], vault: v}
`
	cur := parse(base)
	next := parse(`vaults:
  - {name: v, storage: /srv/v, password_env: P}
resources:
  - {name: a, type: directory, path: /srv/a2}
  - {name: c, type: directory, path: /srv/c}
backup_plans:
  - {name: nightly, schedule: "0 3 * * *", resources: [a], vault: v}
notifications:
  - {name: n, events: ["*"], command: [true]}
`)
	got := changes(cur, next)
	want := []string{`resource "a" changed`, `resource "c" added`, `resource "b" removed`, `backup plan "nightly" changed`, `notification "n" added`}
	if !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
	if r := restartOnly(cur, next); len(r) != 0 {
		t.Errorf("restartOnly = %q for a change of resources and plans only", r)
	}
	if c := changes(cur, parse(base)); len(c) != 0 {
		t.Errorf("the same file read twice changes %q", c)
	}

	for _, tc := range []struct{ edit, want string }{
		{"server: {listen: 127.0.0.1:9999}\n", "server changed"},
		{"data_dir: /elsewhere\n", "data_dir changed"},
		{"catalog: postgres://x/y\n", "catalog changed"},
		{"node: other\n", "node changed"},
		{"workers: {backup: 1}\n", "workers changed"},
		{"log: {format: json}\n", "log changed"},
		{"lifecycle: {check_interval: 5m}\n", "lifecycle changed"},
	} {
		if r := restartOnly(cur, parse(tc.edit+base)); !slices.Equal(r, []string{tc.want}) {
			t.Errorf("restartOnly after %q = %q, want %q", tc.edit, r, tc.want)
		}
	}
	moved := parse(`vaults:
  - {name: v, storage: /srv/moved, password_env: P}
  - {name: w, storage: /srv/w, password_env: P}
resources:
  - {name: a, type: directory, path: /srv/a}
  - {name: b, type: directory, path: /srv/b}
backup_plans:
  - {name: nightly, schedule: "0 2 * * *", resources: [a], vault: v}
`)
	if r := restartOnly(cur, moved); !slices.Equal(r, []string{`vault "v" changed`, `vault "w" added`}) {
		t.Errorf("restartOnly of vaults = %q", r)
	}
}
