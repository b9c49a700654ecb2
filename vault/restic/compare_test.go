package restic

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompareARestore restores a snapshot restic made of a folder with a
// nested folder, a file of mode 0600 and a link, with --verify, and finds
// the copy equal to restic's listing; then each change to the copy (a
// file removed, one truncated, one's mode changed, one added, a folder
// removed) is named, and the repository is as it was.
func TestCompareARestore(t *testing.T) {
	repo, src, bin := newRepo(t)
	ctx := context.Background()
	must(t, os.Symlink("index.html", filepath.Join(src, "home.html")))
	must(t, os.MkdirAll(filepath.Join(src, "data", "deep", "er"), 0o750))
	must(t, os.WriteFile(filepath.Join(src, "data", "deep", "er", "x.txt"), []byte("x"), 0o640))
	restic(t, bin, repo, "", "backup", "--host", "prod-1", src)
	before := fingerprint(t, repo)

	r, err := Open(ctx, Config{Repository: repo, Password: password, Binary: bin, CacheDir: t.TempDir()})
	must(t, err)
	snaps, err := r.Snapshots(ctx)
	must(t, err)
	latest := snaps[len(snaps)-1]
	root, err := r.Root(ctx, latest)
	must(t, err)
	copyDir := filepath.Join(t.TempDir(), "copy")
	must(t, os.Mkdir(copyDir, 0o700))
	if _, err := r.Restore(ctx, latest.ID, root, copyDir, RestoreOptions{Verify: true}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Compare(ctx, latest.ID, root, copyDir)
	must(t, err)
	// index.html, app.js, notes.txt, empty.conf, later.txt, x.txt;
	// static, data, deep, er; home.html
	if len(res.Mismatches) != 0 || res.Files != 6 || res.Dirs != 4 || res.Symlinks != 1 {
		t.Fatalf("compare of a fresh restore: %+v, want no mismatch, 6 files, 4 folders, 1 link", res)
	}

	must(t, os.Remove(filepath.Join(copyDir, "index.html")))
	must(t, os.Truncate(filepath.Join(copyDir, "static", "app.js"), 10))
	must(t, os.Chmod(filepath.Join(copyDir, "data", "later.txt"), 0o644))
	must(t, os.WriteFile(filepath.Join(copyDir, "extra.txt"), []byte("not backed up"), 0o644))
	must(t, os.RemoveAll(filepath.Join(copyDir, "data", "deep")))
	res, err = r.Compare(ctx, latest.ID, root, copyDir)
	must(t, err)
	got := strings.Join(res.Mismatches, "\n")
	for _, want := range []string{
		"index.html: in snapshot " + latest.ShortID + ", missing from the copy",
		"static/app.js: size 10 in the copy",
		"data/later.txt: mode -rw-r--r-- in the copy, -rw------- in snapshot",
		"extra.txt: in the copy, not in snapshot",
		"data/deep: in snapshot " + latest.ShortID + ", missing from the copy",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("mismatches lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "data/deep/er") {
		t.Errorf("the entries below a missing folder are named too:\n%s", got)
	}

	// a file whose time changed is found
	must(t, os.Chtimes(filepath.Join(copyDir, "data", "notes.txt"), time.Now(), time.Now()))
	res, err = r.Compare(ctx, latest.ID, root, copyDir)
	must(t, err)
	if !strings.Contains(strings.Join(res.Mismatches, "\n"), "data/notes.txt: modified") {
		t.Errorf("a changed time is not found: %v", res.Mismatches)
	}
	sameFingerprint(t, before, fingerprint(t, repo))
}
