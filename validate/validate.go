// Package validate runs a resource's validators against a restored copy and
// returns the verdict of the restore test.
//
// # Checks and the window
//
// The checks (config.Validator: http, tcp, command, checksum, external,
// sql) run
// in their configured order, one at a time; a check starts only once the one
// before it passed. All of them share one validation window: a deadline of
// start + window. Each check is attempted, and retried after a failed
// attempt, with a delay of 50 ms doubling up to 1 s (the external check polls
// every 200 ms instead), until it passes or the window closes. An attempt
// still running when the window closes is stopped.
//
// # Verdicts
//
// A failed attempt is either "no answer" (connection refused or reset, the
// per-attempt timeout, no external verdict yet) or a "wrong answer"
// (an unexpected HTTP status, a body without the expected text, a command
// that exits with a status other than 0). When the window closes on a check,
// the verdict is TIMED_OUT if its last failed attempt had no answer, FAILED
// if it had a wrong one.
//
// Some failures are final at once, with no retry: a checksum mismatch, an
// external FAILED (or TIMED_OUT) verdict, a query that the restored
// database answers wrongly or refuses (its data will not change), a
// command that cannot be started,
// and a check that cannot run for the resource at all, such as an http check
// of a resource with no running app. The verdict is then FAILED.
//
// When every check passes, the verdict is SUCCESSFUL. When ctx is cancelled,
// the verdict is FAILED with the message "validation stopped: " followed by
// the cancel cause, such as "the app exited with status 1".
//
// # Messages and logs
//
// A failure's message names the check by its position and kind, and says
// what happened, such as
//
//	check 1 (http GET /health): expected status 200, got 500 (body: "db down…") after 14 attempts in 5s
//	check 2 (tcp 127.0.0.1:41234): no answer within the 5s validation window (98 attempts): connection refused
//
// Bodies and outputs are cut to about 200 bytes. Target.Log receives one
// line per check that passes, a failed attempt's message only when it
// differs from the previous attempt's (a hundred identical "connection
// refused" lines tell nothing), and a command's output lines, with the same
// rule.
package validate

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
)

// Target is the restored copy under test.
type Target struct {
	JobID, RecoveryPointID, Resource string
	Dir                              string // the restored data folder
	// Host, Port and URL reach a restored app: a loopback host, its port,
	// and the base URL "http://host:port". Empty and 0 for a folder.
	Host string
	Port int
	URL  string
	// Checksum compares the restored files with the recovery point (the
	// caller wraps vault.Compare); a nil error means they are equal. Any
	// other error, unless ctx ended, fails validation at once, with the
	// error's text as the message: it should say what differs.
	Checksum func(ctx context.Context, samplePercent float64) error
	// External returns a verdict reported through the API; ok is false while
	// none has arrived. An error is retried like "no answer".
	External func(ctx context.Context) (status vigil.ValidationStatus, message string, ok bool, err error)
	// SQL runs a query against a restored database (never its source)
	// and returns the rows, each value as text; nil when the copy is not
	// a database.
	SQL func(ctx context.Context, query string) (columns []string, rows [][]string, err error)
	// Env is added to a command check's environment, such as
	// VIGIL_RESTORE_DATABASE for a restored database.
	Env []string
	// Log receives lines for the restore job's own log. It is called from
	// Run's goroutine only.
	Log func(format string, args ...any)
	// Reach, for a copy isolated in a network of its own, dials it and
	// starts command checks from inside that network; nil means vigil's
	// own network.
	Reach Reach
	// Positions are the checks' numbers in the resource's validate list,
	// for messages, when Run gets only some of them; empty means 1, 2, ….
	Positions []int
}

// Reach gets to a copy that runs in a network namespace of its own.
type Reach interface {
	Dial(ctx context.Context, network, address string) (net.Conn, error)
	Start(cmd *exec.Cmd) error
}

// dialer returns how t's checks connect to the copy.
func (t Target) dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	if t.Reach != nil {
		return t.Reach.Dial
	}
	var d net.Dialer
	return d.DialContext
}

// Result is the verdict.
type Result struct {
	Status vigil.ValidationStatus // SUCCESSFUL, FAILED or TIMED_OUT
	// Message says, on failure, which check failed and how; on success it
	// is a one-line summary of what passed.
	Message string
}

// Retry delays. They are short because how late a check notices that the
// copy became ready adds straight to the recovery time the test measures;
// an attempt against a local copy costs little.
const (
	firstRetryDelay = 10 * time.Millisecond
	maxRetryDelay   = 250 * time.Millisecond
	externalPoll    = 200 * time.Millisecond
)

// maxShown is about how much of a body or an output a message quotes.
const maxShown = 200

// outcome classifies one attempt of a check.
type outcome int

const (
	passed outcome = iota
	// noAnswer is retried; the window closing on it is TIMED_OUT.
	noAnswer
	// wrongAnswer is retried; the window closing on it is FAILED.
	wrongAnswer
	// finalFailure ends validation at once, FAILED.
	finalFailure
	// finalTimedOut ends validation at once, TIMED_OUT: an external
	// verdict of TIMED_OUT.
	finalTimedOut
)

// attempt is the outcome of one try of a check.
type attempt struct {
	outcome outcome
	// message says what happened: on a pass, what passed ("status 200");
	// on a failure, what went wrong ("connection refused").
	message string
	// output holds lines the check printed (a command's output), logged
	// with the check's name.
	output []string
}

// check is one validator, ready to run against a target.
type check interface {
	// name describes the check, such as "http GET /health".
	name() string
	// try makes one attempt. ctx ends when the validation window closes
	// or validation is stopped; try applies its own per-attempt timeout.
	try(ctx context.Context) attempt
	// retryDelay returns the wait before the next attempt, given the
	// backoff delay due.
	retryDelay(backoff time.Duration) time.Duration
}

// backoff is the default retry delay.
type backoff struct{}

func (backoff) retryDelay(d time.Duration) time.Duration { return d }

// Run runs checks in order within window, each retried until it passes or
// the window closes, and returns the verdict. The package comment describes
// the rules.
func Run(ctx context.Context, checks []config.Validator, t Target, window time.Duration) Result {
	r := &runner{
		log:      t.Log,
		window:   window,
		deadline: time.Now().Add(window),
	}
	if r.log == nil {
		r.log = func(string, ...any) {}
	}

	if len(checks) == 0 {
		// config gives every resource at least one validator; a restore
		// test that checked nothing would prove nothing
		return Result{Status: vigil.ValidationFailed, Message: "no checks to run: give the resource at least one validator"}
	}

	start := time.Now()
	summaries := make([]string, 0, len(checks))

	for i, v := range checks {
		c := newCheck(v, t)
		n := i + 1
		if i < len(t.Positions) {
			n = t.Positions[i]
		}
		label := fmt.Sprintf("check %d (%s)", n, c.name())

		summary, res, ok := r.run(ctx, label, c)
		if !ok {
			return res
		}

		summaries = append(summaries, fmt.Sprintf("%s (%s)", c.name(), summary))
	}

	what := "1 check"
	if len(checks) > 1 {
		what = fmt.Sprintf("all %d checks", len(checks))
	}

	return Result{
		Status:  vigil.ValidationSuccessful,
		Message: fmt.Sprintf("%s passed in %s: %s", what, shortDuration(time.Since(start)), strings.Join(summaries, "; ")),
	}
}

type runner struct {
	log      func(format string, args ...any)
	window   time.Duration
	deadline time.Time
}

// run attempts one check until it passes, fails for good, or the window
// closes. It returns what passed, or the verdict and false.
func (r *runner) run(ctx context.Context, label string, c check) (string, Result, bool) {
	if ctx.Err() != nil {
		return "", stopped(ctx), false
	}

	begin := time.Now()
	if !begin.Before(r.deadline) {
		return "", Result{
			Status:  vigil.ValidationTimedOut,
			Message: fmt.Sprintf("%s: not started: the %s validation window had closed", label, shortDuration(r.window)),
		}, false
	}

	windowCtx, cancel := context.WithDeadline(ctx, r.deadline)
	defer cancel()

	var (
		last  attempt
		delay = firstRetryDelay
	)

	for n := 1; ; n++ {
		attemptStart := time.Now()
		a := c.try(windowCtx)
		took := time.Since(attemptStart)

		if ctx.Err() != nil {
			return "", stopped(ctx), false
		}

		// identical output, like an identical message, is logged once
		if a.outcome == passed || a.message != last.message {
			for _, line := range a.output {
				r.log("%s: %s", label, line)
			}
		}

		if a.outcome == passed {
			r.log("%s passed: %s in %s, attempt %d", label, a.message, shortDuration(took), n)
			return a.message, Result{}, true
		}

		if a.message != last.message {
			r.log("%s attempt %d: %s", label, n, a.message)
		}

		switch a.outcome {
		case finalFailure:
			return "", Result{Status: vigil.ValidationFailed, Message: label + ": " + a.message}, false
		case finalTimedOut:
			return "", Result{Status: vigil.ValidationTimedOut, Message: label + ": " + a.message}, false
		}

		// An attempt the window's end cut short says nothing new: the
		// verdict rests on the one before it, if any.
		if a.outcome == noAnswer && windowCtx.Err() != nil && last.message != "" {
			return "", r.windowClosed(label, last, n, time.Since(begin)), false
		}

		last = a

		wait := min(c.retryDelay(delay), time.Until(r.deadline))
		delay = min(2*delay, maxRetryDelay)

		if wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return "", stopped(ctx), false
			case <-timer.C:
			}
		}

		if !time.Now().Before(r.deadline) {
			return "", r.windowClosed(label, last, n, time.Since(begin)), false
		}
	}
}

// windowClosed is the verdict when the window closes on a check whose last
// attempt, number n, failed.
func (r *runner) windowClosed(label string, last attempt, n int, spent time.Duration) Result {
	if last.outcome == noAnswer {
		return Result{
			Status:  vigil.ValidationTimedOut,
			Message: fmt.Sprintf("%s: no answer within the %s validation window (%s): %s", label, shortDuration(r.window), attempts(n), last.message),
		}
	}

	return Result{
		Status:  vigil.ValidationFailed,
		Message: fmt.Sprintf("%s: %s after %s in %s", label, last.message, attempts(n), shortDuration(spent)),
	}
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}

	return fmt.Sprintf("%d attempts", n)
}

func stopped(ctx context.Context) Result {
	return Result{Status: vigil.ValidationFailed, Message: "validation stopped: " + context.Cause(ctx).Error()}
}

// newCheck builds the check for one validator.
func newCheck(v config.Validator, t Target) check {
	switch {
	case v.HTTP != nil:
		return newHTTPCheck(*v.HTTP, t)
	case v.TCP != nil:
		return newTCPCheck(*v.TCP, t)
	case v.Command != nil:
		return newCommandCheck(*v.Command, t)
	case v.Checksum != nil:
		return newChecksumCheck(*v.Checksum, t)
	case v.External != nil:
		return newExternalCheck(t)
	case v.SQL != nil:
		return newSQLCheck(*v.SQL, t)
	}

	return unavailable{what: "unknown check", reason: "the validator sets none of http, tcp, command, checksum, external, sql"}
}

// unavailable is a check that cannot run for this target, such as an http
// check of a folder: it fails at once and says why.
type unavailable struct {
	backoff

	what, reason string
}

func (u unavailable) name() string { return u.what }

func (u unavailable) try(context.Context) attempt {
	return attempt{outcome: finalFailure, message: "cannot run for this resource: " + u.reason}
}

// attemptContext gives an attempt its own timeout within ctx, the window.
func attemptContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}

	return context.WithTimeout(ctx, timeout)
}

// timeoutMessage says which deadline an attempt that ran out of time hit:
// its own timeout, or the window's end.
func timeoutMessage(window context.Context, timeout time.Duration, what string) string {
	if window.Err() != nil || timeout <= 0 {
		return what + " when the validation window closed"
	}

	return fmt.Sprintf("%s after %s (the check's timeout)", what, shortDuration(timeout))
}

// shortDuration writes d for a person: 3ms, 1.5s, 5m, 1h30m.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}

	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}

	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}

	return s
}

// head quotes the start of b, cut to about maxShown bytes.
func head(b []byte) string {
	if len(b) <= maxShown {
		return fmt.Sprintf("%q", b)
	}

	cut := maxShown
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}

	return fmt.Sprintf("%q", string(b[:cut])+"…")
}

// tail quotes the end of s, cut to about maxShown bytes: the last lines of a
// program's output say the most.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxShown {
		return fmt.Sprintf("%q", s)
	}

	cut := len(s) - maxShown
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}

	return fmt.Sprintf("%q", "…"+s[cut:])
}
