package validate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-backup/vigil/config"
)

// Output kept from one run of a command: the lines logged, and the end
// quoted in a failure's message.
const (
	maxLoggedOutput = 64 << 10
	keptTail        = 4 * maxShown
)

// pipeGrace is how long Wait waits for the output pipe once the command has
// exited or been killed, in case a process it left behind holds it open.
const pipeGrace = time.Second

// commandCheck runs a program; exit status 0 passes.
type commandCheck struct {
	backoff

	cfg   config.CommandCheck
	dir   string
	env   []string
	start func(cmd *exec.Cmd) error
}

func newCommandCheck(cfg config.CommandCheck, t Target) check {
	if len(cfg.Run) == 0 {
		return unavailable{what: "command", reason: "the validator names no program to run"}
	}

	port := ""
	if t.Port != 0 {
		port = strconv.Itoa(t.Port)
	}

	env := append(os.Environ(),
		"VIGIL_RESTORE_DIR="+t.Dir,
		"VIGIL_RESTORE_URL="+t.URL,
		"VIGIL_RESTORE_HOST="+t.Host,
		"VIGIL_RESTORE_PORT="+port,
		"VIGIL_RESTORE_JOB_ID="+t.JobID,
		"VIGIL_RECOVERY_POINT_ID="+t.RecoveryPointID,
		"VIGIL_RESOURCE="+t.Resource,
	)
	env = append(env, t.Env...)
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		env = append(env, k+"="+cfg.Env[k])
	}

	start := (*exec.Cmd).Start
	if t.Reach != nil {
		// In the copy's network: it reaches the copy, and nothing the
		// copy cannot.
		start = t.Reach.Start
	}
	return &commandCheck{cfg: cfg, dir: t.Dir, env: env, start: start}
}

func (c *commandCheck) name() string {
	s := "command " + strings.Join(c.cfg.Run, " ")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "…"
	}

	return s
}

func (c *commandCheck) try(window context.Context) attempt {
	timeout := time.Duration(c.cfg.Timeout)

	ctx, cancel := attemptContext(window, timeout)
	defer cancel()

	var out outputBuffer

	cmd := exec.CommandContext(ctx, c.cfg.Run[0], c.cfg.Run[1:]...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	cmd.Stdout = &out
	cmd.Stderr = &out
	// Its own process group, so that whatever it starts is killed with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = pipeGrace

	if err := c.start(cmd); err != nil {
		msg := fmt.Sprintf("cannot start %s: %v", c.cfg.Run[0], unwrapStartError(err))
		if !strings.HasPrefix(c.cfg.Run[0], "/") && strings.Contains(c.cfg.Run[0], "/") {
			msg += " (a relative path is taken from the restored folder " + c.dir + ")"
		}

		return attempt{outcome: finalFailure, message: msg + "; check the validator's run"}
	}

	err := cmd.Wait()

	// A check's background processes end with it: left running, they would
	// keep the restored copy busy.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck

	a := attempt{output: out.lines()}

	var exitErr *exec.ExitError

	switch {
	case ctx.Err() != nil:
		a.outcome, a.message = noAnswer, timeoutMessage(window, timeout, "still running")+", killed"
	case err == nil:
		a.outcome, a.message = passed, "exit status 0"
	case errors.As(err, &exitErr):
		a.outcome, a.message = wrongAnswer, describeExit(exitErr.ProcessState)+out.quoted()
	case errors.Is(err, exec.ErrWaitDelay):
		// it exited 0, but something it started held its output open
		a.outcome, a.message = passed, "exit status 0"
	default:
		a.outcome, a.message = wrongAnswer, err.Error()+out.quoted()
	}

	return a
}

func describeExit(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + ws.Signal().String()
	}

	return fmt.Sprintf("exit status %d", ps.ExitCode())
}

// unwrapStartError drops the "fork/exec path:" prefix of a start error.
func unwrapStartError(err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}

	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}

	return err
}

// outputBuffer keeps a command's combined output: the start, to log, and
// the end, to quote. exec writes to it from one goroutine at a time, since
// stdout and stderr are the same writer.
type outputBuffer struct {
	logged  []byte
	dropped int
	end     []byte
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	if room := maxLoggedOutput - len(b.logged); room > 0 {
		n := min(room, len(p))
		b.logged = append(b.logged, p[:n]...)
		b.dropped += len(p) - n
	} else {
		b.dropped += len(p)
	}

	b.end = append(b.end, p...)
	if len(b.end) > keptTail {
		b.end = append(b.end[:0], b.end[len(b.end)-keptTail:]...)
	}

	return len(p), nil
}

// lines returns the output to log, line by line.
func (b *outputBuffer) lines() []string {
	text := strings.TrimRight(string(b.logged), "\n")
	if text == "" {
		return nil
	}

	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}

	if b.dropped > 0 {
		lines = append(lines, fmt.Sprintf("… %d more bytes of output not logged", b.dropped))
	}

	return lines
}

// quoted returns the end of the output for a message, or that there was
// none.
func (b *outputBuffer) quoted() string {
	if strings.TrimSpace(string(b.end)) == "" {
		return " (no output)"
	}

	return " (output: " + tail(string(b.end)) + ")"
}
