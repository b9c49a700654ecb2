package validate_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/validate"
)

// testLog collects a target's log lines.
type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()

	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// count returns how many lines contain s.
func (l *testLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()

	n := 0

	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}

	return n
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()

	return "\n\t" + strings.Join(l.lines, "\n\t")
}

// newTarget returns a folder target whose log goes to the returned testLog.
func newTarget(t *testing.T) (validate.Target, *testLog) {
	t.Helper()

	log := &testLog{}

	return validate.Target{
		JobID:           "rj-0123456789abcdef",
		RecoveryPointID: "rp-0123456789abcdef",
		Resource:        "docs",
		Dir:             t.TempDir(),
		Log:             log.logf,
	}, log
}

// withApp points a target at an app on addr.
func withApp(t *testing.T, target validate.Target, addr string) validate.Target {
	t.Helper()

	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}

	target.Host = host
	fmt.Sscan(port, &target.Port) //nolint:errcheck
	target.URL = "http://" + addr

	return target
}

// unusedAddr returns a loopback address on which nothing listens.
func unusedAddr(t *testing.T) string {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	addr := l.Addr().String()
	l.Close()

	return addr
}

func expect(t *testing.T, got validate.Result, status vigil.ValidationStatus, parts ...string) {
	t.Helper()
	t.Logf("%s: %s", got.Status, got.Message)

	if got.Status != status {
		t.Errorf("status %s (%s), want %s", got.Status, got.Message, status)
	}

	for _, p := range parts {
		if !strings.Contains(got.Message, p) {
			t.Errorf("message %q does not contain %q", got.Message, p)
		}
	}
}

func checksum(pct float64) config.Validator {
	return config.Validator{Checksum: &config.ChecksumCheck{SamplePercent: pct}}
}

func external() config.Validator {
	return config.Validator{External: &config.ExternalCheck{}}
}

func TestChecksumMismatchFailsAtOnce(t *testing.T) {
	t.Parallel()

	target, _ := newTarget(t)

	var calls atomic.Int32

	target.Checksum = func(context.Context, float64) error {
		calls.Add(1)
		return errors.New("2 differences: content differs: a.txt (from byte 3)")
	}

	start := time.Now()
	res := validate.Run(t.Context(), []config.Validator{checksum(100)}, target, time.Minute)

	expect(t, res, vigil.ValidationFailed, "check 1 (checksum): 2 differences: content differs: a.txt (from byte 3)")

	if calls.Load() != 1 {
		t.Errorf("checksum ran %d times, want once: a mismatch is final", calls.Load())
	}

	// not a timing assertion: a retried mismatch would wait out the minute
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("took %v: the mismatch was not final", elapsed)
	}
}

func TestChecksumPassesWithItsPercentage(t *testing.T) {
	t.Parallel()

	target, log := newTarget(t)

	var got float64

	target.Checksum = func(_ context.Context, pct float64) error {
		got = pct
		return nil
	}

	res := validate.Run(t.Context(), []config.Validator{checksum(10)}, target, time.Second)
	expect(t, res, vigil.ValidationSuccessful, "checksum 10%")

	if got != 10 {
		t.Errorf("checksum got %v%%, want 10", got)
	}

	if log.count("check 1 (checksum 10%) passed") != 1 {
		t.Errorf("no pass line in the log:%s", log)
	}
}

func TestExternal(t *testing.T) {
	t.Parallel()

	verdict := func(after time.Duration, status vigil.ValidationStatus, msg string) func(context.Context) (vigil.ValidationStatus, string, bool, error) {
		start := time.Now()
		return func(context.Context) (vigil.ValidationStatus, string, bool, error) {
			if time.Since(start) < after {
				return "", "", false, nil
			}

			return status, msg, true, nil
		}
	}

	t.Run("successful after a while", func(t *testing.T) {
		t.Parallel()

		target, log := newTarget(t)
		target.External = verdict(300*time.Millisecond, vigil.ValidationSuccessful, "smoke tests green")

		res := validate.Run(t.Context(), []config.Validator{external()}, target, 5*time.Second)
		expect(t, res, vigil.ValidationSuccessful, "external (reported SUCCESSFUL: smoke tests green)")

		if n := log.count("no verdict reported"); n != 1 {
			t.Errorf("the wait for a verdict was logged %d times, want once:%s", n, log)
		}
	})

	t.Run("failed", func(t *testing.T) {
		t.Parallel()

		target, _ := newTarget(t)
		target.External = verdict(0, vigil.ValidationFailed, "orders table empty")

		res := validate.Run(t.Context(), []config.Validator{external()}, target, time.Minute)
		expect(t, res, vigil.ValidationFailed, "check 1 (external): reported FAILED: orders table empty")
	})

	t.Run("none", func(t *testing.T) {
		t.Parallel()

		target, _ := newTarget(t)
		target.External = verdict(time.Hour, "", "")

		res := validate.Run(t.Context(), []config.Validator{external()}, target, 500*time.Millisecond)
		expect(t, res, vigil.ValidationTimedOut, "check 1 (external): no answer within the 500ms validation window (", "): no verdict reported (PUT /api/v1/restore-jobs/rj-0123456789abcdef/validation)")
	})
}

func TestCancelledWithCause(t *testing.T) {
	t.Parallel()

	target, _ := newTarget(t)
	target = withApp(t, target, unusedAddr(t))

	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(200*time.Millisecond, func() { cancel(errors.New("the app exited with status 1")) })

	res := validate.Run(ctx, []config.Validator{{TCP: &config.TCPCheck{Timeout: config.Duration(time.Second)}}}, target, time.Minute)
	expect(t, res, vigil.ValidationFailed)

	if res.Message != "validation stopped: the app exited with status 1" {
		t.Errorf("message %q", res.Message)
	}
}

func TestCheckThatCannotRun(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		check config.Validator
		want  string
	}{
		{"checksum without a hook", checksum(100), "check 1 (checksum): cannot run for this resource"},
		{"external without a hook", external(), "check 1 (external): cannot run for this resource"},
		{"http of a folder", config.Validator{HTTP: &config.HTTPCheck{Method: "GET", Path: "/", ExpectStatus: 200}}, "check 1 (http GET /): cannot run for this resource"},
		{"tcp of a folder", config.Validator{TCP: &config.TCPCheck{}}, "check 1 (tcp): cannot run for this resource"},
		{"no kind", config.Validator{}, "check 1 (unknown check): cannot run for this resource"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			target, _ := newTarget(t)
			res := validate.Run(t.Context(), []config.Validator{tt.check}, target, time.Minute)
			expect(t, res, vigil.ValidationFailed, tt.want)
		})
	}

	target, _ := newTarget(t)
	expect(t, validate.Run(t.Context(), nil, target, time.Minute), vigil.ValidationFailed, "no checks to run")
}

func TestChecksRunInOrder(t *testing.T) {
	t.Parallel()

	var order []string

	target, log := newTarget(t)
	target.External = func(context.Context) (vigil.ValidationStatus, string, bool, error) {
		order = append(order, "external")
		return vigil.ValidationSuccessful, "", true, nil
	}
	target.Checksum = func(context.Context, float64) error {
		order = append(order, "checksum")
		return nil
	}

	res := validate.Run(t.Context(), []config.Validator{external(), checksum(100)}, target, time.Second)
	expect(t, res, vigil.ValidationSuccessful, "all 2 checks passed in ", "external (reported SUCCESSFUL); checksum (all files equal the recovery point)")

	if strings.Join(order, ",") != "external,checksum" {
		t.Errorf("ran %v, want external then checksum", order)
	}

	if log.count("check 1 (external) passed: reported SUCCESSFUL in ") != 1 || log.count("check 2 (checksum) passed: all files equal the recovery point in ") != 1 {
		t.Errorf("log:%s", log)
	}

	// a failed check ends validation: the next one never runs
	order = nil
	target.External = func(context.Context) (vigil.ValidationStatus, string, bool, error) {
		order = append(order, "external")
		return vigil.ValidationFailed, "no", true, nil
	}

	expect(t, validate.Run(t.Context(), []config.Validator{external(), checksum(100)}, target, time.Second), vigil.ValidationFailed, "check 1 (external)")

	if strings.Join(order, ",") != "external" {
		t.Errorf("ran %v after a failed first check", order)
	}
}
