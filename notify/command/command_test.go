package command_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/notify/command"
	"github.com/vigil-backup/vigil/notify/notifytest"
)

// writeScript writes an executable shell script into the test's directory.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommandReceivesEvent(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "event.json")
	script := writeScript(t, `cat > "$1"
printf '%s %s\n' "$VIGIL_EVENT_TYPE" "$VIGIL_EVENT_SEQ" > "$1.env"
echo delivered
`)
	ev := notifytest.Event()
	if err := command.New([]string{script, out}).Notify(t.Context(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the script wrote no event: %v", err)
	}
	var got vigil.Event
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("stdin is not an event: %v\n%s", err, b)
	}
	notifytest.SameEvent(t, got, ev)
	env, _ := os.ReadFile(out + ".env")
	if want := "BACKUP_JOB_COMPLETED 42\n"; string(env) != want {
		t.Errorf("VIGIL_EVENT_TYPE and VIGIL_EVENT_SEQ = %q, want %q", env, want)
	}
}

func TestCommandFailure(t *testing.T) {
	t.Parallel()
	script := writeScript(t, `cat > /dev/null
for i in 1 2 3 4 5 6 7; do echo "step $i"; done
echo "cannot reach the pager service" >&2
exit 3
`)
	err := command.New([]string{script, "--token", "arg-token-51ab"}).Notify(t.Context(), notifytest.Event())
	if err == nil {
		t.Fatal("Send with a command exiting 3 succeeded")
	}
	t.Logf("Notify: %v", err)
	msg := err.Error()
	for _, want := range []string{script, "exit status 3", "step 4", "step 7", "cannot reach the pager service"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	for _, unwanted := range []string{"step 3", "arg-token-51ab"} {
		if strings.Contains(msg, unwanted) {
			t.Errorf("error says %q: %v", unwanted, err)
		}
	}
}

func TestCommandNotFound(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "no-such-script")
	err := command.New([]string{missing}).Notify(t.Context(), notifytest.Event())
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Send with a missing command: %v, want an error naming it", err)
	}
}

// TestCommandCancelKillsGroup checks that cancelling kills the command's
// children too, not only the shell.
func TestCommandCancelKillsGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	script := writeScript(t, `sleep 30 &
echo $! > "$1.tmp" && mv "$1.tmp" "$1"
wait
`)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- command.New([]string{script, pidFile}).Notify(ctx, notifytest.Event()) }()

	var pid int
	for deadline := time.Now().Add(5 * time.Second); pid == 0; {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		} else if time.Now().After(deadline) {
			t.Fatal("the script did not start its child within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("Send after cancel: %v, want an error saying it was cancelled", err)
		}
		t.Logf("Notify: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return within 10s of its context's cancellation")
	}
	for deadline := time.Now().Add(5 * time.Second); processRuns(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("the command's child %d still runs after cancellation", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processRuns reports whether pid is a live process; a zombie, killed but
// not yet reaped by whoever inherited it, does not run.
func processRuns(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state …; comm may hold spaces, so read after the last ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}
