package restoretest

import (
	"context"
	"time"

	"github.com/vigil-backup/vigil/internal/testpause"
)

// EnvPause, set in vigil's environment by tests only, makes each restore
// test pause at the steps it names, "restore=2s,start=2s", so that a test
// can kill vigil at a chosen step instead of at a random moment. The
// steps: restore (the instance folder exists, nothing is restored yet),
// start (restored, the app not started), validate (started, no validator
// has run), cleanup (the verdict recorded, nothing deleted yet). Each pause
// is written into the job's log first.
const EnvPause = "VIGIL_TEST_PAUSE"

// pauses reads EnvPause.
func pauses() (testpause.Steps, error) {
	return testpause.Read(EnvPause, "restore", "start", "validate", "cleanup")
}

// pause waits at step if EnvPause says so, or until ctx ends, and returns
// how long it waited: no time of the copy's, nor of its validation window.
func (t *Tester) pause(ctx context.Context, jobID, step string) time.Duration {
	return t.pauses.At(ctx, step, func(d time.Duration) {
		t.jobLog(ctx, jobID, "paused %s before %s (%s)", d, step, EnvPause)
	})
}
