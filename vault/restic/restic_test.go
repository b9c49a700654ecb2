package restic

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/testsvc"
)

const password = "correct horse"

// newRepo makes a restic repository with the real restic CLI and backs up
// a folder of a few files into it twice (the second time with one more
// file), as a team using restic would have. It returns the repository's
// folder, the backed-up folder and the restic binary.
func newRepo(t *testing.T) (repo, src, bin string) {
	t.Helper()
	bin = testsvc.Restic(t)
	dir := t.TempDir()
	repo = filepath.Join(dir, "repo")
	src = filepath.Join(dir, "srv", "webapp")

	files := map[string]string{
		"index.html":      "<h1>Welcome</h1>\n",
		"static/app.js":   strings.Repeat("console.log('vigil');\n", 5000),
		"data/notes.txt":  "the data people cannot lose\n",
		"data/empty.conf": "",
	}
	for name, content := range files {
		p := filepath.Join(src, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
	}

	restic(t, bin, repo, "", "init")
	restic(t, bin, repo, "", "backup", "--tag", "web", "--host", "prod-1", src)
	must(t, os.WriteFile(filepath.Join(src, "data", "later.txt"), []byte("written after the first backup\n"), 0o600))
	restic(t, bin, repo, "", "backup", "--tag", "web", "--host", "prod-1", src)

	return repo, src, bin
}

func restic(t *testing.T, bin, repo, cwd string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--repo", repo, "--quiet", "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+password)
	cmd.Dir = cwd
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fingerprint is every file under dir with its mode, size and SHA-256,
// to show that nothing in a repository changed.
func fingerprint(t *testing.T, dir string) map[string]string {
	t.Helper()
	fp := map[string]string{}
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
	}))
	return fp
}

func sameFingerprint(t *testing.T, before, after map[string]string) {
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

// TestReadsAResticRepositoryWithoutWritingIt opens a repository the restic
// CLI made, lists its snapshots, restores the latest one's folder and
// checks it with restic's full read-back, and then finds every file of
// the repository as it was: same names, modes, times and bytes, no lock.
func TestReadsAResticRepositoryWithoutWritingIt(t *testing.T) {
	repo, src, bin := newRepo(t)
	before := fingerprint(t, repo)
	ctx := context.Background()

	r, err := Open(ctx, Config{Repository: repo, Password: password, Binary: bin, CacheDir: filepath.Join(t.TempDir(), "cache")})
	must(t, err)

	snaps, err := r.Snapshots(ctx)
	must(t, err)
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2: %+v", len(snaps), snaps)
	}
	latest := snaps[1]
	if !snaps[0].Time.Before(latest.Time) {
		t.Errorf("snapshots not oldest first: %v then %v", snaps[0].Time, latest.Time)
	}
	if latest.Hostname != "prod-1" || len(latest.Tags) != 1 || latest.Tags[0] != "web" || len(latest.Paths) != 1 || latest.Paths[0] != src {
		t.Errorf("latest snapshot %+v, want host prod-1, tag web, path %s", latest, src)
	}
	if latest.Files() != 5 || latest.Bytes() == 0 {
		t.Errorf("latest snapshot counts %d files, %d bytes; want 5 files", latest.Files(), latest.Bytes())
	}

	root, err := r.Root(ctx, latest)
	must(t, err)
	if root != src {
		t.Errorf("root %q, want %q (an absolute path is kept as it is)", root, src)
	}

	target := filepath.Join(t.TempDir(), "copy")
	res, err := r.Restore(ctx, latest.ID, root, target, RestoreOptions{Verify: true})
	must(t, err)
	// restic counts the folders it restored with the files: 5 + static, data
	if res.Files != 7 {
		t.Errorf("restored %d entries, want 7", res.Files)
	}
	for _, name := range []string{"index.html", "static/app.js", "data/notes.txt", "data/empty.conf", "data/later.txt"} {
		want, err := os.ReadFile(filepath.Join(src, name))
		must(t, err)
		got, err := os.ReadFile(filepath.Join(target, name))
		if err != nil || string(got) != string(want) {
			t.Errorf("restored %s: %d bytes, %v; want the source's %d", name, len(got), err, len(want))
		}
	}
	if fi, err := os.Stat(filepath.Join(target, "data", "later.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored data/later.txt mode %v, %v; want 0600", fi.Mode(), err)
	}

	must(t, r.Check(ctx, "100%"))

	sameFingerprint(t, before, fingerprint(t, repo))
	if locks, _ := os.ReadDir(filepath.Join(repo, "locks")); len(locks) != 0 {
		t.Errorf("%d locks left in the repository", len(locks))
	}
}

// TestRootOfARelativeBackup finds the folder of a snapshot that restic
// took of a relative path, which it keeps below the tree's root at the
// relative path, not at the absolute one it records.
func TestRootOfARelativeBackup(t *testing.T) {
	bin := testsvc.Restic(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, os.MkdirAll(filepath.Join(dir, "work", "site"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "work", "site", "a.txt"), []byte("a\n"), 0o644))
	restic(t, bin, repo, "", "init")
	restic(t, bin, repo, filepath.Join(dir, "work"), "backup", "site")

	ctx := context.Background()
	r, err := Open(ctx, Config{Repository: repo, Password: password, Binary: bin})
	must(t, err)
	snaps, err := r.Snapshots(ctx)
	must(t, err)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots, want 1", len(snaps))
	}
	root, err := r.Root(ctx, snaps[0])
	must(t, err)
	if root != "/site" {
		t.Fatalf("root %q of a backup of the relative path site (recorded as %v), want /site", root, snaps[0].Paths)
	}
	target := filepath.Join(t.TempDir(), "copy")
	_, err = r.Restore(ctx, snaps[0].ID, root, target, RestoreOptions{})
	must(t, err)
	if got, err := os.ReadFile(filepath.Join(target, "a.txt")); err != nil || string(got) != "a\n" {
		t.Fatalf("restored a.txt: %q, %v", got, err)
	}
}

// TestDamagedPackFails flips bytes in every data pack of a repository:
// restic's check, reading the data back, and a restore both fail, and the
// errors say what is damaged.
func TestDamagedPackFails(t *testing.T) {
	repo, src, bin := newRepo(t)
	ctx := context.Background()
	r, err := Open(ctx, Config{Repository: repo, Password: password, Binary: bin})
	must(t, err)
	snaps, err := r.Snapshots(ctx)
	must(t, err)
	root, err := r.Root(ctx, snaps[1])
	must(t, err)

	// a structure-only check reads no file data: it passes
	must(t, r.Check(ctx, ""))

	var packs []string
	must(t, filepath.WalkDir(filepath.Join(repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			packs = append(packs, p)
		}
		return err
	}))
	if len(packs) == 0 {
		t.Fatal("no pack files in the repository")
	}
	for _, p := range packs {
		data, err := os.ReadFile(p)
		must(t, err)
		for i := 0; i < len(data)/2; i += 97 {
			data[i] ^= 0xff
		}
		must(t, os.Chmod(p, 0o644))
		must(t, os.WriteFile(p, data, 0o644))
	}

	err = r.Check(ctx, "100%")
	if err == nil {
		t.Fatal("check passed with every pack damaged")
	}
	name := filepath.Base(packs[0])
	if !strings.Contains(err.Error(), name[:8]) {
		t.Errorf("check error does not name the damaged pack %s: %v", name, err)
	}

	_, err = r.Restore(ctx, snaps[1].ID, root, filepath.Join(t.TempDir(), "copy"), RestoreOptions{})
	if err == nil {
		t.Fatalf("restore of %s passed with every pack damaged", src)
	}
	// the folder listings are damaged too: the error names the folder
	if !strings.Contains(err.Error(), "path tmp/") {
		t.Errorf("restore error names no folder: %v", err)
	}
}

// TestDamagedDataPackNamesTheFile damages only the packs of file data, as
// a failing disk may: the folder listings read, so the restore fails
// naming the file it could not restore.
func TestDamagedDataPackNamesTheFile(t *testing.T) {
	repo, _, bin := newRepo(t)
	ctx := context.Background()
	r, err := Open(ctx, Config{Repository: repo, Password: password, Binary: bin})
	must(t, err)
	snaps, err := r.Snapshots(ctx)
	must(t, err)
	root, err := r.Root(ctx, snaps[1])
	must(t, err)
	for _, p := range testsvc.ResticDataPacks(t, bin, repo, password) {
		testsvc.DamageFile(t, p)
	}
	_, err = r.Restore(ctx, snaps[1].ID, root, filepath.Join(t.TempDir(), "copy"), RestoreOptions{Verify: true})
	if err == nil {
		t.Fatal("restore passed with every data pack damaged")
	}
	named := false
	for _, f := range []string{"index.html", "static/app.js", "data/notes.txt", "data/later.txt"} {
		named = named || strings.Contains(err.Error(), f)
	}
	if !named {
		t.Errorf("restore error names no file: %v", err)
	}
}

// TestOpenErrors: a wrong password, a folder with no repository and a
// missing restic each say what is wrong and what to do.
func TestOpenErrors(t *testing.T) {
	repo, _, bin := newRepo(t)
	ctx := context.Background()

	_, err := Open(ctx, Config{Repository: repo, Password: "wrong", Binary: bin})
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "password_env") {
		t.Errorf("wrong password: %v", err)
	}

	_, err = Open(ctx, Config{Repository: t.TempDir(), Password: password, Binary: bin})
	if !errors.Is(err, ErrNoRepository) || !strings.Contains(err.Error(), "repository location") {
		t.Errorf("no repository: %v", err)
	}

	_, err = Open(ctx, Config{Repository: repo, Password: password, Binary: filepath.Join(t.TempDir(), "restic")})
	if err == nil || !strings.Contains(err.Error(), "go install github.com/restic/restic/cmd/restic@v0.18.1") {
		t.Errorf("missing restic: %v", err)
	}

	r := &Repo{cfg: Config{Repository: repo, Password: password, Binary: bin}}
	for _, cmd := range []string{"backup", "forget", "prune", "unlock", "init", "key", "tag", "rewrite", "repair"} {
		if _, err := r.run(ctx, cmd); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("restic %s was not refused: %v", cmd, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
