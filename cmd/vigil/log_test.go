package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil"
)

// TestServerLogJobLines: with log: {format: json}, the server's log is one
// JSON object per line, and each job's start and end is a line of its
// own with its id, resource, status and, at the end, its duration; a
// failed backup is a warning with its message.
func TestServerLogJobLines(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "log: {format: json}\n")
	e.serve()
	ok := e.backup("docs")
	var failed vigil.BackupJob
	r := e.run("backup", "start", "--resource", "missing", "--vault", "lab-vault", "--wait", "--json")
	json.Unmarshal([]byte(r.stdout), &failed)
	if failed.Status != vigil.BackupFailed {
		t.Fatalf("backup of a missing folder: %+v", failed)
	}
	e.stop()

	lines := map[string][]map[string]any{} // by job
	for _, l := range strings.Split(strings.TrimSpace(e.serverLog.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("a server log line is not JSON: %q", l)
		}
		if job, _ := rec["job"].(string); job != "" {
			lines[job] = append(lines[job], rec)
		}
	}
	for _, tc := range []struct {
		job    vigil.BackupJob
		status string
		level  string
	}{{ok, "COMPLETED", "INFO"}, {failed, "FAILED", "WARN"}} {
		got := lines[tc.job.ID]
		if len(got) != 2 || got[0]["msg"] != "job started" || got[1]["msg"] != "job ended" {
			t.Errorf("log lines of backup %s: %v; want a start and an end", tc.job.ID, got)
			continue
		}
		end := got[1]
		if end["resource"] != tc.job.Resource || end["status"] != tc.status || end["level"] != tc.level || end["duration"] == nil {
			t.Errorf("end of backup %s logged as %v; want resource %s, status %s, level %s, a duration", tc.job.ID, end, tc.job.Resource, tc.status, tc.level)
		}
		if tc.status == "FAILED" && !strings.Contains(end["message"].(string), "no-such-folder") {
			t.Errorf("the failed backup's log line does not give its message: %v", end)
		}
	}
}
