package config

import (
	"strings"
	"testing"
)

// TestParseSuggestsKnownKeys: a mistyped key is named with the key it was
// probably meant to be, and every problem of the file is listed in one
// error, those after a bad value included.
func TestParseSuggestsKnownKeys(t *testing.T) {
	_, err := Parse([]byte(`
vaults:
  - name: v
    storag: /v
    pasword_env: P
resources:
  - {name: docs, type: directory, path: /srv/docs, valdate: []}
  - {name: web, type: app, path: /srv/web, run: [./web], limits: {memory: lots}}
backup_plans:
  - {name: p, schedule: '0 2 * * *', resources: [docs], vault: v, expire_day: 3}
lifecycle: {check_interval: soon}
restore_testing:
  - {name: t, resources: [nope], selection_window_dayz: 3}
colour: blue
`))
	if err == nil {
		t.Fatal("Parse accepted a file with mistyped keys")
	}
	for _, want := range []string{
		`line 4: unknown key "storag" in a vault: did you mean "storage"?`,
		`line 5: unknown key "pasword_env" in a vault: did you mean "password_env"?`,
		`line 7: unknown key "valdate" in a resource: did you mean "validate"?`,
		`line 10: unknown key "expire_day" in a backup plan: did you mean "expire_days"?`,
		`line 13: unknown key "selection_window_dayz" in a restore test plan: did you mean "selection_window_days"?`,
		// nothing near: the known keys instead
		`line 14: unknown key "colour" in the top level (its keys: server, data_dir, catalog, node, lifecycle, console, workers, vaults, resources, backup_plans, restore_testing, notifications, log)`,
		// values of the wrong kind, and what validation finds, in the same error
		`line 8: "lots" is not a size`,
		`line 11: "soon" is not a duration`,
		`restore_testing[0].resources: unknown resource "nope"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q; it is:\n%v", want, err)
		}
	}
}

func TestNearestKey(t *testing.T) {
	known := []string{"name", "storage", "password_env", "password_file"}
	for _, tc := range []struct{ key, want string }{
		{"storage", "storage"},
		{"Storage", "storage"},
		{"stroage", "storage"},
		{"password_fiel", "password_file"},
		{"colour", ""},
		{"x", ""},
	} {
		if got := nearest(tc.key, known); got != tc.want {
			t.Errorf("nearest(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}
