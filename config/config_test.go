package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
vaults:
  - name: lab-vault
    storage: ./vaults/lab-vault
    password_env: VIGIL_VAULT_PASSWORD
resources:
  - name: docs
    type: directory
    path: /srv/docs
backup_plans:
  - name: nightly
    schedule: "0 2 * * *"
    timezone: UTC
    resources: ["*"]
    vault: lab-vault
    expire_days: 35
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != DefaultListen || cfg.DataDir != DefaultDataDir || cfg.Catalog != "" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if time.Duration(cfg.Lifecycle.CheckInterval) != time.Minute {
		t.Errorf("check interval = %v, want 1m", cfg.Lifecycle.CheckInterval)
	}
	if cfg.Console.SessionIdle != Duration(12*time.Hour) || cfg.Console.SessionMax != Duration(7*24*time.Hour) {
		t.Errorf("console sessions = %+v, want 12h idle and 7 days at most", cfg.Console)
	}
	p := cfg.BackupPlans[0]
	if got := cfg.PlanResources(p); len(got) != 1 || got[0] != "docs" {
		t.Errorf("plan resources = %v", got)
	}
	if p.Expiry() != 35*24*time.Hour {
		t.Errorf("expiry = %v", p.Expiry())
	}
	next := p.Cron.Next(time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 1, 2, 2, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("next run = %v, want %v", next, want)
	}
}

// TestParseVaultVerify reads a vault's rolling verification, with its
// window in days and its schedule parsed.
func TestParseVaultVerify(t *testing.T) {
	cfg, err := Parse([]byte("vaults:\n  - {name: v, storage: /v, password_env: P, verify: {read_back_within: 30d, max_bytes_per_day: 20GiB, schedule: '0 3 * * *', timezone: UTC}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.Vaults[0].Verify
	if v == nil || v.ReadBackWithin != Duration(30*24*time.Hour) || v.MaxBytesPerDay != 20<<30 || v.Cron == nil {
		t.Fatalf("verify = %+v, want 30 days, 20 GiB and a parsed schedule", v)
	}
	if next := v.Cron.Next(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)); !next.Equal(time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("next night after noon: %v, want 03:00 the next day", next)
	}
}

func TestParseWorkers(t *testing.T) {
	cfg, err := Parse([]byte("workers: {backup: 2, restore: 0, heartbeat_timeout: 30s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Workers
	if w.Backup == nil || *w.Backup != 2 || w.Restore == nil || *w.Restore != 0 || w.RestoreTest != nil {
		t.Fatalf("workers = %+v, want backup 2, restore 0, restore_test unset", w)
	}
	if w.HeartbeatTimeout != Duration(30*time.Second) {
		t.Fatalf("heartbeat_timeout = %s, want 30s", time.Duration(w.HeartbeatTimeout))
	}
	cfg, err = Parse([]byte("node: n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workers.JobTimeout != Duration(DefaultJobTimeout) {
		t.Fatalf("default job_timeout = %s, want %s", time.Duration(cfg.Workers.JobTimeout), DefaultJobTimeout)
	}
	if cfg.Workers.HeartbeatTimeout != Duration(DefaultHeartbeatTimeout) {
		t.Fatalf("default heartbeat_timeout = %s, want %s", time.Duration(cfg.Workers.HeartbeatTimeout), DefaultHeartbeatTimeout)
	}
}

func TestParseRefusesBadInput(t *testing.T) {
	base := `
vaults:
  - {name: v, storage: /v, password_env: P}
resources:
  - {name: docs, type: directory, path: /srv/docs}
`
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", base + "colour: blue\n", `line 6: unknown key "colour" in the top level (its keys: server, data_dir,`},
		{"unknown type", `
resources:
  - {name: a, type: floppy, path: /x}`, `resources[0].type: unknown type "floppy"`},
		{"duplicate resource", base + "  - {name: docs, type: directory, path: /y}\n", `duplicate resource name "docs"`},
		{"missing path", "resources:\n  - {name: a, type: directory}\n", "resources[0].path: is missing"},
		{"missing type", "resources:\n  - {name: a, path: /x}\n", "resources[0].type: is missing"},
		{"duplicate vault", `
vaults:
  - {name: v, storage: /v, password_env: P}
  - {name: v, storage: /w, password_env: P}`, `duplicate vault name "v"`},
		{"no password source", "vaults:\n  - {name: v, storage: /v}\n", "needs password_env or password_file"},
		{"two password sources", "vaults:\n  - {name: v, storage: /v, password_env: P, password_file: /f}\n", "keep one"},
		{"other scheme", "vaults:\n  - {name: v, storage: gcs://b/p, password_env: P}\n", "give a local folder or s3://bucket/prefix"},
		{"s3 without a bucket", "vaults:\n  - {name: v, storage: 's3:///p', password_env: P}\n", "names no bucket"},
		{"s3 endpoint with a scheme", "vaults:\n  - {name: v, storage: s3://b/p, endpoint: 'http://h:9000', password_env: P}\n", "vaults[0].endpoint"},
		{"s3 one key", "vaults:\n  - {name: v, storage: s3://b/p, access_key_env: K, password_env: P}\n", "only one of its S3 access key and secret key"},
		{"s3 two key sources", "vaults:\n  - {name: v, storage: s3://b/p, access_key_env: K, access_key_file: /k, secret_key_env: S, password_env: P}\n", "both access_key_env and access_key_file"},
		{"s3 insecure with a CA", "vaults:\n  - {name: v, storage: s3://b/p, insecure: true, ca_file: /ca.pem, password_env: P}\n", "vaults[0].ca_file"},
		{"s3 path style on AWS", "vaults:\n  - {name: v, storage: s3://b/p, path_style: true, password_env: P}\n", "by host name"},
		{"s3 virtual host elsewhere", "vaults:\n  - {name: v, storage: s3://b/p, endpoint: 'minio.lan:9000', path_style: false, password_env: P}\n", "by path"},
		{"s3 key on a folder vault", "vaults:\n  - {name: v, storage: /v, access_key_env: K, password_env: P}\n", "vaults[0].access_key_env: is for S3 vaults only"},
		{"s3 retry too short", "vaults:\n  - {name: v, storage: s3://b/p, retry_for: 500ms, password_env: P}\n", "vaults[0].retry_for: 500ms is less than 1s"},
		{"s3 retry negative", "vaults:\n  - {name: v, storage: s3://b/p, retry_for: -1m, password_env: P}\n", "vaults[0].retry_for: -1m0s is less than 1s"},
		{"s3 retry not a duration", "vaults:\n  - {name: v, storage: s3://b/p, retry_for: long, password_env: P}\n", `"long" is not a duration`},
		{"s3 retry typo", "vaults:\n  - {name: v, storage: s3://b/p, retry_fro: 2m, password_env: P}\n", `did you mean "retry_for"?`},
		{"s3 retry on a folder vault", "vaults:\n  - {name: v, storage: /v, retry_for: 2m, password_env: P}\n", "vaults[0].retry_for: is for S3 vaults only"},
		{"vault both expiries", "vaults:\n  - {name: v, storage: /v, password_env: P, expire_days: 7, expire_after: 1h}\n", "vaults[0]: has both expire_days and expire_after"},
		{"vault expiry too long", "vaults:\n  - {name: v, storage: /v, password_env: P, expire_days: 99999}\n", "vaults[0].expire_days: 99999 is more than"},
		{"verify without budget", "vaults:\n  - {name: v, storage: /v, password_env: P, verify: {read_back_within: 30d, schedule: '0 3 * * *'}}\n", "vaults[0].verify.max_bytes_per_day: is missing"},
		{"verify window too short", "vaults:\n  - {name: v, storage: /v, password_env: P, verify: {read_back_within: 2h, max_bytes_per_day: 20GiB, schedule: '0 3 * * *'}}\n", "vaults[0].verify.read_back_within: is missing or less than a day"},
		{"verify bad schedule", "vaults:\n  - {name: v, storage: /v, password_env: P, verify: {read_back_within: 30d, max_bytes_per_day: 20GiB, schedule: nightly}}\n", "vaults[0].verify.schedule: \"nightly\" is not a cron expression"},
		{"verify key typo", "vaults:\n  - {name: v, storage: /v, password_env: P, verify: {read_back_in: 30d}}\n", `did you mean "read_back_within"?`},
		{"bad days", "lifecycle: {check_interval: 1.5d}\n", `"1.5d" is not a duration: write it like 90s, 15m, 36h or 30d`},
		{"bad listen", "server: {listen: nowhere}\n", "server.listen"},
		{"bad catalog", "catalog: mysql://x\n", "catalog: must be empty"},
		{"bad cron", base + "backup_plans:\n  - {name: p, schedule: 'every day', resources: [docs], vault: v}\n", "is not a cron expression"},
		{"bad zone", base + "backup_plans:\n  - {name: p, schedule: '0 2 * * *', timezone: Mars/Base, resources: [docs], vault: v}\n", "unknown time zone"},
		{"plan unknown resource", base + "backup_plans:\n  - {name: p, schedule: '0 2 * * *', resources: [nope], vault: v}\n", `unknown resource "nope" (known: docs)`},
		{"plan unknown vault", base + "backup_plans:\n  - {name: p, schedule: '0 2 * * *', resources: [docs], vault: w}\n", `unknown vault "w" (known: v)`},
		{"copy to unknown vault", base + "backup_plans:\n  - {name: p, schedule: '0 2 * * *', resources: [docs], vault: v, copy_to: [{vault: w}]}\n", `backup_plans[0].copy_to[0].vault: unknown vault "w" (known: v)`},
		{"copy to own vault", base + "backup_plans:\n  - {name: p, schedule: '0 2 * * *', resources: [docs], vault: v, copy_to: [{vault: v}]}\n", `copy_to[0].vault: "v" is the vault the plan backs up into`},
		{"copy both expiries", base + "  - {name: w, storage: /w, password_env: P}\nbackup_plans:\n  - {name: p, schedule: '0 2 * * *', resources: [docs], vault: v, copy_to: [{vault: w, expire_days: 9, expire_after: 1h}]}\n", "copy_to[0]: has both expire_days and expire_after"},
		{"copy expiry too long", base + "  - {name: w, storage: /w, password_env: P}\nbackup_plans:\n  - {name: p, schedule: '0 2 * * *', resources: [docs], vault: v, copy_to: [{vault: w, expire_days: 99999}]}\n", "copy_to[0].expire_days: 99999 is more than"},
		{"copy key typo", base + "  - {name: w, storage: /w, password_env: P}\nbackup_plans:\n  - {name: p, schedule: '0 2 * * *', resources: [docs], vault: v, copy_to: [{vault: w, expire_day: 9}]}\n", `did you mean "expire_days"?`},
		{"test plan unknown vault", base + "restore_testing:\n  - {name: t, resources: [docs], vaults: [offsite]}\n", `restore_testing[0].vaults: unknown vault "offsite" (known: v)`},
		{"bad duration", "lifecycle: {check_interval: soon}\n", "is not a duration"},
		{"session idle too short", "console: {session_idle: 30s}\n", "console.session_idle: must be at least 2m"},
		{"session idle negative", "console: {session_idle: -1h}\n", "console.session_idle: must be at least 2m"},
		{"negative workers", "workers: {backup: -1}\n", "workers.backup: -1 must be between 0"},
		{"too many workers", "workers: {restore_test: 5000}\n", "workers.restore_test: 5000 must be between 0"},
		{"job timeout too short", "workers: {job_timeout: 30s}\n", "workers.job_timeout: 30s is less than 1m"},
		{"heartbeat too short", "workers: {heartbeat_timeout: 1s}\n", "workers.heartbeat_timeout: 1s is less than 3s"},
		{"session max below idle", "console: {session_idle: 2h, session_max: 1h}\n", "console.session_max: must be at least console.session_idle (2h0m0s)"},
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

func TestLoadResolvesPathsAndPasswords(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600)
	path := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(path, []byte(`
data_dir: ./data
vaults:
  - {name: a, storage: ./vaults/a, password_file: ./pw}
  - {name: b, storage: /abs/b, password_env: TEST_VIGIL_PW}
resources:
  - {name: docs, type: directory, path: ./docs}
`), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != filepath.Join(dir, "data") || cfg.Vaults[0].Storage != filepath.Join(dir, "vaults/a") ||
		cfg.Vaults[1].Storage != "/abs/b" || cfg.Resources[0].Path != filepath.Join(dir, "docs") {
		t.Errorf("paths not resolved against the config's folder: %+v", cfg)
	}
	if cfg.Vaults[0].Password != "" {
		t.Error("Load read a password; only LoadPasswords may")
	}

	t.Setenv("TEST_VIGIL_PW", "")
	err = cfg.LoadPasswords()
	if err == nil || !strings.Contains(err.Error(), "TEST_VIGIL_PW is empty or unset") {
		t.Fatalf("empty env password: err = %v", err)
	}
	t.Setenv("TEST_VIGIL_PW", "hunter2")
	if err := cfg.LoadPasswords(); err != nil {
		t.Fatal(err)
	}
	if cfg.Vaults[0].Password != "s3cret" || cfg.Vaults[1].Password != "hunter2" {
		t.Errorf("passwords = %q, %q", cfg.Vaults[0].Password, cfg.Vaults[1].Password)
	}

	os.Remove(filepath.Join(dir, "pw"))
	if err := cfg.LoadPasswords(); err == nil || !strings.Contains(err.Error(), `vault "a": vaults[0].password_file: cannot read the password`) {
		t.Fatalf("unreadable password file: err = %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "pass --config FILE or set VIGIL_CONFIG") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadS3VaultKeysAndPaths(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret-key"), []byte("the-secret\n"), 0o600)
	path := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(path, []byte(`
vaults:
  - name: offsite
    storage: s3://backups/vigil
    endpoint: minio.lan:9000
    path_style: true
    ca_file: ./ca.pem
    access_key_env: TEST_VIGIL_S3_ACCESS
    secret_key_file: ./secret-key
    password_env: TEST_VIGIL_PW
  - name: throttled
    storage: s3://backups/throttled
    endpoint: minio.lan:9000
    retry_for: 10m
    password_env: TEST_VIGIL_PW
`), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Vaults[0].RetryFor; got != Duration(DefaultS3RetryFor) {
		t.Errorf("retry_for of an S3 vault without one = %s, want the default %s", time.Duration(got), DefaultS3RetryFor)
	}
	if got := cfg.Vaults[1].RetryFor; got != Duration(10*time.Minute) {
		t.Errorf("retry_for: 10m = %s", time.Duration(got))
	}
	v := cfg.Vaults[0]
	if v.Storage != "s3://backups/vigil" || !v.IsS3() || v.CAFile != filepath.Join(dir, "ca.pem") || v.SecretKeyFile != filepath.Join(dir, "secret-key") {
		t.Errorf("S3 vault after Load: storage %q, ca_file %q, secret_key_file %q; want the URL kept and the files resolved", v.Storage, v.CAFile, v.SecretKeyFile)
	}
	if !slices.Contains(cfg.SecretEnv(), "TEST_VIGIL_S3_ACCESS") {
		t.Errorf("SecretEnv %v does not list the access key's variable", cfg.SecretEnv())
	}

	t.Setenv("TEST_VIGIL_PW", "pw")
	t.Setenv("TEST_VIGIL_S3_ACCESS", "")
	if err := cfg.LoadPasswords(); err == nil || !strings.Contains(err.Error(), "access_key_env: environment variable TEST_VIGIL_S3_ACCESS is empty") {
		t.Fatalf("unset access key variable: err = %v", err)
	}
	t.Setenv("TEST_VIGIL_S3_ACCESS", "the-access")
	if err := cfg.LoadPasswords(); err != nil {
		t.Fatal(err)
	}
	if v := cfg.Vaults[0]; v.AccessKey != "the-access" || v.SecretKey != "the-secret" {
		t.Errorf("S3 keys = %q, %q; want the-access, the-secret", v.AccessKey, v.SecretKey)
	}
}
