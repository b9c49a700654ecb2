package console

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/catalog"
)

// TestWorkersPage: the page lists each worker with its state, by its
// heartbeat against the page's clock, and links the jobs it runs.
func TestWorkersPage(t *testing.T) {
	b := setupSessions(t)
	ctx := context.Background()
	cookie := b.signIn()
	if code, _, body := b.do(http.MethodGet, "/workers", cookie, nil, nil); code != http.StatusOK || !strings.Contains(body, "No worker has run yet") {
		t.Fatalf("workers page with none: %d\n%s", code, body)
	}
	now := b.console.now().UTC()
	for _, w := range []catalog.Worker{
		{ID: "w1-aaaa", Node: "w1", Host: "host-one", PID: 11, StartedAt: now.Add(-time.Hour), LastHeartbeatAt: now.Add(-5 * time.Second), Concurrency: map[string]int{"backup": 2}},
		{ID: "w2-bbbb", Node: "w2", Host: "host-two", PID: 22, StartedAt: now.Add(-time.Hour), LastHeartbeatAt: now.Add(-10 * time.Minute), Concurrency: map[string]int{"backup": 2}},
	} {
		if err := b.catalog.RegisterWorker(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.catalog.HeartbeatWorker(ctx, "w1-aaaa", now.Add(-5*time.Second), []string{"bj-running"}); err != nil {
		t.Fatal(err)
	}
	code, _, body := b.do(http.MethodGet, "/workers", cookie, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("workers page: %d\n%s", code, body)
	}
	for _, want := range []string{
		`<tr data-worker="w1-aaaa"><td>w1-aaaa</td><td>host-one</td><td>11</td><td><span class="status ALIVE">ALIVE</span>`,
		`<tr data-worker="w2-bbbb"><td>w2-bbbb</td><td>host-two</td><td>22</td><td><span class="status DEAD">DEAD</span>`,
		`<a href="/jobs/bj-running">bj-running</a>`,
		`backup 2`,
		`href="/workers" class="current"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("workers page lacks %s\n%s", want, body)
		}
	}
}

// TestWorkersPagePendingCleanup: a copy that waits to be deleted is shown,
// linked, on the latest worker of its node, and one of a node no worker
// record names is shown below the table; a test still validating, or
// whose copy is deleted, is not.
func TestWorkersPagePendingCleanup(t *testing.T) {
	b := setupSessions(t)
	ctx := context.Background()
	cookie := b.signIn()
	now := b.console.now().UTC()
	for _, w := range []catalog.Worker{
		{ID: "w1-new", Node: "w1", Host: "host-one", StartedAt: now.Add(-time.Hour), LastHeartbeatAt: now.Add(-10 * time.Minute)},
		{ID: "w1-old", Node: "w1", Host: "host-one", StartedAt: now.Add(-2 * time.Hour), LastHeartbeatAt: now.Add(-time.Hour)},
		{ID: "w2-aaaa", Node: "w2", Host: "host-two", StartedAt: now.Add(-time.Hour), LastHeartbeatAt: now},
	} {
		if err := b.catalog.RegisterWorker(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	insertPendingCleanup(t, b.catalog, now.Add(-5*time.Minute))
	code, _, body := b.do(http.MethodGet, "/workers", cookie, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("workers page: %d\n%s", code, body)
	}
	row := func(id string) string {
		start := strings.Index(body, `<tr data-worker="`+id+`">`)
		if start < 0 {
			t.Fatalf("workers page has no row of %s\n%s", id, body)
		}
		return body[start : start+strings.Index(body[start:], "</tr>")]
	}
	since := (now.Add(-5*time.Minute + 30*time.Second)).Local().Format("2006-01-02 15:04:05")
	if r := row("w1-new"); !strings.Contains(r, `<a href="/jobs/rj-left" class="id">rj-left</a> of <strong>app</strong><br><small>since `+since+` (`) {
		t.Errorf("w1's latest worker does not show rj-left pending since %s:\n%s", since, r)
	}
	for _, id := range []string{"w1-old", "w2-aaaa"} {
		if r := row(id); strings.Contains(r, "rj-") {
			t.Errorf("worker %s shows clean-up pending:\n%s", id, r)
		}
	}
	elsewhere := body[max(strings.Index(body, `id="pending-elsewhere"`), 0):]
	if !strings.Contains(body, `id="pending-elsewhere"`) || !strings.Contains(elsewhere, `<a href="/jobs/rj-retried" class="id">rj-retried</a> of <strong>db</strong>`) ||
		!strings.Contains(elsewhere, "attempt 1 of 10") || !strings.Contains(elsewhere, "on node <strong>gone</strong>") {
		t.Errorf("rj-retried is not shown pending on node gone, with why:\n%s", elsewhere)
	}
	for _, id := range []string{"rj-validating", "rj-done"} {
		if strings.Contains(body, id) {
			t.Errorf("workers page shows %s, which waits for no clean-up", id)
		}
	}
}
