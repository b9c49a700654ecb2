package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// exampleEnv is the environment the files in examples/ read their secrets
// from, with values of the right shape: a DSN must parse.
var exampleEnv = map[string]string{
	"VIGIL_VAULT_PASSWORD": "correct horse battery staple",
	"VIGIL_S3_ACCESS_KEY":  "AKIAEXAMPLE",
	"VIGIL_S3_SECRET_KEY":  "example-secret-key",
	"ORDERS_DSN":           "postgres://app:secret@127.0.0.1:5432/orders",
	"SHOP_DSN":             "shop:secret@tcp(127.0.0.1:3306)/shop",
}

// TestExamplesLoad: every config in examples/ loads with the real loader,
// its passwords and keys read from the environment it names, so that an
// example copied from there works as it is. A file there that is not a
// vigil config is named here to be left out.
func TestExamplesLoad(t *testing.T) {
	notConfigs := map[string]bool{"prometheus-alerts.yml": true}
	var files []string
	for _, glob := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join("..", "examples", glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	loaded := map[string]bool{}
	for _, path := range files {
		name := filepath.Base(path)
		if notConfigs[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(path)
			if err != nil {
				t.Fatalf("examples/%s does not load:\n%v", name, err)
			}
			for _, env := range cfg.SecretEnv() {
				if env == "" {
					continue
				}
				v, ok := exampleEnv[env]
				if !ok {
					t.Fatalf("examples/%s reads $%s: add a value for it to exampleEnv", name, env)
				}
				t.Setenv(env, v)
			}
			if err := cfg.LoadPasswords(); err != nil {
				t.Fatalf("examples/%s: %v", name, err)
			}
			if len(cfg.Vaults) == 0 || len(cfg.Resources) == 0 || len(cfg.BackupPlans) == 0 || len(cfg.RestoreTesting) == 0 {
				t.Errorf("examples/%s is not complete: it needs a vault, a resource, a backup plan and a restore testing plan", name)
			}
		})
		loaded[strings.TrimSuffix(name, filepath.Ext(name))] = true
	}
	for _, want := range []string{"folder", "webapp", "postgres", "mariadb", "sqlite", "s3"} {
		if !loaded[want] {
			t.Errorf("examples/%s.yaml is missing", want)
		}
	}
}
