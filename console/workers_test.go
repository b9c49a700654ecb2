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
