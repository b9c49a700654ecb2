package config

import (
	"strings"
	"testing"
)

const foreignBase = `
vaults:
  - {name: own, storage: /v, password_env: P}
  - {name: restic-prod, kind: restic, repository: /srv/restic, password_env: R}
  - {name: kopia-prod, kind: kopia, storage: /srv/kopia, password_env: K, sync: {schedule: "*/5 * * * *"}}
resources:
  - name: webapp
    type: app
    source: {vault: restic-prod, path: /srv/webapp, host: web1, tags: [daily]}
    run: ["python3", "-m", "http.server", "{{.Port}}"]
  - {name: docs, type: directory, source: {vault: kopia-prod, path: /srv/docs}}
  - {name: mine, type: directory, path: /srv/mine}
`

func TestParseForeignVaults(t *testing.T) {
	cfg, err := Parse([]byte(foreignBase + `
backup_plans:
  - {name: nightly, schedule: "0 2 * * *", resources: ["*"], vault: own}
`))
	if err != nil {
		t.Fatal(err)
	}
	r, k := cfg.Vaults[1], cfg.Vaults[2]
	if !r.Foreign() || !k.Foreign() || cfg.Vaults[0].Foreign() {
		t.Fatalf("foreign: own %v, restic %v, kopia %v; want false, true, true", cfg.Vaults[0].Foreign(), r.Foreign(), k.Foreign())
	}
	if r.Sync == nil || r.Sync.Schedule != DefaultSyncSchedule || r.Sync.Cron == nil {
		t.Errorf("restic vault's sync = %+v, want the default schedule, parsed", r.Sync)
	}
	if k.Sync.Schedule != "*/5 * * * *" || k.Sync.Cron == nil {
		t.Errorf("kopia vault's sync = %+v, want its own schedule, parsed", k.Sync)
	}
	if got := cfg.PlanResources(cfg.BackupPlans[0]); strings.Join(got, ",") != "mine" {
		t.Errorf(`a plan of "*" backs up %v: want only mine, the resource vigil backs up`, got)
	}
	if loc := cfg.Resources[0].Location(); loc != "restic-prod:/srv/webapp" {
		t.Errorf("location = %q, want restic-prod:/srv/webapp", loc)
	}
	src := *cfg.Resources[0].Source
	for _, c := range []struct {
		path, host string
		tags       []string
		want       bool
	}{
		{"/srv/webapp", "web1", []string{"daily", "x"}, true},
		{"/srv/webapp/", "web1", []string{"daily"}, true},
		{"/srv/webapp", "web2", []string{"daily"}, false},
		{"/srv/webapp", "web1", nil, false},
		{"/srv/other", "web1", []string{"daily"}, false},
	} {
		if got := src.Matches(c.path, c.host, c.tags); got != c.want {
			t.Errorf("Matches(%q, %q, %v) = %v, want %v", c.path, c.host, c.tags, got, c.want)
		}
	}
}

func TestParseRefusesForeignMisuse(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"backup into a restic vault", foreignBase + "backup_plans:\n  - {name: p, schedule: '@daily', resources: [mine], vault: restic-prod}\n",
			`backup_plans[0].vault: vault "restic-prod" is a restic repository that another tool writes: vigil only reads it`},
		{"copy into a kopia vault", foreignBase + "backup_plans:\n  - {name: p, schedule: '@daily', resources: [mine], vault: own, copy_to: [{vault: kopia-prod}]}\n",
			`copy_to[0].vault: vault "kopia-prod" is a kopia repository that another tool writes`},
		{"back up a foreign resource", foreignBase + "backup_plans:\n  - {name: p, schedule: '@daily', resources: [docs], vault: own}\n",
			`resource "docs" is backed up by another tool into vault "kopia-prod": vigil only restore-tests it`},
		{"source in own vault", foreignBase + "  - {name: x, type: directory, source: {vault: own, path: /x}}\n", `vault "own" is vigil's own`},
		{"source in unknown vault", foreignBase + "  - {name: x, type: directory, source: {vault: nope, path: /x}}\n", `unknown vault "nope"`},
		{"relative source path", foreignBase + "  - {name: x, type: directory, source: {vault: kopia-prod, path: srv/x}}\n", `source.path: "srv/x" is not an absolute path`},
		{"source and path", foreignBase + "  - {name: x, type: directory, path: /x, source: {vault: kopia-prod, path: /x}}\n", "remove path"},
		{"source of a database", foreignBase + "  - {name: x, type: sqlite, path: /x.db, source: {vault: kopia-prod, path: /x}}\n", "source: is for folders"},
		{"excludes on a foreign resource", foreignBase + "  - {name: x, type: directory, exclude: ['*.tmp'], source: {vault: kopia-prod, path: /x}}\n", "are for backups vigil takes"},
		{"restic without repository", "vaults:\n  - {name: r, kind: restic, password_env: R}\n", "vaults[0].repository: is missing"},
		{"restic repository like an option", "vaults:\n  - {name: r, kind: restic, repository: '--password-command=sh', password_env: R}\n", "which restic would read as an option"},
		{"restic with storage", "vaults:\n  - {name: r, kind: restic, repository: /r, storage: /s, password_env: R}\n", "given by repository, not storage"},
		{"restic with verify", "vaults:\n  - {name: r, kind: restic, repository: /r, password_env: R, verify: {read_back_within: 30d, max_bytes_per_day: 1GiB, schedule: '@daily'}}\n", "read-data-percent"},
		{"foreign with expiry", "vaults:\n  - {name: k, kind: kopia, storage: /k, password_env: K, expire_days: 3}\n", "remove expire_days and expire_after"},
		{"foreign repair", "vaults:\n  - {name: k, kind: kopia, storage: /k, password_env: K, repair_on_damage: true}\n", "vigil never repairs a kopia vault"},
		{"unknown kind", "vaults:\n  - {name: k, kind: borg, storage: /k, password_env: K}\n", `"borg" is not a vault kind`},
		{"sync on own vault", "vaults:\n  - {name: k, storage: /k, password_env: K, sync: {schedule: '@daily'}}\n", "sync: is for foreign vaults"},
		{"bad sync schedule", "vaults:\n  - {name: k, kind: kopia, storage: /k, password_env: K, sync: {schedule: 'often'}}\n", `sync.schedule: "often" is not a cron expression`},
		{"repository on a kopia vault", "vaults:\n  - {name: k, kind: kopia, storage: /k, repository: /r, password_env: K}\n", "are for vaults of kind: restic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}
