package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
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

// TestOverviewPendingCleanup: the overview names each copy that waits to
// be deleted, with its job, resource, node and since when; with none, it
// has no such section.
func TestOverviewPendingCleanup(t *testing.T) {
	b := setupSessions(t)
	b.withEngine()
	cookie := b.signIn()
	code, _, body := b.do(http.MethodGet, "/", cookie, nil, nil)
	if code != http.StatusOK || strings.Contains(body, "pending-cleanup") || strings.Contains(body, "Clean-up pending") {
		t.Fatalf("overview with no clean-up pending: %d\n%s", code, body)
	}
	at := b.console.now().Add(-time.Hour)
	insertPendingCleanup(t, b.catalog, at)
	code, _, body = b.do(http.MethodGet, "/", cookie, nil, nil)
	start := strings.Index(body, `<section id="pending-cleanup"`)
	if code != http.StatusOK || start < 0 {
		t.Fatalf("overview with clean-up pending: %d, no section\n%s", code, body)
	}
	section := body[start : start+strings.Index(body[start:], "</section>")]
	when := func(d time.Duration) string { return at.Add(d).Local().Format("2006-01-02 15:04:05") }
	for _, want := range []string{
		"Clean-up pending: 2 restored copies wait to be deleted",
		`<li data-job="rj-left"><a href="/jobs/rj-left" class="id">rj-left</a> of <strong>app</strong> on node <strong>w1</strong> <small>since ` + when(30*time.Second) + ` (`,
		`<a href="/jobs/rj-retried" class="id">rj-retried</a> of <strong>db</strong> on node <strong>gone</strong> <small>since ` + when(time.Minute) + ` (`,
		`ago); deleting the new resource failed: busy`,
		`<a href="/workers">Workers</a>`,
	} {
		if !strings.Contains(section, want) {
			t.Errorf("overview's clean-up section lacks %s\n%s", want, section)
		}
	}
	if strings.Contains(section, "rj-validating") || strings.Contains(section, "rj-done") {
		t.Errorf("overview lists a test that waits for no clean-up:\n%s", section)
	}
}
