package testsvc

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgresStopStart: the private cluster answers, refuses while
// stopped, answers again on the same URL after Start, and keeps its data
// over a crash (-m immediate); its folder is gone at the end.
func TestPostgresStopStart(t *testing.T) {
	var dir string
	t.Run("cluster", func(t *testing.T) {
		p := StartPostgres(t)
		dir = p.data
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		exec := func(sql string) error {
			conn, err := pgx.Connect(ctx, p.URL)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, sql)
			return err
		}
		if err := exec("CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)"); err != nil {
			t.Fatalf("query the test cluster: %v", err)
		}
		for _, mode := range []string{"fast", "immediate"} {
			p.Stop(mode)
			if err := exec("SELECT 1"); err == nil {
				t.Fatalf("the cluster answers after Stop(%q)", mode)
			}
			p.Start()
			if err := exec("SELECT n FROM kept"); err != nil {
				t.Fatalf("the cluster after Stop(%q) and Start: %v", mode, err)
			}
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the test cluster's folder %s is left after the test (%v)", dir, err)
	}
}
