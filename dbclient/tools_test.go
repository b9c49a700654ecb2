package dbclient

import (
	"strings"
	"testing"
)

func TestFindToolsNamesThePackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := FindTools(Postgres, nil)
	if err == nil || !strings.Contains(err.Error(), "postgresql-client") || !strings.Contains(err.Error(), "pg_dump_path") {
		t.Fatalf("missing pg_dump: got %v, want the package and the config key", err)
	}
	_, err = FindTools(MySQL, nil)
	if err == nil || !strings.Contains(err.Error(), "mariadb-client") {
		t.Fatalf("missing mariadb-dump: got %v", err)
	}
	_, err = FindTools(Postgres, map[string]string{"pg_dump_path": "/nonexistent/pg_dump"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/pg_dump") {
		t.Fatalf("a configured pg_dump that is not there: got %v", err)
	}
}
