package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil"
)

// TestCLIPrintsOutsideTextEscaped: an external verdict's message reaches
// the catalog as it was sent, terminal escapes and all, and every text
// output of the CLI that shows it (the job, the job list, the log, the
// events, the error of restore-test start --wait) prints those bytes
// escaped, so that they never reach the terminal. JSON output keeps the
// message exact.
func TestCLIPrintsOutsideTextEscaped(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, `  - name: reported
    type: directory
    path: ./docs
    validate:
      - external: {}
restore_testing:
  - name: quick
    resources: ["*"]
    validation_window: 1m
`)
	e.serve()
	e.backup("reported")
	job := e.waitValidating(e.startTest("reported", "quick").ID)
	const msg = "\x1b[31morders table is empty\x1b[0m\x1b]0;owned\x07\rsecond half\nnext line \u202eexe.pdf \x9b2J"
	if code, body := e.apiPut("/api/v1/restore-jobs/"+job.ID+"/validation", map[string]string{"status": "FAILED", "message": msg}); code != http.StatusOK {
		t.Fatalf("PUT the verdict: %d %s", code, body)
	}
	done := e.waitTest(job.ID)
	if done.ValidationStatus != vigil.ValidationFailed || !strings.Contains(done.ValidationMessage, "\x1b[31morders table is empty") {
		t.Fatalf("the verdict as stored, read as JSON: %s %q", done.ValidationStatus, done.ValidationMessage)
	}

	for _, args := range [][]string{
		{"jobs", "show", job.ID},
		{"jobs", "list", "--type", "restore"},
		{"logs", job.ID},
	} {
		out := e.mustRun(args...)
		if strings.ContainsAny(out, "\x1b\x07\r\u202e\u009b") || strings.Contains(out, "\x9b") {
			t.Errorf("vigil %s printed raw control characters:\n%q", strings.Join(args, " "), out)
		}
		if !strings.Contains(out, `\x1b[31morders table is empty\x1b[0m`) {
			t.Errorf("vigil %s does not show the message, escaped:\n%s", strings.Join(args, " "), out)
		}
	}
	if out := e.mustRun("jobs", "show", job.ID); !strings.Contains(out, "\nnext line") {
		t.Errorf("the message's newline is not kept:\n%s", out)
	}

	// A server's error message is text from outside too: here it echoes
	// an id with an escape in it.
	r := e.run("jobs", "show", "rj-\x1b[2Jx")
	if r.code == 0 || strings.Contains(r.stderr, "\x1b") || !strings.Contains(r.stderr, `rj-\x1b[2Jx`) {
		t.Errorf("an error naming an id with an escape: exit %d, stderr %q", r.code, r.stderr)
	}
	e.stop()
}
