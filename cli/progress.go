package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/internal/units"
)

// progress shows a waited-for job on standard error while --wait polls it:
// on a terminal one line, rewritten in place (status, percent, bytes,
// rate, ETA); otherwise plain timestamped lines, one per change of status
// and one every plainEvery while a backup runs, which read well in a log.
// Standard output keeps only the final record, so --json stays parseable.
type progress struct {
	w    io.Writer
	tty  bool
	last string    // the last line shown
	at   time.Time // when a plain line was last written

	// The rate is measured from the first progress seen, when bytes and
	// time were both known.
	firstBytes int64
	firstAt    time.Time

	now func() time.Time
}

// plainEvery is how often a running backup writes a line when standard
// error is not a terminal.
const plainEvery = 10 * time.Second

// newProgress returns the progress display of this command: nil (nothing
// shown) when there is nowhere to show it.
func (g *globalOptions) newProgress() *progress {
	if g.stderr == nil {
		return nil
	}
	p := &progress{w: g.stderr, now: time.Now}
	if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// backup shows a backup job's state.
func (p *progress) backup(j vigil.BackupJob) {
	if p == nil {
		return
	}
	now := p.now()
	parts := []string{j.ID, string(j.Status)}
	if j.Status == vigil.BackupRunning {
		if p.firstAt.IsZero() || j.Bytes < p.firstBytes {
			p.firstBytes, p.firstAt = j.Bytes, now
		}
		parts = append(parts, fmt.Sprintf("%.0f%%", j.PercentDone), units.Bytes(j.Bytes))
		if dt := now.Sub(p.firstAt).Seconds(); dt >= 1 && j.Bytes > p.firstBytes {
			parts = append(parts, units.Bytes(int64(float64(j.Bytes-p.firstBytes)/dt))+"/s")
		}
		if eta, ok := etaOf(j, now); ok {
			parts = append(parts, "ETA "+eta.Round(time.Second).String())
		}
	}
	p.show(strings.Join(parts, "  "), j.Status == vigil.BackupRunning, j.Status.Final())
}

// etaOf estimates the time left from percent_done and the time spent.
func etaOf(j vigil.BackupJob, now time.Time) (time.Duration, bool) {
	if j.StartedAt == nil || j.PercentDone < 1 || j.PercentDone >= 100 {
		return 0, false
	}
	spent := now.Sub(*j.StartedAt)
	return time.Duration(float64(spent) * (100 - j.PercentDone) / j.PercentDone), true
}

// restore shows a restore job's or restore test's state: its status, and
// for a test the verdict and the clean-up as they come.
func (p *progress) restore(j vigil.RestoreJob) {
	if p == nil {
		return
	}
	parts := []string{j.ID, string(j.Status)}
	if j.ValidationStatus != "" {
		parts = append(parts, "validation "+string(j.ValidationStatus))
	}
	if j.DeletionStatus != "" {
		parts = append(parts, "deletion "+string(j.DeletionStatus))
	}
	p.show(strings.Join(parts, "  "), false, j.Ended())
}

// show writes line if it says something new; running lines of a plain
// display are written at most every plainEvery.
func (p *progress) show(line string, running, final bool) {
	now := p.now()
	line = printable(line) // ids and statuses are the server's text
	if p.tty {
		if line != p.last {
			fmt.Fprintf(p.w, "\r\033[K%s", line)
			p.last = line
		}
		if final {
			fmt.Fprintln(p.w)
		}
		return
	}
	status := statusPart(line)
	if line == p.last || status == statusPart(p.last) && running && now.Sub(p.at) < plainEvery {
		return
	}
	fmt.Fprintf(p.w, "%s  %s\n", now.Format("2006-01-02 15:04:05"), line)
	p.last, p.at = line, now
}

// statusPart is a line without its figures: id and status words.
func statusPart(line string) string {
	fields := strings.SplitN(line, "  ", 3)
	return strings.Join(fields[:min(2, len(fields))], "  ")
}

func (p *progress) copyJob(j vigil.CopyJob) {
	if p == nil {
		return
	}
	p.show(strings.Join([]string{j.ID, string(j.Status), "into vault " + j.Vault}, "  "), false, j.Status.Final())
}
