package restic

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func fingerprint(t *testing.T, dir string) map[string]string { return testsvc.Fingerprint(t, dir) }

func sameFingerprint(t *testing.T, before, after map[string]string) {
	t.Helper()
	testsvc.SameFingerprint(t, before, after)
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
	res, err := r.Restore(ctx, latest.ID, root, target, RestoreOptions{})
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

// TestRootOfAnEmptyFolder: a snapshot of an empty folder lists nothing
// inside it, and its folder is still found.
func TestRootOfAnEmptyFolder(t *testing.T) {
	bin := testsvc.Restic(t)
	dir := t.TempDir()
	repo, empty := filepath.Join(dir, "repo"), filepath.Join(dir, "srv", "empty")
	must(t, os.MkdirAll(empty, 0o755))
	restic(t, bin, repo, "", "init")
	restic(t, bin, repo, "", "backup", empty)
	ctx := context.Background()
	r, err := Open(ctx, Config{Repository: repo, Password: password, Binary: bin})
	must(t, err)
	snaps, err := r.Snapshots(ctx)
	must(t, err)
	root, err := r.Root(ctx, snaps[0])
	if err != nil || root != empty {
		t.Fatalf("root of a snapshot of an empty folder: %q, %v; want %s", root, err, empty)
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
	t.Logf("restore: %v", err)
}

// newTreeRepo makes a repository with the real restic CLI holding one
// snapshot of a folder with every kind of entry Compare checks: nested
// folders, a file only its owner may read, an executable, a symlink, an
// empty file and one random file of 2 MiB, whose blobs fill the one data
// pack that is not tiny. It returns the repository's folder, the
// backed-up folder and the restic binary.
func newTreeRepo(t *testing.T) (repo, src, bin string) {
	t.Helper()
	bin = testsvc.Restic(t)
	dir := t.TempDir()
	repo = filepath.Join(dir, "repo")
	src = filepath.Join(dir, "srv", "shop")

	big := make([]byte, 2<<20)
	_, err := rand.Read(big)
	must(t, err)

	files := []struct {
		name    string
		content []byte
		mode    os.FileMode
	}{
		{"index.html", []byte("<h1>Shop</h1>\n"), 0o644},
		{"run.sh", []byte("#!/bin/sh\nexec shop\n"), 0o755},
		{"config/app.yml", []byte("db: data/db/shop.db\npassword: hunter2\n"), 0o600},
		{"data/db/shop.db", big, 0o644},
		{"data/db/notes.txt", []byte("orders since Monday\n"), 0o644},
		{"logs/a.log", []byte("started\n"), 0o640},
		{"logs/b.log", nil, 0o640},
	}
	for _, f := range files {
		p := filepath.Join(src, filepath.FromSlash(f.name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, f.content, f.mode))
		must(t, os.Chmod(p, f.mode)) // past the umask
	}
	must(t, os.Symlink("app.yml", filepath.Join(src, "config", "current")))
	must(t, os.Chmod(filepath.Join(src, "logs"), 0o750))

	restic(t, bin, repo, "", "init")
	restic(t, bin, repo, "", "backup", "--host", "shop-1", src)

	return repo, src, bin
}

// openLatest opens repo and returns it with its latest snapshot and that
// snapshot's folder.
func openLatest(t *testing.T, repo, bin string) (*Repo, Snapshot, string) {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, Config{Repository: repo, Password: password, Binary: bin})
	must(t, err)
	snaps, err := r.Snapshots(ctx)
	must(t, err)
	if len(snaps) == 0 {
		t.Fatal("no snapshots in the repository")
	}
	latest := snaps[len(snaps)-1]
	root, err := r.Root(ctx, latest)
	must(t, err)
	return r, latest, root
}

// TestCompareAFreshRestoreIsClean restores a snapshot with restic's
// read-back verification and compares the copy with the snapshot's
// listing: nothing differs, the counts are the snapshot's, and the
// repository is as it was.
func TestCompareAFreshRestoreIsClean(t *testing.T) {
	repo, _, bin := newTreeRepo(t)
	before := fingerprint(t, repo)
	r, snap, root := openLatest(t, repo, bin)
	ctx := context.Background()

	target := filepath.Join(t.TempDir(), "copy")
	res, err := r.Restore(ctx, snap.ID, root, target, RestoreOptions{Verify: true})
	must(t, err)
	if !res.Verified {
		t.Errorf("restore with Verify reports no verification: %+v", res)
	}
	// 7 files, the symlink and the folders config, data, data/db, logs
	if res.Files != 12 {
		t.Errorf("restored %d entries, want 12", res.Files)
	}

	cmp, err := r.Compare(ctx, snap.ID, root, target)
	must(t, err)
	if len(cmp.Mismatches) != 0 {
		t.Errorf("a fresh restore differs from its snapshot: %q", cmp.Mismatches)
	}
	wantBytes := int64(2<<20 + len("<h1>Shop</h1>\n") + len("#!/bin/sh\nexec shop\n") +
		len("db: data/db/shop.db\npassword: hunter2\n") + len("orders since Monday\n") + len("started\n"))
	if cmp.Files != 7 || cmp.Dirs != 4 || cmp.Symlinks != 1 || cmp.Bytes != wantBytes {
		t.Errorf("compared %d files, %d folders, %d symlinks, %d bytes; want 7, 4, 1, %d",
			cmp.Files, cmp.Dirs, cmp.Symlinks, cmp.Bytes, wantBytes)
	}

	sameFingerprint(t, before, fingerprint(t, repo))
}

// TestCompareNamesEachDifference alters a verified copy in every way
// Compare checks and finds each change named by its path in the copy,
// then caps a long list.
func TestCompareNamesEachDifference(t *testing.T) {
	repo, _, bin := newTreeRepo(t)
	before := fingerprint(t, repo)
	r, snap, root := openLatest(t, repo, bin)
	ctx := context.Background()

	target := filepath.Join(t.TempDir(), "copy")
	_, err := r.Restore(ctx, snap.ID, root, target, RestoreOptions{Verify: true})
	must(t, err)

	in := func(name string) string { return filepath.Join(target, filepath.FromSlash(name)) }
	must(t, os.Remove(in("index.html")))
	notes, err := os.Lstat(in("data/db/notes.txt"))
	must(t, err)
	must(t, os.Truncate(in("data/db/notes.txt"), 6))
	must(t, os.Chtimes(in("data/db/notes.txt"), notes.ModTime(), notes.ModTime())) // only its size differs
	shop, err := os.Lstat(in("data/db/shop.db"))
	must(t, err)
	later := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, os.Chtimes(in("data/db/shop.db"), later, later)) // written after the restore
	must(t, os.Chmod(in("config/app.yml"), 0o644))
	must(t, os.Chmod(in("data"), 0o700))
	must(t, os.Remove(in("config/current")))
	must(t, os.Symlink("../index.html", in("config/current")))
	must(t, os.RemoveAll(in("logs")))
	must(t, os.Remove(in("run.sh")))
	must(t, os.Mkdir(in("run.sh"), 0o755))
	must(t, os.WriteFile(in("run.sh/inside"), []byte("x"), 0o644))
	must(t, os.WriteFile(in("stray.txt"), []byte("left behind\n"), 0o644))
	must(t, os.MkdirAll(in("tmp/cache"), 0o755))
	must(t, os.WriteFile(in("tmp/cache/x"), []byte("x"), 0o644))

	cmp, err := r.Compare(ctx, snap.ID, root, target)
	must(t, err)
	s := snap.ShortID
	want := []string{
		"config/app.yml: mode 0644 in the copy, 0600 in snapshot " + s,
		`config/current: points to "../index.html" in the copy, to "app.yml" in snapshot ` + s,
		"data: mode 0700 in the copy, 0755 in snapshot " + s,
		"data/db/notes.txt: size 6 in the copy, 20 in snapshot " + s,
		"data/db/shop.db: modified 2030-01-02T03:04:05Z in the copy, " + shop.ModTime().UTC().Format(time.RFC3339Nano) + " in snapshot " + s,
		"index.html: missing",
		"logs: missing, and the 2 entries below it",
		"run.sh: a folder in the copy, a file in snapshot " + s,
		"stray.txt: extra, not in snapshot " + s,
		"tmp: extra, not in snapshot " + s,
	}
	if strings.Join(cmp.Mismatches, "\n") != strings.Join(want, "\n") {
		t.Errorf("mismatches:\n%s\nwant:\n%s", strings.Join(cmp.Mismatches, "\n"), strings.Join(want, "\n"))
	}
	if cmp.Files != 7 || cmp.Dirs != 4 || cmp.Symlinks != 1 {
		t.Errorf("compared %d files, %d folders, %d symlinks; want the snapshot's 7, 4, 1", cmp.Files, cmp.Dirs, cmp.Symlinks)
	}

	// 10 mismatches and 30 more extra files: the first 20, then the rest counted
	for i := range 30 {
		must(t, os.WriteFile(in(fmt.Sprintf("extra-%02d", i)), nil, 0o644))
	}
	cmp, err = r.Compare(ctx, snap.ID, root, target)
	must(t, err)
	if len(cmp.Mismatches) != 21 || cmp.Mismatches[20] != "and 20 more" || cmp.Mismatches[5] != "extra-00: extra, not in snapshot "+s {
		t.Errorf("%d mismatches, want 20 and \"and 19 more\": %q", len(cmp.Mismatches), cmp.Mismatches)
	}

	sameFingerprint(t, before, fingerprint(t, repo))
}

// TestDamagedDataPackNamesTheFile flips bytes in the pack holding the
// 2 MiB file's blobs: a verified restore fails, and its error names that
// file by its path in the snapshot's folder. Restoring and comparing
// change nothing of the (damaged) repository.
func TestDamagedDataPackNamesTheFile(t *testing.T) {
	repo, _, bin := newTreeRepo(t)
	r, snap, root := openLatest(t, repo, bin)
	ctx := context.Background()

	// the largest pack: the tree packs and any other are far below 2 MiB
	var pack string
	var size int64
	must(t, filepath.WalkDir(filepath.Join(repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil && info.Size() > size {
			pack, size = p, info.Size()
		}
		return err
	}))
	if size < 2<<20 {
		t.Fatalf("largest pack %s has %d bytes, not the 2 MiB file's", pack, size)
	}
	data, err := os.ReadFile(pack)
	must(t, err)
	for i := len(data) / 4; i < len(data)*3/4; i += 4093 {
		data[i] ^= 0xff
	}
	must(t, os.Chmod(pack, 0o644))
	must(t, os.WriteFile(pack, data, 0o644))
	before := fingerprint(t, repo)

	target := filepath.Join(t.TempDir(), "copy")
	_, err = r.Restore(ctx, snap.ID, root, target, RestoreOptions{Verify: true})
	if err == nil {
		t.Fatal("a verified restore passed with the 2 MiB file's pack damaged")
	}
	if !strings.Contains(err.Error(), "/data/db/shop.db: ") || !strings.Contains(err.Error(), filepath.Base(pack)[:8]) {
		t.Errorf("restore error does not name data/db/shop.db and its pack %s: %v", filepath.Base(pack)[:8], err)
	}
	if !strings.Contains(err.Error(), "restic check --read-data") {
		t.Errorf("restore error says nothing of what to do: %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("restore error runs over lines: %q", err)
	}

	// What the failed restore left proves nothing: restic may leave the
	// damaged file out or leave it at its full size and time with the
	// damaged blob's bytes unwritten, which Compare, reading no content,
	// cannot tell from a good one. The restore's error is the verdict.

	sameFingerprint(t, before, fingerprint(t, repo))
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
