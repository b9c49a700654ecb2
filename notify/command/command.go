// Package command delivers vigil's events to a local program, which gets
// each event as JSON on its standard input: the channel for whatever has
// no webhook or e-mail of its own.
package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/notify"
)

// Limits of a command run.
const (
	// timeout bounds one run; a hung script must not hold back the
	// deliveries queued behind it.
	timeout = time.Minute
	// waitDelay is how long output pipes held open by a background child
	// are waited for once the command itself has exited.
	waitDelay = 2 * time.Second
	// outputLines is how much of a failed command's output an error
	// quotes, from the end, where the reason usually is.
	outputLines = 5
	// outputKeep bounds the output kept in memory.
	outputKeep = 16 << 10
)

// Notifier runs a program for each event, with the event as JSON on its
// standard input and VIGIL_EVENT_TYPE and VIGIL_EVENT_SEQ in its
// environment. Exit status 0 is a delivery. The program runs in a process
// group of its own, killed as a whole after a minute or when the caller's
// context ends, so its children go too.
type Notifier struct {
	argv []string
}

var _ notify.Notifier = (*Notifier)(nil)

// New returns the Notifier that runs argv: the program, then its
// arguments. argv must not be empty; the configuration sees to that.
func New(argv []string) *Notifier {
	return &Notifier{argv: argv}
}

// Notify runs the program for ev, once.
func (n *Notifier) Notify(ctx context.Context, ev vigil.Event) error {
	argv := n.argv
	name := argv[0] // arguments may hold tokens: errors name the program only
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("command %s: encode event: %w", name, err)
	}
	attempt, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(attempt, name, argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	out := &tailBuffer{max: outputKeep}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(),
		"VIGIL_EVENT_TYPE="+string(ev.Type),
		"VIGIL_EVENT_SEQ="+strconv.FormatInt(ev.Seq, 10),
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("command %s: start: %w", name, err)
	}
	err = cmd.Wait()
	if err == nil || (errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success()) {
		// A background child kept the output open; the command itself
		// succeeded.
		return nil
	}
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("killed, stopped: %w", context.Cause(ctx))
	case attempt.Err() != nil:
		err = fmt.Errorf("killed after %s without finishing", timeout)
	}
	if lines := out.lastLines(outputLines); lines != "" {
		return fmt.Errorf("command %s: %w; output ends:\n%s", name, err, lines)
	}
	return fmt.Errorf("command %s: %w; no output", name, err)
}

// tailBuffer keeps the last max bytes written to it. exec writes to it
// from one goroutine per stream, one at a time, as Stdout and Stderr are
// the same writer.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lastLines is the last n non-blank lines, each cut to a readable length.
func (t *tailBuffer) lastLines(n int) string {
	var lines []string
	for _, l := range strings.Split(strings.ToValidUTF8(string(t.buf), "\uFFFD"), "\n") {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			continue
		}
		if r := []rune(l); len(r) > 300 {
			l = string(r[:300]) + "…"
		}
		lines = append(lines, l)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
