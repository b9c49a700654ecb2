package vault

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestBackupExcludes: each exclude rule leaves its entries out of the
// snapshot, each is counted once by its rule (also when kopia walks the
// tree twice to estimate its size, and when the folder is unchanged), and
// a restore of the snapshot compares equal to it: what was excluded is
// not missing from it.
func TestBackupExcludes(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	files := map[string]string{
		"keep.txt":                    "kept",
		"scratch.tmp":                 "excluded by *.tmp",
		"sub/deep/more.tmp":           "excluded by *.tmp",
		"sub/keep.go":                 "kept",
		"web/node_modules/a/index.js": "excluded with its folder",
		"cache/entry":                 "excluded by cache/**",
		"cache/deeper/entry":          "excluded with cache/deeper",
		"private/.nobackup":           "",
		"private/secret":              "excluded with its folder",
		"sub/big.bin":                 string(make([]byte, 2048)),
		"small.bin":                   string(make([]byte, 1024)),
	}
	for p, content := range files {
		must(t, os.MkdirAll(filepath.Join(source, filepath.Dir(p)), 0o755))
		must(t, os.WriteFile(filepath.Join(source, p), []byte(content), 0o644))
	}
	mnt := filepath.Join(source, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs at %s (the test needs root): %v: %s", mnt, err, out)
	}
	t.Cleanup(func() { must(t, syscall.Unmount(mnt, syscall.MNT_DETACH)) })
	must(t, os.WriteFile(filepath.Join(mnt, "on-tmpfs"), []byte("another file system"), 0o644))

	opts := BackupOptions{
		Resource: "files",
		Exclude: Excludes{
			Patterns:      []string{"*.tmp", "node_modules/", "cache/**"},
			IfPresent:     ".nobackup",
			OneFileSystem: true,
			LargerThan:    1500,
		},
		Progress: func(Progress) {},
	}
	wantByRule := map[string]int64{ExcludedByPattern: 5, ExcludedByMarker: 1, ExcludedByFileSystem: 1, ExcludedBySize: 1}
	wantPaths := []string{"cache/deeper", "cache/entry", "mnt", "private", "scratch.tmp", "sub/big.bin", "sub/deep/more.tmp", "web/node_modules"}

	for _, run := range []string{"first backup", "unchanged folder"} {
		res, err := b.vault.Backup(t.Context(), source, opts)
		must(t, err)
		got := res.Excluded
		if got.Total != 8 || !reflect.DeepEqual(got.ByRule, wantByRule) || !reflect.DeepEqual(slices.Sorted(slices.Values(got.Paths)), wantPaths) {
			t.Errorf("%s: excluded %+v, want %v by rule, paths %v", run, got, wantByRule, wantPaths)
		}
		if res.Files != 3 {
			t.Errorf("%s: %d files backed up, want 3 (keep.txt, sub/keep.go, small.bin)", run, res.Files)
		}
		if res.Skipped.Total != 0 {
			t.Errorf("%s: skipped %+v: an excluded entry is not a skipped one", run, res.Skipped)
		}

		target := filepath.Join(t.TempDir(), "restored")
		if _, err := b.vault.Restore(t.Context(), res.SnapshotID, target, nil); err != nil {
			t.Fatal(err)
		}
		cmp, err := b.vault.Compare(t.Context(), res.SnapshotID, target, 100)
		must(t, err)
		if len(cmp.Mismatches) > 0 {
			t.Errorf("%s: the restored copy differs from its snapshot: %v", run, cmp.Mismatches)
		}
		var restored []string
		must(t, filepath.WalkDir(target, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(target, p)
				restored = append(restored, rel)
			}
			return err
		}))
		slices.Sort(restored)
		if want := []string{"keep.txt", "small.bin", "sub/keep.go"}; !reflect.DeepEqual(restored, want) {
			t.Errorf("%s: restored files %v, want %v", run, restored, want)
		}
		if _, err := os.Stat(filepath.Join(target, "cache")); err != nil {
			t.Errorf("%s: cache/** excludes what the folder holds, not the folder: %v", run, err)
		}
	}

	// Without rules, the same folder is backed up whole.
	res, err := b.vault.Backup(t.Context(), source, BackupOptions{Resource: "files"})
	must(t, err)
	if res.Excluded.Total != 0 || res.Files != 12 {
		t.Errorf("without rules: %d files, excluded %+v; want all 12 files, nothing excluded", res.Files, res.Excluded)
	}
}

func TestCheckPatterns(t *testing.T) {
	t.Parallel()

	if err := CheckPatterns(t.Context(), []string{"*.tmp", "node_modules/", "cache/**", "!keep.tmp", "[a-z]*.log"}); err != nil {
		t.Errorf("good patterns refused: %v", err)
	}
	err := CheckPatterns(t.Context(), []string{"*.tmp", "[abc"})
	if err == nil || !strings.Contains(err.Error(), `exclude pattern "[abc"`) || !strings.Contains(err.Error(), "expected ']'") {
		t.Errorf("error = %v, want it to name the pattern and what is wrong", err)
	}
}
