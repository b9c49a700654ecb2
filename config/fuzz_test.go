package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// FuzzParse feeds any YAML to the config loader: it must never panic, and
// a config it accepts holds only numbers in range, so that nothing
// downstream multiplies or compares a value that wraps around.
func FuzzParse(f *testing.F) {
	// The reference config in docs/configuration.md is the seed that
	// reaches every section.
	readme, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		f.Fatal(err)
	}
	_, example, ok := strings.Cut(string(readme), "```yaml\n")
	if !ok {
		f.Fatal("docs/configuration.md has no yaml example")
	}
	example, _, _ = strings.Cut(example, "```")
	if _, err := Parse([]byte(example)); err != nil {
		f.Fatalf("the reference config in docs/configuration.md does not load: %v", err)
	}
	f.Add(example)
	for _, seed := range []string{
		"",
		"server: {listen: '127.0.0.1:8420', read_timeout: 1s, max_unauthenticated: 1}\n",
		"vaults:\n  - {name: v, storage: /v, password_env: P}\nresources:\n  - {name: d, type: directory, path: /d}\nbackup_plans:\n  - {name: p, schedule: '@daily', resources: ['*'], vault: v, expire_days: 36500}\n",
		"vaults:\n  - {name: v, storage: /v, password_env: P}\nresources:\n  - {name: d, type: directory, path: /d}\nbackup_plans:\n  - {name: p, schedule: '0 2 * * *', resources: [d], vault: v, expire_after: 2562047h}\n",
		"resources:\n  - {name: d, type: directory, path: /d, validate: [{checksum: {sample_percent: .nan}}]}\nrestore_testing:\n  - {name: t, resources: [d], selection_window_days: 106752, targets: {rto: 1m}}\n",
		"resources:\n  - {name: a, type: app, path: /a, run: ['{{.Port}}'], limits: {memory: 1e30GiB, pids: -1}, isolation: {allow: ['127.0.0.1:0']}}\n",
		"notifications:\n  - {name: n, events: ['*'], webhook: {url: 'http://127.0.0.1:1/', timeout: -1s}, retry: {attempts: 3, backoff: 2562047h, max_backoff: 2562047h}}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, yaml string) {
		cfg, err := Parse([]byte(yaml))
		if err != nil {
			return
		}
		s := cfg.Server
		for _, d := range []Duration{s.ReadTimeout, s.WriteTimeout, s.IdleTimeout, cfg.Lifecycle.CheckInterval} {
			if d < Duration(time.Second) {
				t.Fatalf("accepted a server timeout or check interval under 1s: %+v, %s", s, time.Duration(cfg.Lifecycle.CheckInterval))
			}
		}
		if s.MaxUnauthenticated < 1 {
			t.Fatalf("accepted max_unauthenticated %d", s.MaxUnauthenticated)
		}
		for _, p := range cfg.BackupPlans {
			if e := p.Expiry(); e < 0 || e > vigil.MaxExpiry {
				t.Fatalf("plan %q: accepted an expiry of %s", p.Name, e)
			}
		}
		for _, p := range cfg.RestoreTesting {
			if p.SelectionWindowDays < 1 || p.SelectionWindowDays > MaxSelectionWindowDays {
				t.Fatalf("plan %q: accepted selection_window_days %d", p.Name, p.SelectionWindowDays)
			}
			for _, d := range []Duration{p.StartWindow, p.ValidationWindow, p.KeepFor, p.Targets.RTO, p.Targets.RPO} {
				if d < 0 {
					t.Fatalf("plan %q: accepted a negative duration: %+v", p.Name, p)
				}
			}
		}
		for _, r := range cfg.Resources {
			for _, v := range r.Validate {
				switch {
				case v.Checksum != nil && !(v.Checksum.SamplePercent > 0 && v.Checksum.SamplePercent <= 100):
					t.Fatalf("resource %q: accepted sample_percent %v", r.Name, v.Checksum.SamplePercent)
				case v.HTTP != nil && v.HTTP.Timeout < 0, v.TCP != nil && v.TCP.Timeout < 0,
					v.Command != nil && v.Command.Timeout < 0, v.SQL != nil && v.SQL.Timeout < 0:
					t.Fatalf("resource %q: accepted a negative validator timeout", r.Name)
				}
			}
		}
		for _, n := range cfg.Notifications {
			if n.Retry.Attempts < 0 || n.Retry.Backoff < 0 || n.Retry.MaxBackoff < 0 ||
				n.Webhook != nil && n.Webhook.Timeout < 0 || n.Email != nil && n.Email.Timeout < 0 {
				t.Fatalf("notification %q: accepted a negative retry or timeout: %+v", n.Name, n)
			}
		}
	})
}
