package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// backupSequence is what --wait sees of a backup that reads 1 GiB at
// 100 MiB/s, polled every second for 12 s.
func backupSequence(start time.Time) (jobs []vigil.BackupJob, at []time.Time) {
	jobs = append(jobs, vigil.BackupJob{ID: "bj-1", Status: vigil.BackupPending})
	at = append(at, start)
	for s := 1; s <= 11; s++ {
		jobs = append(jobs, vigil.BackupJob{ID: "bj-1", Status: vigil.BackupRunning, StartedAt: &start,
			Bytes: int64(s-1) * 100 << 20, PercentDone: float64(s-1) * 100 / 10.24})
		at = append(at, start.Add(time.Duration(s)*time.Second))
	}
	jobs = append(jobs, vigil.BackupJob{ID: "bj-1", Status: vigil.BackupCompleted, PercentDone: 100, Bytes: 1 << 30})
	at = append(at, start.Add(12*time.Second))
	return jobs, at
}

func runProgress(tty bool) string {
	var out strings.Builder
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	jobs, at := backupSequence(start)
	i := 0
	p := &progress{w: &out, tty: tty, now: func() time.Time { return at[i] }}
	for i = range jobs {
		p.backup(jobs[i])
	}
	return out.String()
}

func TestProgressOnATerminal(t *testing.T) {
	out := runProgress(true)
	frames := strings.Split(out, "\r\033[K")
	if len(frames) < 12 || !strings.HasSuffix(out, "bj-1  COMPLETED\n") {
		t.Fatalf("expected one line rewritten in place, ending with the final status:\n%q", out)
	}
	// 6 s in, 500 MiB read: percent, bytes, rate and ETA.
	mid := frames[7]
	for _, want := range []string{"RUNNING", "49%", "500.0 MiB", "100.0 MiB/s", "ETA 6s"} {
		if !strings.Contains(mid, want) {
			t.Errorf("frame %q lacks %q", mid, want)
		}
	}
}

func TestProgressInALog(t *testing.T) {
	out := runProgress(false)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// PENDING, the first RUNNING, one more after 10 s, COMPLETED.
	if len(lines) != 4 {
		t.Fatalf("want 4 timestamped lines, got:\n%s", out)
	}
	stamp := regexp.MustCompile(`^2026-11-26 10:00:\d\d  bj-1  `)
	for _, l := range lines {
		if !stamp.MatchString(l) || strings.Contains(l, "\r") {
			t.Errorf("line %q is not a plain timestamped line", l)
		}
	}
	if !strings.Contains(lines[2], "ETA") || !strings.HasSuffix(lines[3], "COMPLETED") {
		t.Errorf("lines:\n%s", out)
	}
}
