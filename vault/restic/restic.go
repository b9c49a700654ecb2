// Package restic reads restic repositories, which vigil restore-tests but
// never writes: a foreign vault of `kind: restic`.
//
// restic has no Go library (its code is internal), so this package drives
// a restic binary (0.17 or later, for --json summaries; 0.18.1 is what the
// tests run) and parses its --json output. Read-only is enforced here, not
// left to the caller:
//
//   - only commands that read are ever run (snapshots, ls, restore, dump,
//     check, cat config, version), from a fixed list;
//   - every one of them gets --no-lock, so a repository on a read-only
//     mount or behind a read-only key works, and vigil never leaves a
//     lock in someone else's repository, even when it is killed;
//   - restic's local cache goes into vigil's own data folder (or is off),
//     never into the repository.
package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Config says where a restic repository is and how to open it.
type Config struct {
	// Repository is what restic's -r takes: a folder, s3:…, sftp:…, rest:….
	Repository string
	Password   string
	// Binary is the restic program; "restic" (found on PATH) when empty.
	Binary string
	// CacheDir holds restic's local cache of the repository's metadata;
	// with none, restic runs with --no-cache.
	CacheDir string
	// Env is added to the minimal environment restic runs with, as
	// NAME=value: the S3 keys (AWS_ACCESS_KEY_ID, …) for an s3: repository.
	Env []string
}

// Repo is an opened restic repository.
type Repo struct {
	cfg Config
}

// ErrWrongPassword is wrapped by Open's error when restic refuses the
// password (restic's exit code 12).
var ErrWrongPassword = errors.New("wrong password")

// ErrNoRepository is wrapped by Open's error when there is no restic
// repository at the location (restic's exit code 10).
var ErrNoRepository = errors.New("no restic repository")

// readOnlyCommands are the only restic commands this package runs.
var readOnlyCommands = []string{"snapshots", "ls", "restore", "dump", "check", "cat", "version"}

// Open checks that the restic binary runs and that the repository opens
// with the password, reading its config. Nothing is written.
func Open(ctx context.Context, cfg Config) (*Repo, error) {
	if cfg.Binary == "" {
		cfg.Binary = "restic"
	}

	if cfg.Repository == "" {
		return nil, errors.New("open restic repository: no repository given: set its location (a folder, s3:…, sftp:…)")
	}

	if _, err := exec.LookPath(cfg.Binary); err != nil {
		return nil, fmt.Errorf("open restic repository %s: restic program %q not found (%w): install restic 0.18.1 "+
			"(go install github.com/restic/restic/cmd/restic@v0.18.1) or name it in the vault's config", cfg.Repository, cfg.Binary, err)
	}

	r := &Repo{cfg: cfg}

	if _, err := r.run(ctx, "cat", "config"); err != nil {
		return nil, fmt.Errorf("open restic repository %s: %w", cfg.Repository, err)
	}

	return r, nil
}

// Snapshot is one restic snapshot, as `restic snapshots --json` gives it.
type Snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags"`
	// Summary is written by restic 0.17 and later; nil for older snapshots.
	Summary *struct {
		BackupStart time.Time `json:"backup_start"`
		BackupEnd   time.Time `json:"backup_end"`
		Files       int64     `json:"total_files_processed"`
		Bytes       int64     `json:"total_bytes_processed"`
	} `json:"summary"`
}

// Files and Bytes are what the snapshot's backup processed, 0 when the
// snapshot has no summary.
func (s Snapshot) Files() int64 {
	if s.Summary == nil {
		return 0
	}

	return s.Summary.Files
}

func (s Snapshot) Bytes() int64 {
	if s.Summary == nil {
		return 0
	}

	return s.Summary.Bytes
}

// Snapshots lists the repository's snapshots, oldest first.
func (r *Repo) Snapshots(ctx context.Context) ([]Snapshot, error) {
	out, err := r.run(ctx, "snapshots")
	if err != nil {
		return nil, fmt.Errorf("list snapshots of restic repository %s: %w", r.cfg.Repository, err)
	}

	var snaps []Snapshot
	if err := json.Unmarshal(out, &snaps); err != nil {
		return nil, fmt.Errorf("list snapshots of restic repository %s: restic printed what is not its JSON (%w): is %s restic 0.17 or later?",
			r.cfg.Repository, err, r.cfg.Binary)
	}

	slices.SortStableFunc(snaps, func(a, b Snapshot) int { return a.Time.Compare(b.Time) })

	return snaps, nil
}

// Node is one entry of a snapshot, as `restic ls --json` gives it.
type Node struct {
	Name  string    `json:"name"`
	Type  string    `json:"type"` // file, dir, symlink, …
	Path  string    `json:"path"`
	Size  int64     `json:"size"`
	Mode  uint32    `json:"mode"`
	MTime time.Time `json:"mtime"`
}

// List returns every entry of the snapshot id, in restic's order.
func (r *Repo) List(ctx context.Context, id string) ([]Node, error) {
	out, err := r.run(ctx, "ls", id)
	if err != nil {
		return nil, fmt.Errorf("list snapshot %s of restic repository %s: %w", id, r.cfg.Repository, err)
	}

	var nodes []Node

	for line := range bytes.Lines(out) {
		var n struct {
			Node
			StructType string `json:"struct_type"`
		}

		if err := json.Unmarshal(line, &n); err != nil {
			return nil, fmt.Errorf("list snapshot %s: restic printed what is not its JSON: %w", id, err)
		}

		if n.StructType == "node" {
			nodes = append(nodes, n.Node)
		}
	}

	return nodes, nil
}

// Root returns the folder inside snapshot s that holds what was backed up
// from its one path: restic keeps a folder given as an absolute path at
// that path and one given relative to where restic ran at the relative
// path, so the folder is the longest tail of s.Paths[0] that the snapshot
// has as a folder.
func (r *Repo) Root(ctx context.Context, s Snapshot) (string, error) {
	if len(s.Paths) != 1 {
		return "", fmt.Errorf("snapshot %s of restic repository %s backs up %d paths (%s): vigil restore-tests a snapshot of one folder; "+
			"name the folder to test in the resource's source path", s.ShortID, r.cfg.Repository, len(s.Paths), strings.Join(s.Paths, ", "))
	}

	nodes, err := r.List(ctx, s.ID)
	if err != nil {
		return "", err
	}

	dirs := make(map[string]bool)
	for _, n := range nodes {
		if n.Type == "dir" {
			dirs[n.Path] = true
		}
	}

	p := path.Clean("/" + s.Paths[0])
	for tail := p; tail != "/"; {
		if dirs[tail] {
			return tail, nil
		}

		// drop the first element: /tmp/rt/src → /rt/src
		i := strings.IndexByte(tail[1:], '/')
		if i < 0 {
			break
		}

		tail = tail[1+i:]
	}

	return "", fmt.Errorf("snapshot %s of restic repository %s has no folder for its path %s", s.ShortID, r.cfg.Repository, s.Paths[0])
}

// RestoreResult is restic's summary of a restore. Files counts every
// entry restic restored, folders below the restored one included.
type RestoreResult struct {
	Files int64 `json:"files_restored"`
	Bytes int64 `json:"bytes_restored"`
}

// RestoreOptions are how Restore restores.
type RestoreOptions struct {
	// Verify has restic read back every file it wrote and check its
	// content against the snapshot (restic's --verify).
	Verify bool
}

// Restore restores folder dir of snapshot id (a path inside the snapshot,
// as Root returns it; "/" for all) into target, which must not exist yet
// or be empty. restic verifies every blob's hash as it reads it, so a
// damaged pack fails the restore, naming the file.
func (r *Repo) Restore(ctx context.Context, id, dir, target string, opts RestoreOptions) (RestoreResult, error) {
	args := []string{"restore", id + ":" + dir, "--target", target}
	if opts.Verify {
		args = append(args, "--verify")
	}
	out, err := r.run(ctx, args...)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore %s:%s of restic repository %s: %w", id, dir, r.cfg.Repository, err)
	}

	var res RestoreResult

	for line := range bytes.Lines(out) {
		var m struct {
			MessageType string `json:"message_type"`
			RestoreResult
		}

		if json.Unmarshal(line, &m) == nil && m.MessageType == "summary" {
			res = m.RestoreResult
		}
	}

	return res, nil
}

// Check runs restic's check, reading back subset of the pack files
// (restic's --read-data-subset: "10%", "1/5", "500M"; "" reads none, only
// the structure), and returns an error naming what is damaged.
func (r *Repo) Check(ctx context.Context, subset string) error {
	args := []string{"check"}
	if subset != "" {
		args = append(args, "--read-data-subset="+subset)
	}

	if _, err := r.run(ctx, args...); err != nil {
		return fmt.Errorf("check restic repository %s: %w", r.cfg.Repository, err)
	}

	return nil
}

// run runs one read-only restic command with --json and --no-lock and
// returns its standard output. A failure carries restic's own message.
func (r *Repo) run(ctx context.Context, args ...string) ([]byte, error) {
	if len(args) == 0 || !slices.Contains(readOnlyCommands, args[0]) {
		return nil, fmt.Errorf("restic command %q is not one that only reads: refused", strings.Join(args, " "))
	}

	full := append([]string{"--repo", r.cfg.Repository, "--json", "--no-lock", "--quiet"}, args...)
	if r.cfg.CacheDir != "" {
		full = append(full, "--cache-dir", r.cfg.CacheDir)
	} else {
		full = append(full, "--no-cache")
	}

	cmd := exec.CommandContext(ctx, r.cfg.Binary, full...) //nolint:gosec // the binary is the configured restic
	cmd.Env = r.env()
	cmd.WaitDelay = 5 * time.Second
	// restic dies with vigil: a restore left running by a killed vigil
	// would go on writing into a copy that the next start deletes. The
	// signal follows the thread that started restic, so this goroutine
	// keeps that thread until restic has ended.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}

	if ctx.Err() != nil {
		return nil, ctx.Err() //nolint:wrapcheck
	}

	return nil, resticError(err, stdout.Bytes(), stderr.Bytes())
}

// env is the environment restic runs with: no more of vigil's than it
// needs, so no other secret of vigil's reaches it.
func (r *Repo) env() []string {
	env := []string{"RESTIC_PASSWORD=" + r.cfg.Password}

	for _, name := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}

	return append(env, r.cfg.Env...)
}

// resticError words a failed restic run: its exit code's meaning where
// restic documents one, and the messages it printed.
func resticError(err error, stdout, stderr []byte) error {
	var msgs []string

	// with --json, restic reports its fatal error as a JSON line
	for _, out := range [][]byte{stderr, stdout} {
		for line := range bytes.Lines(out) {
			var m struct {
				MessageType string `json:"message_type"`
				Message     string `json:"message"`
				Error       struct {
					Message string `json:"message"`
				} `json:"error"`
				During string `json:"during"`
				Item   string `json:"item"`
			}

			switch {
			case json.Unmarshal(line, &m) != nil:
				if s := strings.TrimSpace(string(line)); s != "" {
					msgs = append(msgs, s)
				}
			case m.Message != "":
				msgs = append(msgs, m.Message)
			case m.Error.Message != "" && m.Item != "":
				msgs = append(msgs, m.Item+": "+m.Error.Message)
			case m.Error.Message != "":
				msgs = append(msgs, m.Error.Message)
			}
		}
	}

	text := strings.Join(msgs, "; ")
	if text == "" {
		text = err.Error()
	}

	var exit *exec.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case 10:
			return fmt.Errorf("%w: %s: check the vault's repository location", ErrNoRepository, text)
		case 12:
			return fmt.Errorf("%w: %s: check the vault's password_env or password_file", ErrWrongPassword, text)
		}
	}

	return fmt.Errorf("restic failed: %s", text)
}
