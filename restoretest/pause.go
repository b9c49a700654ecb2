package restoretest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// EnvPause, set in vigil's environment by tests only, makes each restore
// test pause at the steps it names, "restore=2s,start=2s", so that a test
// can kill vigil at a chosen step instead of at a random moment. The
// steps: restore (the instance folder exists, nothing is restored yet),
// start (restored, the app not started), validate (started, no validator
// has run), cleanup (the verdict recorded, nothing deleted yet). Each pause
// is written into the job's log first.
const EnvPause = "VIGIL_TEST_PAUSE"

// pauses reads EnvPause; a bad value is refused, so a test notices.
func pauses() (map[string]time.Duration, error) {
	v := os.Getenv(EnvPause)
	if v == "" {
		return nil, nil
	}
	out := map[string]time.Duration{}
	for _, part := range strings.Split(v, ",") {
		step, d, ok := strings.Cut(part, "=")
		dur, err := time.ParseDuration(d)
		switch {
		case !ok || err != nil:
			return nil, fmt.Errorf("%s=%q: write it like restore=2s,cleanup=1s", EnvPause, v)
		case step != "restore" && step != "start" && step != "validate" && step != "cleanup":
			return nil, fmt.Errorf("%s: unknown step %q (restore, start, validate or cleanup)", EnvPause, step)
		}
		out[step] = dur
	}
	return out, nil
}

// pause waits at step if EnvPause says so, or until ctx ends, and returns
// how long it waited: no time of the copy's, nor of its validation window.
func (t *Tester) pause(ctx context.Context, jobID, step string) time.Duration {
	d, ok := t.pauses[step]
	if !ok {
		return 0
	}
	t.jobLog(ctx, jobID, "paused %s before %s (%s)", d, step, EnvPause)
	begin := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return time.Since(begin)
}
