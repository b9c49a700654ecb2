package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/testsvc"
)

// vigilBin is the binary under test, built once by TestMain.
var vigilBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vigilBin = filepath.Join(dir, "vigil")
	args := []string{"build", "-o", vigilBin}
	if os.Getenv("VIGIL_TEST_RACE") != "" {
		// The binary under test reports data races, and exits 66 at the
		// end if it saw one, which fails the test that stops it.
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build vigil:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	testsvc.RemoveKopia()
	os.Exit(code)
}

// testEnv is one vigil installation: a folder with a config, a data dir and
// vaults, and possibly a running server.
type testEnv struct {
	t         *testing.T
	dir       string
	config    string
	password  string
	listen    string
	server    *exec.Cmd
	serverLog *bytes.Buffer
	// env is added to the environment of every vigil command.
	env []string
}

type envOptions struct {
	catalog string // "" for SQLite
	extra   string // more YAML appended to the config
}

func newEnv(t *testing.T, opts envOptions) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, password: "correct horse battery staple " + filepath.Base(dir), listen: freeAddr(t)}
	e.config = filepath.Join(dir, "vigil.yaml")
	catalog := ""
	if opts.catalog != "" {
		catalog = fmt.Sprintf("catalog: %q\n", opts.catalog)
	}
	cfg := fmt.Sprintf(`server:
  listen: %s
data_dir: ./vigil-data
%svaults:
  - name: lab-vault
    storage: ./vaults/lab-vault
    password_env: VIGIL_VAULT_PASSWORD
resources:
  - name: docs
    type: directory
    path: ./docs
  - name: missing
    type: directory
    path: ./no-such-folder
%s`, e.listen, catalog, opts.extra)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (e *testEnv) path(p string) string { return filepath.Join(e.dir, p) }

func (e *testEnv) environ() []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VIGIL_") {
			env = append(env, kv)
		}
	}
	env = append(env, "VIGIL_CONFIG="+e.config, "VIGIL_VAULT_PASSWORD="+e.password)
	return append(env, e.env...)
}

// serve starts `vigil serve` with args and waits until it answers.
func (e *testEnv) serve(args ...string) {
	e.t.Helper()
	e.startServer(args...)
	e.waitServing(30 * time.Second)
}

// startServer starts `vigil serve` without waiting for it to answer.
func (e *testEnv) startServer(args ...string) {
	e.t.Helper()
	cmd := exec.Command(vigilBin, append([]string{"serve"}, args...)...)
	cmd.Env = e.environ()
	e.serverLog = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = e.serverLog, e.serverLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.server = cmd
	e.t.Cleanup(func() { e.kill() })
}

// waitServing waits for the server startServer started to answer.
func (e *testEnv) waitServing(timeout time.Duration) {
	e.t.Helper()
	cmd := e.server
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + e.listen + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("vigil serve did not answer within %s; its output:\n%s", timeout, e.serverLog)
}

// serveRefused runs `vigil serve`, which must refuse to start: it returns
// its exit code and output, and fails the test if it serves.
func (e *testEnv) serveRefused() (int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vigilBin, "serve")
	cmd.Env = e.environ()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		e.t.Fatalf("vigil serve should have refused to start: %v; its output:\n%s", err, out)
	}
	return exit.ExitCode(), string(out)
}

// kill ends the server with SIGKILL, as a crash would.
func (e *testEnv) kill() {
	if e.server == nil {
		return
	}
	syscall.Kill(-e.server.Process.Pid, syscall.SIGKILL)
	e.server.Wait()
	e.server = nil
}

// stop ends the server gracefully.
func (e *testEnv) stop() {
	e.t.Helper()
	if e.server == nil {
		return
	}
	e.server.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.server.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			e.t.Errorf("vigil serve exited with %v; output:\n%s", err, e.serverLog)
		}
	case <-time.After(60 * time.Second):
		e.t.Errorf("vigil serve did not stop within 60s of SIGTERM")
		e.kill()
	}
	e.server = nil
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs a vigil client command.
func (e *testEnv) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vigilBin, args...)
	cmd.Env = e.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run vigil %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// mustRun runs a command that must exit 0.
func (e *testEnv) mustRun(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("vigil %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// mustJSON runs a command with --json and decodes its output into v.
func (e *testEnv) mustJSON(v any, args ...string) {
	e.t.Helper()
	out := e.mustRun(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("vigil %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

// filesUnder lists every file below dir with its size and mtime, to show
// that nothing changed there.
func snapshotTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		b := []byte{}
		if info.Mode().IsRegular() {
			b, _ = os.ReadFile(p)
		}
		out[p] = fmt.Sprintf("%v %d %x", info.Mode(), info.Size(), b)
		return nil
	})
	return out
}

func grepTree(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains a secret (%.6s…)", p, s)
			}
		}
		return nil
	})
}
