package backup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
)

// Output a hook keeps: the lines that go into the job's log, and the end
// quoted in a failure's message.
const (
	maxHookLines  = 200
	maxHookOutput = 32 << 10
	hookTailShown = 500
)

// hookPipeGrace is how long a hook's output is read after it exited, when
// a process it left running holds the output open: such a process (one
// holding a lock until after_backup releases it) is left running, but its
// output is not waited for.
const hookPipeGrace = time.Second

// hookRun is what one run of a hook did.
type hookRun struct {
	lines []string // its output, capped, for the job's log
	tail  string   // the end of its output, for a message
	err   error    // nil when it exited 0
}

// runHook runs hook h in dir with env added to vigil's environment, and
// kills its process group when its timeout passes or ctx ends.
func runHook(parent context.Context, h *config.Hook, dir string, env []string) hookRun {
	ctx, cancel := context.WithTimeout(parent, time.Duration(h.Timeout))
	defer cancel()

	out := &hookOutput{}
	cmd := exec.CommandContext(ctx, h.Run[0], h.Run[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	for _, k := range slices.Sorted(maps.Keys(h.Env)) {
		cmd.Env = append(cmd.Env, k+"="+h.Env[k])
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that at its timeout whatever it started
	// is killed with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = hookPipeGrace

	if err := cmd.Start(); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Path, pe.Err)
		}
		return hookRun{err: fmt.Errorf("cannot start it in %s: %v", dir, err)}
	}
	err := cmd.Wait()
	r := hookRun{lines: out.lines(), tail: out.tail()}
	ps := cmd.ProcessState // set once it exited, whatever held its output
	switch {
	case parent.Err() != nil:
		r.err = errors.New("the backup was stopped while it ran (vigil stopping, or workers.job_timeout): its processes were killed")
	case ctx.Err() != nil:
		r.err = fmt.Errorf("still running after its timeout of %s: its processes were killed", time.Duration(h.Timeout))
	case ps == nil:
		r.err = err
	case ps.Success():
	default:
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.err = fmt.Errorf("killed by signal %s", ws.Signal())
		} else {
			r.err = fmt.Errorf("exit status %d", ps.ExitCode())
		}
	}
	return r
}

// runHook runs the resource's hook h (before_backup or after_backup, as
// key says), if it has one, with the job's environment plus env, and logs
// its output and its end. It returns "" when there is no hook or it
// succeeded, else what went wrong, for the job's message.
func (b *Runner) runHook(ctx context.Context, job *vigil.BackupJob, cfg config.Resource, key string, h *config.Hook, env ...string) string {
	if h == nil {
		return ""
	}
	name := hookName(key, h)
	env = append([]string{"VIGIL_RESOURCE=" + cfg.Name, "VIGIL_BACKUP_JOB_ID=" + job.ID, "VIGIL_VAULT=" + job.Vault}, env...)
	start := time.Now()
	r := runHook(ctx, h, hookDir(cfg, b.cfg.Current().DataDir), env)
	for _, l := range r.lines {
		b.jobLog(ctx, job.ID, "%s: %s", key, l)
	}
	took := time.Since(start).Round(time.Millisecond)
	if r.err == nil {
		b.jobLog(ctx, job.ID, "%s: exit status 0 in %s", name, took)
		return ""
	}
	b.jobLog(ctx, job.ID, "%s failed after %s: %s", name, took, r.err)
	return fmt.Sprintf("%s failed: %s", name, r.failure())
}

// hookDir is where a resource's hooks run: its folder; a database file's
// folder; for a database on a server, which has no folder, the data dir.
func hookDir(cfg config.Resource, dataDir string) string {
	switch {
	case cfg.Path == "":
		return dataDir
	case config.IsDatabase(cfg.Type):
		return filepath.Dir(cfg.Path)
	}
	return cfg.Path
}

// hookName names a hook for the job's log: its key and its program.
func hookName(key string, h *config.Hook) string {
	return key + " " + h.Run[0]
}

// failure is what a failed hook's run says, its output's end quoted.
func (r hookRun) failure() string {
	if r.tail == "" {
		return r.err.Error() + " (no output)"
	}
	return fmt.Sprintf("%v (output ends: %s)", r.err, r.tail)
}

// hookOutput keeps a hook's combined output: the start, for the log,
// and the end, for a message. exec writes to it from one goroutine at a
// time, since stdout and stderr are the same writer.
type hookOutput struct {
	kept    []byte
	dropped int
	end     []byte
}

func (o *hookOutput) Write(p []byte) (int, error) {
	n := min(max(maxHookOutput-len(o.kept), 0), len(p))
	o.kept = append(o.kept, p[:n]...)
	o.dropped += len(p) - n
	o.end = append(o.end, p...)
	if over := len(o.end) - hookTailShown; over > 0 {
		o.end = append(o.end[:0], o.end[over:]...)
	}
	return len(p), nil
}

func (o *hookOutput) lines() []string {
	text := strings.TrimRight(strings.ToValidUTF8(string(o.kept), "\uFFFD"), "\n")
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	more := ""
	if len(lines) > maxHookLines {
		more = fmt.Sprintf("%d more lines", len(lines)-maxHookLines)
		lines = lines[:maxHookLines]
	}
	if o.dropped > 0 {
		more = strings.TrimPrefix(more+fmt.Sprintf(", %d more bytes", o.dropped), ", ")
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	if more != "" {
		lines = append(lines, "… "+more+" of output not logged")
	}
	return lines
}

func (o *hookOutput) tail() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(o.end), "\uFFFD"))
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}
