package backup

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/config"
)

// A hook's output goes into the job's log capped, its end into a failure's
// message; a program that cannot start says where it was looked for.
func TestRunHookOutput(t *testing.T) {
	dir := t.TempDir()
	h := &config.Hook{Run: []string{"sh", "-c", `i=0; while [ $i -lt 1000 ]; do echo "line $i"; i=$((i+1)); done; echo "last words" >&2; exit 4`}, Timeout: config.Duration(10 * time.Second)}
	r := runHook(t.Context(), h, dir, nil)
	if r.err == nil || r.err.Error() != "exit status 4" {
		t.Fatalf("err = %v, want exit status 4", r.err)
	}
	if len(r.lines) != maxHookLines+1 || r.lines[0] != "line 0" || r.lines[maxHookLines] != "… 801 more lines of output not logged" {
		t.Errorf("%d lines logged, first %q, last %q; want %d and a note of the rest", len(r.lines), r.lines[0], r.lines[len(r.lines)-1], maxHookLines)
	}
	if !strings.HasSuffix(r.failure(), "line 999 | last words)") {
		t.Errorf("failure = %q, want the output's end quoted", r.failure())
	}

	r = runHook(t.Context(), &config.Hook{Run: []string{dir + "/no-such-hook.sh"}, Timeout: config.Duration(time.Second)}, dir, nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "cannot start it in "+dir+": "+dir+"/no-such-hook.sh: no such file or directory") {
		t.Errorf("err = %v, want it to name the program and the folder", r.err)
	}
}

// A hook is killed with its process group when the backup is stopped, and
// says so rather than blaming its own timeout.
func TestRunHookStopped(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := runHook(ctx, &config.Hook{Run: []string{"sh", "-c", "sleep 30 & wait"}, Timeout: config.Duration(time.Minute)}, t.TempDir(), nil)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the hook ran %s after the backup was stopped", took)
	}
	if r.err == nil || !strings.Contains(r.err.Error(), "the backup was stopped while it ran") {
		t.Errorf("err = %v, want it to say the backup was stopped", r.err)
	}
}
