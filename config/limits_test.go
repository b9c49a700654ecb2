package config

import (
	"strings"
	"testing"
)

func TestLimits(t *testing.T) {
	cfg, err := Parse([]byte(`
resources:
  - {name: web, type: app, path: /srv/web, run: ["./web"], limits: {memory: 2GiB, pids: 512}}
  - {name: lab, type: app, path: /srv/lab, run: ["./lab"]}
restore_testing:
  - {name: small, resources: [web, lab], limits: {memory: 512 MiB}}
`))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := cfg.Resource("web")
	lab, _ := cfg.Resource("lab")
	plan, _ := cfg.RestoreTestPlan("small")
	if web.Limits != (Limits{Memory: 2 << 30, PIDs: 512}) || lab.Limits.Set() {
		t.Errorf("limits: web %+v, lab %+v", web.Limits, lab.Limits)
	}
	// Each limit the plan sets replaces the resource's; the others stay.
	if got := web.Limits.Over(plan.Limits); got != (Limits{Memory: 512 << 20, PIDs: 512}) {
		t.Errorf("web under plan small: %+v", got)
	}
	if got := lab.Limits.Over(plan.Limits); got != (Limits{Memory: 512 << 20}) {
		t.Errorf("lab under plan small: %+v", got)
	}
	if got := web.Limits.Over(nil); got != web.Limits {
		t.Errorf("web under no plan limits: %+v", got)
	}

	for _, tc := range []struct{ limits, want string }{
		{`{memory: 2048}`, `"2048" is not a size: write it with its unit`},
		{`{memory: 2Gb}`, `"2Gb" is not a size: write a number and one of the units B, KiB`},
		{`{memory: -1GiB}`, `"-1GiB" is not a size`},
		{`{memory: 99999999999TiB}`, `is too large a size`},
		{`{memory: 1MiB}`, `resources[0].limits.memory: 1048576 bytes is less than 4MiB`},
		{`{pids: -3}`, `resources[0].limits.pids: -3 must be between 1 and`},
		{`{pids: 99999999}`, `must be between 1 and 4194304`},
		{`{cpu: 2}`, `unknown key "cpu" in the limits (its keys: memory, pids)`},
	} {
		_, err := Parse([]byte("resources:\n  - {name: a, type: app, path: /a, run: [x], limits: " + tc.limits + "}\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("limits %s: error %v, want it to say %q", tc.limits, err, tc.want)
		}
	}
	_, err = Parse([]byte("resources:\n  - {name: a, type: directory, path: /a, limits: {pids: 10}}\n"))
	if err == nil || !strings.Contains(err.Error(), "run, env, isolation and limits belong to type app, not directory") {
		t.Errorf("limits on a directory: %v", err)
	}
	_, err = Parse([]byte("resources:\n  - {name: a, type: app, path: /a, run: [x]}\nrestore_testing:\n  - {name: p, resources: [a], limits: {pids: -1}}\n"))
	if err == nil || !strings.Contains(err.Error(), "restore_testing[0].limits.pids: -1") {
		t.Errorf("a plan's bad limits: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]Bytes{"512MiB": 512 << 20, "2 GiB": 2 << 30, "1.5GB": 1_500_000_000, "100B": 100, "1TiB": 1 << 40, " 3KB ": 3000} {
		if got, err := ParseBytes(s); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GiB", "1..5GiB", "1 gib", "NaNGiB", "1e9B", "1GiB2"} {
		if got, err := ParseBytes(s); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", s, got)
		}
	}
}
