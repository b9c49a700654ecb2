package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil"
)

func TestParseRefusesBadChatAndNATS(t *testing.T) {
	hook := func(s string) string {
		return "notifications:\n  - {name: n, events: [\"*\"], webhook: " + s + "}\n"
	}
	nats := func(s string) string {
		return "notifications:\n  - {name: n, events: [\"*\"], nats: " + s + "}\n"
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown format", hook(`{url: "https://h/x", format: teams}`), `notifications[0].webhook.format: unknown format "teams" (known: json, slack, discord, ntfy, gotify)`},
		{"secret with a chat format", hook(`{url: "https://h/x", format: slack, secret_env: S}`), "only vigil's own json format is signed"},
		{"gotify without token", hook(`{url: "https://gotify.lan/message", format: gotify}`), "has no gotify application token"},
		{"nats without url", nats(`{subject: a.b}`), "notifications[0].nats.url: is missing"},
		{"nats bad url", nats(`{url: "http://127.0.0.1:4222"}`), `"http://127.0.0.1:4222" is not nats://host:port`},
		{"nats credentials in url", nats(`{url: "nats://u:p@127.0.0.1:4222"}`), "must not hold credentials"},
		{"nats bad template", nats(`{url: "nats://h:4222", subject: "vigil.{{.Type"}`), "notifications[0].nats.subject: is not a template"},
		{"nats unknown field", nats(`{url: "nats://h:4222", subject: "vigil.{{.Kind}}"}`), "cannot be rendered"},
		{"nats wildcard", nats(`{url: "nats://h:4222", subject: "vigil.>"}`), "has a wildcard"},
		{"nats empty token", nats(`{url: "nats://h:4222", subject: "vigil..{{.Type}}"}`), "has an empty token"},
		{"nats two logins", nats(`{url: "nats://h:4222", creds_file: /c.creds, token_env: T}`), "more than one way to log in"},
		{"nats user without password", nats(`{url: "nats://h:4222", user: u}`), "needs both user and password_env"},
		{"nats negative timeout", nats(`{url: "nats://h:4222", timeout: -1s}`), "notifications[0].nats.timeout: must not be negative"},
		{"nats key typo", nats(`{url: "nats://h:4222", subjet: a}`), `did you mean "subject"?`},
		{"nats and webhook", "notifications:\n  - {name: n, events: [\"*\"], nats: {url: \"nats://h:4222\"}, webhook: {url: \"https://h/\"}}\n", "needs exactly one of webhook, email, command, nats"},
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

func TestChatAndNATSDefaultsAndSecrets(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ops.creds"), []byte("-----BEGIN NATS USER JWT-----\n"), 0o600)
	path := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(path, []byte(`
notifications:
  - {name: chat, events: ["*"], webhook: {url: "https://hooks.slack.com/services/T/B/x", format: slack}}
  - {name: plain, events: ["*"], webhook: {url: "https://h/hook"}}
  - {name: bus, events: ["*"], nats: {url: "nats://127.0.0.1:4222", token_env: TEST_VIGIL_NATS_TOKEN}}
  - {name: bus2, events: ["*"], nats: {url: "nats://a:4222,nats://b:4222", subject: "backups.{{.Resource}}.{{.Type}}", creds_file: ./ops.creds}}
`), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f := cfg.Notifications[1].Webhook.Format; f != FormatJSON {
		t.Errorf("webhook format defaults to %q, want json", f)
	}
	bus, bus2 := cfg.Notifications[2].NATS, cfg.Notifications[3].NATS
	if bus.Subject != DefaultNATSSubject || bus.Timeout != Duration(DefaultNATSTimeout) || cfg.Notifications[2].Kind() != "nats" {
		t.Errorf("nats defaults: %+v", bus)
	}
	if bus2.CredsFile != filepath.Join(dir, "ops.creds") {
		t.Errorf("creds_file not resolved against the config's folder: %s", bus2.CredsFile)
	}
	if got, err := NATSSubject(bus2.Subject, vigil.Event{Type: vigil.EventBackupJobFailed, Resource: "orders-db"}); err != nil || got != "backups.orders-db.BACKUP_JOB_FAILED" {
		t.Errorf("subject = %q, %v", got, err)
	}

	t.Setenv("TEST_VIGIL_NATS_TOKEN", "")
	if err := cfg.LoadPasswords(); err == nil || !strings.Contains(err.Error(), "notifications[2].nats.token_env: environment variable TEST_VIGIL_NATS_TOKEN is empty or unset") {
		t.Fatalf("empty token: err = %v", err)
	}
	t.Setenv("TEST_VIGIL_NATS_TOKEN", "s3cr3t-token")
	if err := cfg.LoadPasswords(); err != nil {
		t.Fatal(err)
	}
	if bus.Token != "s3cr3t-token" {
		t.Errorf("token = %q", bus.Token)
	}
	if env := strings.Join(cfg.SecretEnv(), ","); !strings.Contains(env, "TEST_VIGIL_NATS_TOKEN") {
		t.Errorf("SecretEnv = %s, lacks the NATS token's variable", env)
	}
	os.Remove(bus2.CredsFile)
	if err := cfg.LoadPasswords(); err == nil || !strings.Contains(err.Error(), "notifications[3].nats.creds_file: cannot read the creds") {
		t.Fatalf("missing creds file: err = %v", err)
	}
}

// TestNotificationsPageExamples loads the examples of
// docs/notifications.md, so that the page cannot drift from what the
// configuration takes: the first is a whole notifications list, the
// others one channel each, tried as the channel of a notification.
func TestNotificationsPageExamples(t *testing.T) {
	page, err := os.ReadFile("../docs/notifications.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(page), "```yaml\n")[1:]
	if len(blocks) < 5 {
		t.Fatalf("docs/notifications.md has %d yaml examples, want one per channel and the list", len(blocks))
	}
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		doc := b
		if i > 0 {
			doc = "notifications:\n  - name: n\n    events: [\"*\"]\n" + indent(b, "    ")
		}
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("example %d of docs/notifications.md does not load: %v\n%s", i+1, err, b)
		}
	}
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n") + "\n"
}
