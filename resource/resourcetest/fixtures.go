package resourcetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-backup/vigil/config"
)

// Folder returns a new folder that holds files (a slash-separated path
// under the folder → its content), for a resource's data.
func Folder(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// SQLCheck is the validator `- sql: {query: query, expect: want}` as the
// configuration's defaults leave it: a Case's validators must look like
// loaded ones, and the suite does not load a configuration.
func SQLCheck(query, want string) config.Validator {
	return config.Validator{SQL: &config.SQLCheck{Query: query, Expect: &want, Timeout: config.Duration(config.DefaultSQLTimeout)}}
}
