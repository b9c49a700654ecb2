package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// quickStart returns the shell blocks of the README's Quick start, each as
// its command lines (comments and blank lines dropped).
func quickStart(t *testing.T) [][]string {
	t.Helper()
	readme := string(must(os.ReadFile("../../README.md")))
	_, section, ok := strings.Cut(readme, "\n## Quick start\n")
	if !ok {
		t.Fatal("the README has no Quick start section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks [][]string
	for {
		_, rest, ok := strings.Cut(section, "```sh\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "```")
		var lines []string
		for _, l := range strings.Split(block, "\n") {
			l, _, _ = strings.Cut(l, " #")
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		blocks = append(blocks, lines)
		section = after
	}
}

// TestREADMEQuickStart follows the README's Quick start as a person would,
// in a home folder of its own: the first block up to `./vigil serve`,
// serve left running, then the second block in another shell, and the
// restore test the backup started must be SUCCESSFUL with its copy
// deleted. The one change to the commands: `vigil init` gets `--listen`
// with a free port, as 8420 may be taken on a machine running tests.
func TestREADMEQuickStart(t *testing.T) {
	t.Parallel()
	blocks := quickStart(t)
	if len(blocks) != 2 {
		t.Fatalf("the Quick start has %d shell blocks, want 2 (set up and serve; back up and look): %q", len(blocks), blocks)
	}
	setup, look := blocks[0], blocks[1]
	if setup[len(setup)-1] != "./vigil serve" {
		t.Fatalf("the Quick start's first block ends with %q, want ./vigil serve", setup[len(setup)-1])
	}
	home := t.TempDir()
	listen := freeAddr(t)
	env := []string{"HOME=" + home}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VIGIL_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	// Go's caches stay where they are, not under the new home: the build
	// is the one TestMain made, not a cold one.
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", v, err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	repo := must(filepath.Abs("../.."))
	sh := func(dir string, lines ...string) string {
		t.Helper()
		cmd := exec.Command("bash", "-euc", strings.Join(lines, "\n"))
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(lines, "; "), err, out)
		}
		return string(out)
	}

	var steps []string
	for _, l := range setup[:len(setup)-1] {
		if strings.HasPrefix(l, "./vigil init ") {
			l += " --listen " + listen
		}
		steps = append(steps, l)
	}
	out := sh(repo, steps...)
	lab := filepath.Join(home, "vigil-lab")
	if !strings.Contains(out, "no problems found") {
		t.Errorf("config check after vigil init did not pass:\n%s", out)
	}

	serve := exec.Command("./vigil", "serve")
	serve.Dir, serve.Env = lab, env
	var serveLog bytes.Buffer
	serve.Stdout, serve.Stderr = &serveLog, &serveLog
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-serve.Process.Pid, syscall.SIGTERM)
		serve.Wait()
	})
	waitFor(t, 30*time.Second, "vigil serve to answer", func() bool {
		resp, err := http.Get("http://" + listen + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// The second shell: the backup, then, once its restore test has
	// ended (a person reads the first output first), the list.
	if len(look) < 3 || !strings.HasPrefix(look[1], "./vigil backup start ") || !strings.HasPrefix(look[2], "./vigil jobs list") {
		t.Fatalf("the Quick start's second block is %q, want cd, a backup and the jobs list", look)
	}
	sh(home, look[0], look[1])
	var tests []vigil.RestoreJob
	waitFor(t, time.Minute, "the backup's restore test to end", func() bool {
		tests = nil
		out := sh(lab, "./vigil jobs list --type restore --json")
		if err := json.Unmarshal([]byte(out), &tests); err != nil {
			t.Fatalf("jobs list --json: %v\n%s", err, out)
		}
		return len(tests) == 1 && tests[0].Ended()
	})
	if tests[0].ValidationStatus != vigil.ValidationSuccessful || tests[0].DeletionStatus != vigil.DeletionSuccessful {
		t.Fatalf("the Quick start's restore test: %s, deletion %s: %s\nserver log:\n%s", tests[0].ValidationStatus, tests[0].DeletionStatus, tests[0].ValidationMessage, serveLog.String())
	}
	if out := sh(home, append([]string{look[0]}, look[2:]...)...); strings.Count(out, "SUCCESSFUL") < 2 {
		t.Errorf("the Quick start's jobs list does not show the test SUCCESSFUL and its copy deleted:\n%s", out)
	}
}
