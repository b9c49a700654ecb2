package testsvc

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Restic returns the path of the restic program the foreign-vault tests
// make repositories with and read them through: on PATH, else where `go
// install` puts it (.ci/run installs restic 0.18.1 there).
func Restic(t testing.TB) string {
	t.Helper()
	bin, err := binary("restic")
	if err != nil {
		t.Fatalf("restic is needed to make and read restic repositories (%v): "+
			"go install github.com/restic/restic/cmd/restic@v0.18.1", err)
	}
	return bin
}

// ResticDataPacks lists the pack files of a restic repository in a folder
// that hold file data only (no folder listings), read from its index with
// the restic CLI: damaging them leaves every snapshot's listing readable,
// so what fails is the restore of the files whose data they hold.
func ResticDataPacks(t testing.TB, bin, repo, password string) []string {
	t.Helper()
	resticCLI := func(args ...string) []byte {
		cmd := exec.Command(bin, append([]string{"--repo", repo, "--no-cache", "--no-lock"}, args...)...)
		cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+password)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("restic %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	var packs []string
	for _, index := range strings.Fields(string(resticCLI("list", "index"))) {
		type blob struct {
			Type string `json:"type"`
		}
		var idx struct {
			Packs []struct {
				ID    string `json:"id"`
				Blobs []blob `json:"blobs"`
			} `json:"packs"`
		}
		if err := json.Unmarshal(resticCLI("cat", "index", index), &idx); err != nil {
			t.Fatalf("restic cat index %s: %v", index, err)
		}
		for _, p := range idx.Packs {
			if !slices.ContainsFunc(p.Blobs, func(b blob) bool { return b.Type != "data" }) {
				packs = append(packs, filepath.Join(repo, "data", p.ID[:2], p.ID))
			}
		}
	}
	if len(packs) == 0 {
		t.Fatalf("restic repository %s has no pack of file data only", repo)
	}
	return packs
}

// DamageFile inverts every 16th byte of a file, as a failing disk would.
func DamageFile(t testing.TB, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(data); i += 16 {
		data[i] ^= 0xff
	}
	// restic and kopia write their files read-only
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
