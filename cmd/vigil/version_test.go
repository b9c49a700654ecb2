package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersion: 'vigil --version' and 'vigil version' print the same lines;
// a binary built from a git checkout names a pseudo-version and its
// commit, the commit's time and whether the checkout had changes, from
// Go's build information.
//
// The test binary of TestMain may be built from a git worktree, which Go
// does not stamp (it looks for a .git folder), so this test builds vigil
// again from a plain checkout of the source: the working tree's files,
// committed into a new repository.
func TestVersion(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a, b := runIn(t, root, "--version"), runIn(t, root, "version")
	if a.code != 0 || a.stdout != b.stdout || !strings.HasPrefix(a.stdout, "vigil ") || !strings.Contains(a.stdout, "\ngo       go1.") {
		t.Errorf("vigil --version: exit %d %q\nvigil version: exit %d %q", a.code, a.stdout, b.code, b.stdout)
	}

	src := filepath.Join(root, "src")
	files, err := exec.Command("git", "-C", "../..", "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("list the source files with git (this test needs git and a checkout of vigil): %v", err)
	}
	for _, f := range strings.Fields(string(files)) {
		b, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			continue // deleted from the working tree, not yet from the index
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", src, "-c", "user.name=vigil test", "-c", "user.email=test@vigil.invalid"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "checkout")
	commit := git("rev-parse", "HEAD")

	built := func() string {
		t.Helper()
		bin := filepath.Join(root, "vigil")
		build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/vigil")
		build.Dir = src
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build from the checkout: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("vigil version: %v", err)
		}
		return string(out)
	}
	out := built()
	// Go (1.24 and later) gives a build from a checkout a pseudo-version
	// with the commit's time and hash, "+dirty" when it has changes.
	for _, want := range []string{"vigil v0.0.0-", "-" + commit[:12] + "\n", "commit   " + commit + "\n", "\ntime     20", "\nmodified false\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("vigil version, built from a clean checkout, does not say %q:\n%s", want, out)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "cmd/vigil/main.go"), []byte(strings.Replace(mustRead(t, filepath.Join(src, "cmd/vigil/main.go")), "package main", "package main // changed", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := built(); !strings.Contains(out, "commit   "+commit+"\n") || !strings.Contains(out, "\nmodified true") || !strings.Contains(out, commit[:12]+"+dirty\n") {
		t.Errorf("vigil version, built from a changed checkout, does not name the commit and say modified true:\n%s", out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
