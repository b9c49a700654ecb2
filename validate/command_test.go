package validate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/validate"
)

// Tests write their scripts before t.Parallel: executing a file that another
// test's fork still holds open for writing fails with "text file busy".

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()

	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func command(timeout time.Duration, run ...string) config.Validator {
	return config.Validator{Command: &config.CommandCheck{Run: run, Timeout: config.Duration(timeout)}}
}

func TestCommandPasses(t *testing.T) {
	target, log := newTarget(t)
	target = withApp(t, target, "127.0.0.1:41234")
	out := filepath.Join(t.TempDir(), "env")

	writeScript(t, target.Dir, "check.sh", `
{
	echo "dir=$VIGIL_RESTORE_DIR"
	echo "pwd=$(pwd -P)"
	echo "url=$VIGIL_RESTORE_URL"
	echo "host=$VIGIL_RESTORE_HOST"
	echo "port=$VIGIL_RESTORE_PORT"
	echo "job=$VIGIL_RESTORE_JOB_ID"
	echo "rp=$VIGIL_RECOVERY_POINT_ID"
	echo "resource=$VIGIL_RESOURCE"
	echo "extra=$EXTRA"
	echo "path=${PATH:+inherited}"
	echo "args=$*"
} > "$OUT"
echo all good
`)
	t.Parallel()

	check := command(5*time.Second, "./check.sh", "one", "two")
	check.Command.Env = map[string]string{"OUT": out, "EXTRA": "from the config"}

	res := validate.Run(t.Context(), []config.Validator{check}, target, 5*time.Second)
	expect(t, res, vigil.ValidationSuccessful, "command ./check.sh one two (exit status 0)")

	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}

	dir, err := filepath.EvalSymlinks(target.Dir)
	if err != nil {
		t.Fatal(err)
	}

	want := strings.Join([]string{
		"dir=" + target.Dir,
		"pwd=" + dir,
		"url=http://127.0.0.1:41234",
		"host=127.0.0.1",
		"port=41234",
		"job=rj-0123456789abcdef",
		"rp=rp-0123456789abcdef",
		"resource=docs",
		"extra=from the config",
		"path=inherited",
		"args=one two",
	}, "\n") + "\n"
	if string(got) != want {
		t.Errorf("the command saw:\n%s\nwant:\n%s", got, want)
	}

	if log.count("check 1 (command ./check.sh one two): all good") != 1 || log.count("check 1 (command ./check.sh one two) passed: exit status 0 in ") != 1 {
		t.Errorf("log:%s", log)
	}
}

func TestCommandFails(t *testing.T) {
	target, log := newTarget(t)
	writeScript(t, target.Dir, "check.sh", "echo 'db not ready'\nexit 1\n")
	t.Parallel()

	res := validate.Run(t.Context(), []config.Validator{command(time.Second, "./check.sh")}, target, 300*time.Millisecond)
	expect(t, res, vigil.ValidationFailed, `check 1 (command ./check.sh): exit status 1 (output: "db not ready") after `)

	if n := log.count("check 1 (command ./check.sh): db not ready"); n != 1 {
		t.Errorf("the same output logged %d times, want once:%s", n, log)
	}

	if n := log.count("exit status 1"); n != 1 {
		t.Errorf("the same failure logged %d times, want once:%s", n, log)
	}
}

func TestCommandPassesOnRetry(t *testing.T) {
	target, log := newTarget(t)
	writeScript(t, target.Dir, "check.sh", `
n=$(cat count 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > count
echo "try $n"
[ $n -ge 3 ]
`)
	t.Parallel()

	res := validate.Run(t.Context(), []config.Validator{command(time.Second, "./check.sh")}, target, 5*time.Second)
	expect(t, res, vigil.ValidationSuccessful)

	for _, line := range []string{"check 1 (command ./check.sh): try 1", "check 1 (command ./check.sh): try 2", "check 1 (command ./check.sh): try 3", ", attempt 3"} {
		if log.count(line) != 1 {
			t.Errorf("log lacks %q:%s", line, log)
		}
	}
}

func TestCommandTimeoutKillsItsProcessGroup(t *testing.T) {
	target, _ := newTarget(t)
	pids := filepath.Join(t.TempDir(), "pids")
	writeScript(t, target.Dir, "check.sh", `
sleep 30 &
echo $! >> "$PIDS"
echo started
wait
`)
	t.Parallel()

	check := command(200*time.Millisecond, "./check.sh")
	check.Command.Env = map[string]string{"PIDS": pids}

	res := validate.Run(t.Context(), []config.Validator{check}, target, 700*time.Millisecond)
	expect(t, res, vigil.ValidationTimedOut, "check 1 (command ./check.sh): no answer within the 700ms validation window (", "): still running after 200ms (the check's timeout), killed")

	b, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}

	for _, pid := range strings.Fields(string(b)) {
		if alive(pid) {
			t.Errorf("the check's background sleep %s outlived it", pid)
		}
	}
}

// alive reports whether process pid is still running a second from now
// (it may take a moment to be reaped).
func alive(pid string) bool {
	for range 20 {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return false
		}

		// the state follows the command name in parentheses; Z is a zombie
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			return false
		}

		time.Sleep(50 * time.Millisecond)
	}

	return true
}

func TestCommandMissingProgram(t *testing.T) {
	t.Parallel()

	target, _ := newTarget(t)

	res := validate.Run(t.Context(), []config.Validator{command(time.Second, "./nope.sh")}, target, time.Minute)
	expect(t, res, vigil.ValidationFailed, "check 1 (command ./nope.sh): cannot start ./nope.sh: no such file or directory (a relative path is taken from the restored folder "+target.Dir+")")

	res = validate.Run(t.Context(), []config.Validator{command(time.Second, "vigil-no-such-program")}, target, time.Minute)
	expect(t, res, vigil.ValidationFailed, "cannot start vigil-no-such-program: executable file not found in $PATH")
}
