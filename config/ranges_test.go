package config

import (
	"strings"
	"testing"
	"time"
)

// TestParseRefusesOutOfRangeNumbers: numbers that are multiplied into
// durations, or compared as percentages, are range-checked at load. Each
// of these was taken before: expire_days 200000 wraps around to a
// negative expiry, a huge selection window to one in the future, and .nan
// passes every comparison.
func TestParseRefusesOutOfRangeNumbers(t *testing.T) {
	const base = `
vaults:
  - {name: v, storage: /v, password_env: P}
resources:
  - {name: docs, type: directory, path: /srv/docs}
`
	plan := func(extra string) string {
		return base + "backup_plans:\n  - {name: p, schedule: '0 2 * * *', resources: [docs], vault: v, " + extra + "}\n"
	}
	test := func(extra string) string {
		return base + "restore_testing:\n  - {name: t, resources: [docs], " + extra + "}\n"
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"expire_days beyond 100 years", plan("expire_days: 200000"), "backup_plans[0].expire_days: 200000 is more than 36500"},
		{"expire_days that wraps around", plan("expire_days: 9223372036854775807"), "backup_plans[0].expire_days"},
		{"expire_after beyond 100 years", plan("expire_after: 2000000h"), "backup_plans[0].expire_after: 2000000h0m0s is more than 100 years"},
		{"expire_after under a second", plan("expire_after: 500ms"), "backup_plans[0].expire_after: 500ms is shorter than a second"},
		{"selection window beyond 100 years", test("selection_window_days: 9223372036854775807"), "restore_testing[0].selection_window_days: 9223372036854775807 must be between 1 and 36500"},
		{"negative selection window", test("selection_window_days: -1"), "restore_testing[0].selection_window_days"},
		{"sample_percent NaN", `
resources:
  - {name: docs, type: directory, path: /srv/docs, validate: [{checksum: {sample_percent: .nan}}]}
`, "checksum.sample_percent: NaN must be more than 0"},
		{"negative webhook timeout", base + "notifications:\n  - {name: n, events: ['*'], webhook: {url: 'http://127.0.0.1:1/', timeout: -5s}}\n", "notifications[0].webhook.timeout: must not be negative"},
		{"negative email timeout", base + "notifications:\n  - {name: n, events: ['*'], email: {smtp: 'smtp://127.0.0.1:25', from: a@b.c, to: [d@e.f], timeout: -5s}}\n", "notifications[0].email.timeout: must not be negative"},
		{"read timeout under a second", base + "server: {read_timeout: 500ms}\n", "server.read_timeout: 500ms is less than 1s"},
		{"negative write timeout", base + "server: {write_timeout: -1s}\n", "server.write_timeout: -1s is less than 1s"},
		{"no unauthenticated request at all", base + "server: {max_unauthenticated: -1}\n", "server.max_unauthenticated: -1 must be between 1 and 100000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}

	// The largest values in range are taken, and their expiry is exact.
	cfg, err := Parse([]byte(plan("expire_days: 36500")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.BackupPlans[0].Expiry().Hours(), float64(36500*24); got != want {
		t.Errorf("expire_days 36500: expiry %vh, want %vh", got, want)
	}
	if _, err := Parse([]byte(test("selection_window_days: 36500"))); err != nil {
		t.Errorf("selection_window_days 36500: %v", err)
	}
}

func TestServerDefaults(t *testing.T) {
	cfg, err := Parse([]byte("server: {idle_timeout: 5m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server
	if s.ReadTimeout != Duration(DefaultReadTimeout) || s.WriteTimeout != Duration(DefaultWriteTimeout) || s.IdleTimeout != Duration(5*time.Minute) || s.MaxUnauthenticated != DefaultMaxUnauthenticated {
		t.Errorf("server: %+v", s)
	}
}
