package config

import (
	"strings"
	"testing"
)

func TestIsolation(t *testing.T) {
	cfg, err := Parse([]byte(`
resources:
  - {name: web, type: app, path: /srv/web, run: ["./web"]}
  - {name: lab, type: app, path: /srv/lab, run: ["./lab"], isolation: {network: host}}
restore_testing:
  - {name: with-db, resources: [web], isolation: {allow: ["127.0.0.1:5432", "[::1]:6379"]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := cfg.Resource("web")
	lab, _ := cfg.Resource("lab")
	plan, _ := cfg.RestoreTestPlan("with-db")
	if !web.Isolation.Isolated() || web.Isolation.Network != NetworkNone || lab.Isolation.Isolated() {
		t.Errorf("isolation: web %+v, lab %+v; want web isolated by default, lab not", web.Isolation, lab.Isolation)
	}
	if plan.Isolation == nil || !plan.Isolation.Isolated() || len(plan.Isolation.Allow) != 2 {
		t.Errorf("plan isolation %+v", plan.Isolation)
	}

	for _, tc := range []struct{ yaml, want string }{
		{`{name: a, type: app, path: /a, run: [x], isolation: {network: bridge}}`, `resources[0].isolation.network: "bridge": none`},
		{`{name: a, type: app, path: /a, run: [x], isolation: {allow: ["10.0.0.5:5432"]}}`, `resources[0].isolation.allow[0]: "10.0.0.5:5432" is not a loopback address`},
		{`{name: a, type: app, path: /a, run: [x], isolation: {allow: ["127.0.0.1"]}}`, `is not a loopback address and port`},
		{`{name: a, type: app, path: /a, run: [x], isolation: {network: host, allow: ["127.0.0.1:1"]}}`, `with network: host the copy reaches everything already`},
		{`{name: a, type: directory, path: /a, isolation: {network: host}}`, `run, env, isolation and limits belong to type app, not directory`},
	} {
		_, err := Parse([]byte("resources:\n  - " + tc.yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", tc.yaml, err, tc.want)
		}
	}
	_, err = Parse([]byte("resources:\n  - {name: a, type: app, path: /a, run: [x]}\nrestore_testing:\n  - {name: p, resources: [a], isolation: {network: open}}\n"))
	if err == nil || !strings.Contains(err.Error(), `restore_testing[0].isolation.network: "open"`) {
		t.Errorf("a plan's bad isolation: %v", err)
	}
}
