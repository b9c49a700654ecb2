package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionFromConfig: resource, vault and plan names complete from
// the config file with no server running, filtered by what is typed; a
// job id, which only a server knows, completes to nothing when there is
// none, without an error in the shell.
func TestCompletionFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(filepath.Join(dir, "api-token"), []byte("t\n"), 0o600)
	err := os.WriteFile(cfg, []byte(`server: {listen: "127.0.0.1:1"}
data_dir: .
vaults:
  - {name: local, storage: ./v, password_env: P}
  - {name: offsite, storage: ./w, password_env: P}
resources:
  - {name: docs, type: directory, path: ./docs}
  - {name: photos, type: directory, path: ./photos}
backup_plans:
  - {name: nightly, schedule: '0 2 * * *', resources: [docs], vault: local}
restore_testing:
  - {name: every-backup, on_backup_completed: true, resources: [docs]}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args string
		want []string
	}{
		{"backup start --resource ''", []string{"docs", "photos"}},
		{"backup start --resource p", []string{"photos"}},
		{"backup start --vault ''", []string{"local", "offsite"}},
		{"recovery-points copy rp-1 --to o", []string{"offsite"}},
		{"vault verify ''", []string{"local", "offsite"}},
		{"vault verify local ''", nil},
		{"plans pause ''", []string{"nightly", "every-backup"}},
		{"restore-test start --plan e", []string{"every-backup"}},
		{"retention preview --plan ''", []string{"nightly"}},
		{"restore-test start --plan ''", []string{"every-backup"}},
		{"jobs show ''", nil},
	} {
		args := []string{"__complete", "--config", cfg}
		for _, a := range strings.Fields(tt.args) {
			args = append(args, strings.Trim(a, "'"))
		}
		var out, errb bytes.Buffer
		if code := Main(context.Background(), args, &out, &errb); code != 0 {
			t.Fatalf("vigil %s: exit %d, %s", tt.args, code, errb.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		got, directive := lines[:len(lines)-1], lines[len(lines)-1]
		if strings.Join(got, ",") != strings.Join(tt.want, ",") || directive != ":4" {
			t.Errorf("vigil __complete %s = %q, directive %s; want %q and :4 (no file names)", tt.args, got, directive, tt.want)
		}
	}
}
