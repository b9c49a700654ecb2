package console

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// TestJobsCopyTab: the jobs page has a tab of copy jobs, newest first,
// each with its status, the recovery point copied, from which vault into
// which, the new recovery point once it is made, and its times; the
// status filter applies, and a copy job's own page opens from its row.
func TestJobsCopyTab(t *testing.T) {
	b := setupSessions(t)
	b.withEngine()
	ctx := context.Background()
	cookie := b.signIn()
	at := b.console.now().Add(-time.Hour)
	started, completed := at.Add(time.Second), at.Add(9*time.Second)
	for _, j := range []vigil.CopyJob{
		{ID: "cj-done", Status: vigil.BackupCompleted, Resource: "docs", ResourceType: "directory", SourceVault: "local", SourceRecoveryPointID: "rp-src1",
			Vault: "offsite", RecoveryPointID: "rp-copy1", Bytes: 2048, CreatedAt: at, StartedAt: &started, CompletedAt: &completed},
		{ID: "cj-failed", Status: vigil.BackupFailed, StatusMessage: "vault offsite: no space left", Resource: "db", SourceVault: "local",
			SourceRecoveryPointID: "rp-src2", Vault: "offsite", RecoveryPointID: "rp-copy2", CreatedAt: at.Add(time.Minute)},
	} {
		if err := b.catalog.InsertCopyJob(ctx, &j); err != nil {
			t.Fatal(err)
		}
	}
	code, _, body := b.do(http.MethodGet, "/jobs?tab=copy", cookie, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("copy jobs tab: %d\n%s", code, body)
	}
	when := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	for _, want := range []string{
		`<a href="/jobs?tab=copy" class="current" id="tab-copy">`,
		`<table id="jobs" data-tab="copy"`,
		`<td class="id"><a href="/jobs/cj-done">cj-done</a></td><td>docs</td>`,
		`<span class="status COMPLETED" data-field="status">COMPLETED</span>`,
		`<td class="id">local → offsite</td><td><a href="/recovery-points/rp-src1" class="id">rp-src1</a></td>`,
		`<td data-field="copy"><a href="/recovery-points/rp-copy1" class="id">rp-copy1</a></td>`,
		`<td data-field="bytes">2.0 KiB</td>`,
		`<td class="when">` + when(at) + `</td>`,
		`<td class="when"><span data-field="completed_at">` + when(completed) + `</span><br><small data-field="took">took 8s</small></td>`,
		`<small data-field="status_message">vault offsite: no space left</small>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("copy jobs tab lacks %s\n%s", want, body)
		}
	}
	// Newest first; a failed copy made no recovery point.
	if strings.Index(body, "cj-failed") > strings.Index(body, "cj-done") || strings.Contains(body, "rp-copy2") {
		t.Errorf("copy jobs tab: want cj-failed first, without its recovery point rp-copy2\n%s", body)
	}

	code, _, body = b.do(http.MethodGet, "/jobs?tab=copy&status=FAILED", cookie, nil, nil)
	if code != http.StatusOK || !strings.Contains(body, "cj-failed") || strings.Contains(body, "cj-done") {
		t.Errorf("copy jobs tab filtered by FAILED: %d\n%s", code, body)
	}
	code, _, body = b.do(http.MethodGet, "/jobs?tab=copy&status=RUNNING", cookie, nil, nil)
	if code != http.StatusOK || !strings.Contains(body, "No copy jobs match the filter") {
		t.Errorf("copy jobs tab with none RUNNING: %d\n%s", code, body)
	}

	code, _, body = b.do(http.MethodGet, "/jobs/cj-done", cookie, nil, nil)
	if code != http.StatusOK || !strings.Contains(body, `recovery point <a href="/recovery-points/rp-src1" class="id">rp-src1</a> in vault local`) ||
		!strings.Contains(body, `recovery point <a href="/recovery-points/rp-copy1" class="id">rp-copy1</a> in vault offsite`) {
		t.Errorf("copy job page: %d\n%s", code, body)
	}
}
