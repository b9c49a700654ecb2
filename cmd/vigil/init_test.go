package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// runIn runs vigil in dir, with no VIGIL_ variable and no terminal on
// standard input, as a script would.
func runIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vigilBin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VIGIL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run vigil %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// TestInitToFirstProvenBackup follows the getting-started page: 'vigil
// init' writes a config that, unedited, passes 'vigil config check',
// serves, backs up with --wait, and restore-tests that backup by itself,
// SUCCESSFUL, its copy deleted.
func TestInitToFirstProvenBackup(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	makeTree(t, filepath.Join(root, "docs"))
	listen := freeAddr(t)
	r := runIn(t, root, "init", "--dir", "vigil", "--path", "docs", "--listen", listen)
	if r.code != 0 {
		t.Fatalf("vigil init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dir := filepath.Join(root, "vigil")
	for _, want := range []string{filepath.Join(dir, "vigil.yaml"), filepath.Join(dir, "vault-password"), "cd " + dir, "vigil serve", "vigil backup start --resource docs --vault local --wait"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("vigil init does not say %q:\n%s", want, r.stdout)
		}
	}

	// The commands init prints, run in the folder it names.
	if r := runIn(t, dir, "config", "check"); r.code != 0 || !strings.Contains(r.stdout, "no problems found") {
		t.Fatalf("vigil config check of the config init wrote: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e := &testEnv{t: t, dir: dir, config: filepath.Join(dir, "vigil.yaml"), listen: listen}
	e.serve()
	var job vigil.BackupJob
	if err := jsonOf(runIn(t, dir, "backup", "start", "--resource", "docs", "--vault", "local", "--wait", "--json"), &job); err != nil {
		t.Fatalf("vigil backup start --wait: %v\nserver log:\n%s", err, e.serverLog)
	}
	if job.Status != vigil.BackupCompleted {
		t.Fatalf("backup %s ended %s: %s", job.ID, job.Status, job.StatusMessage)
	}
	test := e.waitTest(e.testOf(job.RecoveryPointID).ID)
	if test.ValidationStatus != vigil.ValidationSuccessful || test.DeletionStatus != vigil.DeletionSuccessful {
		t.Fatalf("the restore test of the first backup: validation %s (%s), deletion %s (%s)\n%s",
			test.ValidationStatus, test.ValidationMessage, test.DeletionStatus, test.DeletionMessage, e.logText(test.ID))
	}
	if r := runIn(t, dir, "jobs", "list", "--type", "restore"); !strings.Contains(r.stdout, "SUCCESSFUL") {
		t.Errorf("vigil jobs list --type restore does not show the SUCCESSFUL test:\n%s%s", r.stdout, r.stderr)
	}
	e.stop()
}

// jsonOf decodes the output of a command that must have exited 0.
func jsonOf(r result, v any) error {
	if r.code != 0 {
		return errors.New("exit " + strings.TrimSpace(r.stderr))
	}
	return json.Unmarshal([]byte(r.stdout), v)
}

// TestInitRefusals: off a terminal, init without --path says what to
// pass; over an existing file it refuses naming it and leaves it as it
// was.
func TestInitRefusals(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "docs"), 0o755)
	r := runIn(t, root, "init")
	if r.code != 2 || !strings.Contains(r.stderr, "pass --path FOLDER") {
		t.Errorf("vigil init without --path: exit %d, stderr %q; want 2 saying to pass --path", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "vigil.yaml")); err == nil {
		t.Errorf("vigil init without --path wrote vigil.yaml")
	}

	if err := os.WriteFile(filepath.Join(root, "vigil.yaml"), []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, root, "init", "--path", "docs")
	if r.code != 1 || !strings.Contains(r.stderr, filepath.Join(root, "vigil.yaml")+" exists already") {
		t.Errorf("vigil init over vigil.yaml: exit %d, stderr %q; want 1 naming the file", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "vigil.yaml")); string(b) != "# mine\n" {
		t.Errorf("vigil init changed vigil.yaml: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, "vault-password")); err == nil {
		t.Errorf("vigil init refused but wrote vault-password")
	}
}

// TestInitOnATerminal: on a terminal (a pseudo-terminal that util-linux's
// script(1) gives it), init asks for the folder to back up and where to
// write, each with a default, and Enter three times writes a config that
// passes 'vigil config check'; the vault is put next to the folder, not
// inside it.
func TestInitOnATerminal(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("this test needs script(1) from util-linux for a terminal: %v", err)
	}
	root := t.TempDir()
	photos := filepath.Join(root, "photos")
	os.Mkdir(photos, 0o755)
	cmd := exec.Command("script", "-qec", "'"+vigilBin+"' init", "/dev/null")
	cmd.Dir = photos
	cmd.Stdin = strings.NewReader("\n\n\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vigil init on a terminal: %v\n%s", err, out)
	}
	for _, want := range []string{"Folder to back up [" + photos + "]: ", "Folder for vigil.yaml, the vault and the catalog [" + photos + "-vigil]: ", "Wrote " + filepath.Join(photos+"-vigil", "vigil.yaml")} {
		if !strings.Contains(string(out), want) {
			t.Errorf("vigil init on a terminal does not say %q:\n%s", want, out)
		}
	}
	if r := runIn(t, photos+"-vigil", "config", "check"); r.code != 0 || !strings.Contains(r.stdout, "no problems found") {
		t.Errorf("vigil config check of what init wrote on a terminal: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
