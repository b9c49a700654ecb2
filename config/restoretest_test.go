package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

func TestParseRestoreTesting(t *testing.T) {
	cfg, err := Parse([]byte(`
resources:
  - name: web-app
    type: app
    path: /srv/webapp
    run: ["python3", "-m", "http.server", "{{.Port}}", "--bind", "{{.Host}}", "--directory", "{{.Dir}}"]
    env: {APP_MODE: restore-test}
    validate:
      - http: {path: /, expect_body: "Welcome"}
      - tcp: {}
      - command: {run: ["./check.sh"]}
      - checksum: {}
      - external: {}
  - {name: plain-app, type: app, path: /srv/p, run: ["./serve"]}
  - {name: docs, type: directory, path: /srv/docs}
restore_testing:
  - name: every-backup
    on_backup_completed: true
    schedule: "0 5 * * *"
    start_window: 1h
    resources: ["*"]
    targets: {rto: 10m, rpo: 24h}
notifications:
  - name: ops-hook
    events: [RESTORE_TEST_STATUS, BACKUP_JOB_FAILED]
    webhook: {url: "http://127.0.0.1:9000/hook", secret_env: HOOK_SECRET}
  - name: ops-mail
    events: ["*"]
    email: {smtp: "smtp://127.0.0.1:1025", from: "vigil@example.com", to: ["ops@example.com"]}
  - name: my-function
    events: [BACKUP_JOB_COMPLETED]
    command: ["./on-event.sh"]
`))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := cfg.Resource("web-app")
	h := web.Validate[0].HTTP
	if h.Method != "GET" || h.ExpectStatus != 200 || time.Duration(h.Timeout) != DefaultHTTPTimeout {
		t.Errorf("http defaults: %+v", h)
	}
	if web.Validate[3].Checksum.SamplePercent != 100 {
		t.Errorf("checksum default: %+v", web.Validate[3].Checksum)
	}
	args, err := web.ExpandRun(RunFields{Dir: "/r/data", Host: "127.0.0.1", Port: 4242})
	if err != nil || strings.Join(args, " ") != "python3 -m http.server 4242 --bind 127.0.0.1 --directory /r/data" {
		t.Errorf("ExpandRun = %q, %v", args, err)
	}
	// Without validators, a restore test still proves something.
	plain, _ := cfg.Resource("plain-app")
	docs, _ := cfg.Resource("docs")
	if plain.Validate[0].Kind() != "tcp" || docs.Validate[0].Kind() != "checksum" {
		t.Errorf("default validators: app %s, directory %s", plain.Validate[0].Kind(), docs.Validate[0].Kind())
	}
	p, ok := cfg.RestoreTestPlan("every-backup")
	if !ok || p.RecoveryPoint != LatestWithinWindow || p.SelectionWindowDays != 7 ||
		time.Duration(p.ValidationWindow) != DefaultValidationWindow || time.Duration(p.KeepFor) != DefaultKeepFor || p.Cron == nil {
		t.Errorf("plan defaults: %+v", p)
	}
	if got := cfg.TestPlanResources(p); !slices.Equal(got, []string{"web-app", "plain-app", "docs"}) {
		t.Errorf("plan resources: %v", got)
	}
	hook, _ := cfg.Notification("ops-hook")
	mail, _ := cfg.Notification("ops-mail")
	if !hook.Wants(vigil.EventRestoreTestStatus) || hook.Wants(vigil.EventBackupJobStarted) || !mail.Wants(vigil.EventBackupJobStarted) {
		t.Error("Wants does not follow events")
	}
	if hook.Kind() != "webhook" || mail.Kind() != "email" || hook.Retry.Attempts != DefaultRetryAttempts {
		t.Errorf("notification defaults: %+v", hook)
	}
}

func TestParseRefusesBadRestoreTesting(t *testing.T) {
	base := `
resources:
  - {name: docs, type: directory, path: /srv/docs}
`
	app := func(validate string) string {
		return "resources:\n  - name: a\n    type: app\n    path: /x\n    run: [\"./a\", \"{{.Port}}\"]\n    validate:\n      - " + validate + "\n"
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"app without run", "resources:\n  - {name: a, type: app, path: /x}\n", "resources[0].run: is missing"},
		{"template typo", "resources:\n  - {name: a, type: app, path: /x, run: [\"./a\", \"{{.Prot}}\"]}\n", "only {{.Dir}}, {{.Host}} and {{.Port}}"},
		{"bad template", "resources:\n  - {name: a, type: app, path: /x, run: [\"{{.Port\"]}\n", "not a valid template"},
		{"run on a directory", "resources:\n  - {name: a, type: directory, path: /x, run: [\"./a\"]}\n", "belong to type app"},
		{"bad http path", app(`http: {path: "health"}`), "validate[0].http.path: \"health\" is not a URL path"},
		{"absolute URL as path", app(`http: {path: "http://evil/"}`), "is not a URL path"},
		{"bad status", app(`http: {expect_status: 42}`), "42 is not an HTTP status"},
		{"unknown validator key", app(`http: {path: /, expect: 200}`), `unknown key "expect" in an HTTP check (its keys: method, path, expect_status, expect_body, headers, timeout)`},
		{"unknown validator kind", app(`ping: {}`), `unknown key "ping" in a validator (its keys: http, tcp, command, checksum, external, sql)`},
		{"two kinds", app(`{tcp: {}, http: {}}`), "needs exactly one of"},
		{"command without run", app(`command: {}`), "command.run: is missing"},
		{"bad sample", app(`checksum: {sample_percent: 150}`), "must be more than 0 and at most 100"},
		{"http on a directory", "resources:\n  - name: d\n    type: directory\n    path: /x\n    validate:\n      - http: {}\n", "need a running app"},
		{"plan unknown resource", base + "restore_testing:\n  - {name: p, on_backup_completed: true, resources: [nope]}\n", `unknown resource "nope" (known: docs)`},
		{"plan bad choice", base + "restore_testing:\n  - {name: p, on_backup_completed: true, resources: [docs], recovery_point: OLDEST}\n", "LATEST_WITHIN_WINDOW"},
		{"plan bad cron", base + "restore_testing:\n  - {name: p, schedule: soon, resources: [docs]}\n", "is not a cron expression"},
		{"plan negative window", base + "restore_testing:\n  - {name: p, on_backup_completed: true, resources: [docs], validation_window: -1s}\n", "validation_window: must not be negative"},
		{"plan bad restore", base + "restore_testing:\n  - {name: p, on_backup_completed: true, resources: [docs], restore: lazy}\n", `restore_testing[0].restore: "lazy": one of full`},
		{"resource bad restore", "resources:\n  - {name: d, type: directory, path: /x, restore: fast}\n", `resources[0].restore: "fast": one of full`},
		{"instant database", "resources:\n  - {name: d, type: sqlite, path: /x.db, restore: instant}\n", "instant restores are for folders (types directory and app)"},
		{"plan named on-demand", base + "restore_testing:\n  - {name: on-demand, resources: [docs]}\n", "pick another name"},
		{"unknown event", "notifications:\n  - {name: n, events: [BACKUP_DONE], command: [./x]}\n", `unknown event "BACKUP_DONE"`},
		{"no channel", "notifications:\n  - {name: n, events: [\"*\"]}\n", "needs exactly one of webhook, email, command"},
		{"bad webhook url", "notifications:\n  - {name: n, events: [\"*\"], webhook: {url: \"ftp://x\"}}\n", "is not an http:// or https:// URL"},
		{"bad smtp url", "notifications:\n  - {name: n, events: [\"*\"], email: {smtp: \"mail.example.com\", from: a@b.c, to: [d@e.f]}}\n", "is not smtp://host:port"},
		{"credentials in smtp url", "notifications:\n  - {name: n, events: [\"*\"], email: {smtp: \"smtp://u:p@h:25\", from: a@b.c, to: [d@e.f]}}\n", "must not hold credentials"},
		{"bad address", "notifications:\n  - {name: n, events: [\"*\"], email: {smtp: \"smtp://h:25\", from: nobody, to: [d@e.f]}}\n", `"nobody" is not an e-mail address`},
		{"password without user", "notifications:\n  - {name: n, events: [\"*\"], email: {smtp: \"smtp://h:25\", from: a@b.c, to: [d@e.f], password_env: P}}\n", "a password needs a username"},
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

func TestNotificationSecrets(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "smtp-pw"), []byte("mail-pass\n"), 0o600)
	path := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(path, []byte(`
vaults:
  - {name: v, storage: ./v, password_env: TEST_VIGIL_VAULT_PW}
resources:
  - {name: a, type: app, path: ./app, run: ["./serve", "{{.Port}}"], validate: [{command: {run: ["./check.sh"]}}]}
notifications:
  - {name: hook, events: ["*"], webhook: {url: "http://127.0.0.1:1/h", secret_env: TEST_VIGIL_HOOK}}
  - {name: mail, events: ["*"], email: {smtp: "smtp://127.0.0.1:25", from: a@b.c, to: [d@e.f], username: u, password_file: ./smtp-pw}}
  - {name: fn, events: ["*"], command: ["./on-event.sh"]}
`), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := cfg.Resource("a")
	fn, _ := cfg.Notification("fn")
	if res.Run[0] != filepath.Join(dir, "serve") || res.Validate[0].Command.Run[0] != filepath.Join(dir, "check.sh") || fn.Command[0] != filepath.Join(dir, "on-event.sh") {
		t.Errorf("programs not resolved against the config's folder: %v %v %v", res.Run, res.Validate[0].Command.Run, fn.Command)
	}

	t.Setenv("TEST_VIGIL_VAULT_PW", "vault-pass")
	t.Setenv("TEST_VIGIL_HOOK", "")
	if err := cfg.LoadPasswords(); err == nil || !strings.Contains(err.Error(), "notifications[0].webhook.secret_env: environment variable TEST_VIGIL_HOOK is empty") {
		t.Fatalf("missing webhook secret: %v", err)
	}
	t.Setenv("TEST_VIGIL_HOOK", "hook-secret")
	if err := cfg.LoadPasswords(); err != nil {
		t.Fatal(err)
	}
	hook, _ := cfg.Notification("hook")
	mail, _ := cfg.Notification("mail")
	if hook.Webhook.Secret != "hook-secret" || mail.Email.Password != "mail-pass" {
		t.Errorf("secrets: %q %q", hook.Webhook.Secret, mail.Email.Password)
	}
	if got := cfg.SecretEnv(); !slices.Equal(got, []string{"TEST_VIGIL_VAULT_PW", "TEST_VIGIL_HOOK"}) {
		t.Errorf("SecretEnv = %v", got)
	}
	cfg.UnsetSecretEnv()
	if os.Getenv("TEST_VIGIL_HOOK") != "" || os.Getenv("TEST_VIGIL_VAULT_PW") != "" {
		t.Error("UnsetSecretEnv left a secret in the environment")
	}
}

// restore: on a plan comes before the resource's; only folders are
// restored instantly.
func TestRestoreMode(t *testing.T) {
	cfg, err := Parse([]byte(`
resources:
  - {name: docs, type: directory, path: /srv/docs, restore: instant}
  - {name: site, type: app, path: /srv/site, run: ["./serve"]}
  - {name: db, type: sqlite, path: /srv/db.sqlite}
restore_testing:
  - {name: fast, resources: ["*"], restore: instant}
  - {name: slow, resources: ["*"], restore: full}
  - {name: plain, resources: ["*"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"fast":  {"docs": RestoreInstant, "site": RestoreInstant, "db": RestoreFull},
		"slow":  {"docs": RestoreFull, "site": RestoreFull, "db": RestoreFull},
		"plain": {"docs": RestoreInstant, "site": RestoreFull, "db": RestoreFull},
	}
	for plan, byResource := range want {
		p, _ := cfg.RestoreTestPlan(plan)
		for name, mode := range byResource {
			r, _ := cfg.Resource(name)
			if got := RestoreMode(p, r); got != mode {
				t.Errorf("plan %s, resource %s: %s, want %s", plan, name, got, mode)
			}
		}
	}
}
