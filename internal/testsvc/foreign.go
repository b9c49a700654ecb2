package testsvc

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Fingerprint is every entry under dir with its mode, size, modification
// time and, for a file, its SHA-256: what a test compares before and after
// vigil read a repository another tool wrote, to show that vigil wrote,
// locked and changed nothing in it.
func Fingerprint(t testing.TB, dir string) map[string]string {
	t.Helper()
	fp := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		entry := fmt.Sprintf("%v %d %v", info.Mode(), info.Size(), info.ModTime().UnixNano())
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entry += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		fp[rel] = entry
		return nil
	})
	if err != nil {
		t.Fatalf("fingerprint %s: %v", dir, err)
	}
	return fp
}

// SameFingerprint fails t for each entry added, removed or changed
// between two fingerprints of a repository.
func SameFingerprint(t testing.TB, before, after map[string]string) {
	t.Helper()
	for name, was := range before {
		if now, ok := after[name]; !ok {
			t.Errorf("%s was removed from the repository", name)
		} else if now != was {
			t.Errorf("%s changed in the repository: %s, was %s", name, now, was)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s was added to the repository", name)
		}
	}
}

var (
	kopiaOnce sync.Once
	kopiaPath string
	kopiaErr  error
)

// Kopia returns the stock kopia CLI, built once per test binary from the
// kopia module vigil links (go build github.com/kopia/kopia), so that tests
// make repositories the way a team using kopia would, with kopia's own
// defaults rather than vigil's.
func Kopia(t testing.TB) string {
	t.Helper()
	kopiaOnce.Do(func() {
		gomod, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "env", "GOMOD").Output()
		if err != nil {
			kopiaErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "vigil-kopia-cli-")
		if err != nil {
			kopiaErr = err
			return
		}
		kopiaPath = filepath.Join(dir, "kopia")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", kopiaPath, "github.com/kopia/kopia")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		if out, err := cmd.CombinedOutput(); err != nil {
			kopiaErr = fmt.Errorf("%w\n%s", err, out)
		}
	})
	if kopiaErr != nil {
		t.Fatalf("build the stock kopia CLI (go build github.com/kopia/kopia): %v", kopiaErr)
	}
	return kopiaPath
}

// RemoveKopia removes the kopia CLI that Kopia built, if it did: a test
// binary's TestMain calls it after the tests.
func RemoveKopia() {
	if kopiaPath != "" {
		os.RemoveAll(filepath.Dir(kopiaPath))
	}
}
