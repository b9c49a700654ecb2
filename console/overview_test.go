package console

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// TestOverviewSkipsAbortedTests: a resource's row shows its latest restore
// test that reached a verdict, however many ABORTED ones came after it.
func TestOverviewSkipsAbortedTests(t *testing.T) {
	cfg, err := config.Parse([]byte("resources:\n  - {name: docs, type: directory, path: /srv/docs}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	failed := vigil.RestoreJob{ID: "rj-failed", Resource: "docs", RestoreTest: true, Status: vigil.RestoreCompleted,
		ValidationStatus: vigil.ValidationFailed, CreatedAt: start}
	if err := cat.InsertRestoreJob(ctx, &failed); err != nil {
		t.Fatal(err)
	}
	// More aborted tests than a page of them: vigil restarted many times.
	for i := range 25 {
		aborted := vigil.RestoreJob{ID: vigil.NewID(vigil.PrefixRestoreJob), Resource: "docs", RestoreTest: true, Status: vigil.RestoreAborted,
			ValidationStatus: vigil.ValidationAborted, CreatedAt: start.Add(time.Duration(i+1) * time.Minute)}
		if err := cat.InsertRestoreJob(ctx, &aborted); err != nil {
			t.Fatal(err)
		}
	}
	c := New(cfg, cat, nil, "token", make(chan struct{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	rows, err := c.resourceRows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].LastTest == nil || rows[0].LastTest.ID != "rj-failed" {
		t.Fatalf("overview rows %+v: want docs's last test rj-failed", rows)
	}
}
