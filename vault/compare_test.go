package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// restoredCopy restores snapshot snapID into a new folder and returns it.
func (b *testBundle) restoredCopy(t *testing.T, snapID string) string {
	t.Helper()

	target := filepath.Join(t.TempDir(), "restored")
	if _, err := b.vault.Restore(t.Context(), snapID, target, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}

	return target
}

// keepTimes runs change and then puts back the modification times of the
// given paths, so that a test changes only what it means to.
func keepTimes(t *testing.T, change func(), paths ...string) {
	t.Helper()

	times := make([]time.Time, len(paths))

	for i, p := range paths {
		fi, err := os.Lstat(p)
		must(t, err)
		times[i] = fi.ModTime()
	}

	change()

	for i, p := range paths {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			setLinkTime(t, p, times[i])
		} else {
			must(t, os.Chtimes(p, times[i], times[i]))
		}
	}
}

func TestCompareIdentical(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	snap := b.backup(t, source, "files")

	target := filepath.Join(t.TempDir(), "restored")

	restored, err := b.vault.Restore(t.Context(), snap.SnapshotID, target, nil)
	if err != nil {
		t.Fatal(err)
	}

	before := storageFiles(t, b.cfg.Storage)

	res, err := b.vault.Compare(t.Context(), snap.SnapshotID, target, 100)
	if err != nil {
		t.Fatal(err)
	}

	if len(res.Mismatches) > 0 {
		t.Errorf("identical copy: mismatches %q", res.Mismatches)
	}

	if res.Files != restored.Files || res.Dirs != restored.Dirs || res.Symlinks != restored.Symlinks {
		t.Errorf("counted %d files, %d folders, %d links; the restore wrote %d, %d, %d",
			res.Files, res.Dirs, res.Symlinks, restored.Files, restored.Dirs, restored.Symlinks)
	}

	if res.Compared != res.Files || res.Bytes != snap.Bytes {
		t.Errorf("compared %d files, %d bytes; want all %d files, %d bytes", res.Compared, res.Bytes, res.Files, snap.Bytes)
	}

	if err := sameFiles(before, storageFiles(t, b.cfg.Storage)); err != nil {
		t.Errorf("compare wrote to the vault: %v", err)
	}
}

func TestCompareFindsDifferences(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	snap := b.backup(t, source, "files")

	tests := []struct {
		name   string
		change func(t *testing.T, root string)
		want   []string
	}{
		{
			name: "changed byte",
			change: func(t *testing.T, root string) {
				p := filepath.Join(root, "a", "random.bin")
				keepTimes(t, func() {
					data, err := os.ReadFile(p)
					must(t, err)
					data[4096+7] ^= 0xff
					must(t, os.WriteFile(p, data, 0))
				}, p)
			},
			want: []string{"content differs: a/random.bin (from byte 4103)"},
		},
		{
			name: "truncated file",
			change: func(t *testing.T, root string) {
				p := filepath.Join(root, "hello.txt")
				keepTimes(t, func() { must(t, os.Truncate(p, 5)) }, p)
			},
			want: []string{"size differs: hello.txt (snapshot 13 bytes, restored 5)"},
		},
		{
			name: "deleted file",
			change: func(t *testing.T, root string) {
				dir := filepath.Join(root, "a", "b", "c")
				keepTimes(t, func() { must(t, os.Remove(filepath.Join(dir, "deep.txt"))) }, dir)
			},
			want: []string{"missing: a/b/c/deep.txt"},
		},
		{
			name: "deleted folder",
			change: func(t *testing.T, root string) {
				keepTimes(t, func() { must(t, os.RemoveAll(filepath.Join(root, "a", "b"))) }, filepath.Join(root, "a"))
			},
			want: []string{"missing: a/b"},
		},
		{
			name: "extra file",
			change: func(t *testing.T, root string) {
				dir := filepath.Join(root, "a")
				keepTimes(t, func() { must(t, os.WriteFile(filepath.Join(dir, "new.txt"), []byte("new"), 0o644)) }, dir)
			},
			want: []string{"extra: a/new.txt"},
		},
		{
			name: "changed mode",
			change: func(t *testing.T, root string) {
				must(t, os.Chmod(filepath.Join(root, "secret"), 0o644))
				must(t, os.Chmod(filepath.Join(root, "setuid-bin"), 0o755))
				must(t, os.Chmod(filepath.Join(root, "private-dir"), 0o755))
			},
			want: []string{
				"mode differs: private-dir (snapshot 0700, restored 0755)",
				"mode differs: secret (snapshot 0600, restored 0644)",
				"mode differs: setuid-bin (snapshot 4755, restored 0755)",
			},
		},
		{
			name: "changed time",
			change: func(t *testing.T, root string) {
				must(t, os.Chtimes(filepath.Join(root, "photos"), fixedTime(0), fixedTime(0)))
			},
			want: []string{"time differs: photos (snapshot " + fixedTime(203).Format(time.RFC3339Nano) + ", restored " + fixedTime(0).Format(time.RFC3339Nano) + ")"},
		},
		{
			name: "symlink retargeted",
			change: func(t *testing.T, root string) {
				p := filepath.Join(root, "link-relative")
				keepTimes(t, func() {
					must(t, os.Remove(p))
					must(t, os.Symlink("script.sh", p))
				}, p, root)
			},
			want: []string{`link target differs: link-relative (snapshot "hello.txt", restored "script.sh")`},
		},
		{
			name: "folder replaced by a file",
			change: func(t *testing.T, root string) {
				p := filepath.Join(root, "empty-dir")
				keepTimes(t, func() {
					must(t, os.Remove(p))
					must(t, os.WriteFile(p, nil, 0o755))
				}, root)
			},
			want: []string{"type differs: empty-dir (snapshot folder, restored file)"},
		},
		{
			name: "file replaced by a link to an identical file",
			change: func(t *testing.T, root string) {
				p := filepath.Join(root, "secret")
				keepTimes(t, func() {
					must(t, os.Rename(p, filepath.Join(t.TempDir(), "secret")))
					must(t, os.Symlink(filepath.Join(source, "secret"), p))
				}, root)
			},
			want: []string{"type differs: secret (snapshot file, restored symlink)"},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			target := b.restoredCopy(t, snap.SnapshotID)
			tt.change(t, target)

			res, err := b.vault.Compare(t.Context(), snap.SnapshotID, target, 100)
			if err != nil {
				t.Fatal(err)
			}

			if !slices.Equal(res.Mismatches, tt.want) {
				t.Errorf("mismatches:\n  %s\nwant:\n  %s", strings.Join(res.Mismatches, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestCompareSample(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()

	for i := range 40 {
		must(t, os.WriteFile(filepath.Join(source, fmt.Sprintf("f%02d", i)), []byte(strings.Repeat("x", i)), 0o644))
	}

	snap := b.backup(t, source, "files")
	target := b.restoredCopy(t, snap.SnapshotID)

	res, err := b.vault.Compare(t.Context(), snap.SnapshotID, target, 10)
	if err != nil {
		t.Fatal(err)
	}

	if res.Files != 40 || res.Compared != 4 || len(res.Mismatches) > 0 {
		t.Fatalf("10%% of an identical copy: %d files, %d compared, mismatches %q; want 40, 4, none", res.Files, res.Compared, res.Mismatches)
	}

	// a tiny percentage still compares one file
	if res, err := b.vault.Compare(t.Context(), snap.SnapshotID, target, 0.01); err != nil || res.Compared != 1 {
		t.Fatalf("0.01%%: compared %d files (%v), want 1", res.Compared, err)
	}

	keepTimes(t, func() {
		must(t, os.Remove(filepath.Join(target, "f03")))
		must(t, os.WriteFile(filepath.Join(target, "zz-extra"), nil, 0o644))
	}, target)
	keepTimes(t, func() { must(t, os.Truncate(filepath.Join(target, "f20"), 2)) }, filepath.Join(target, "f20"))

	res, err = b.vault.Compare(t.Context(), snap.SnapshotID, target, 10)
	if err != nil {
		t.Fatal(err)
	}

	want := []string{"missing: f03", "size differs: f20 (snapshot 20 bytes, restored 2)", "extra: zz-extra"}
	if !slices.Equal(res.Mismatches, want) {
		t.Errorf("10%% sample: mismatches %q, want %q from the metadata alone", res.Mismatches, want)
	}

	if res.Compared != 4 {
		t.Errorf("10%% of the 38 comparable files: compared %d, want 4", res.Compared)
	}
}

func TestCompareListsAtMostTwentyMismatches(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()

	for i := range 30 {
		must(t, os.WriteFile(filepath.Join(source, fmt.Sprintf("f%02d", i)), []byte("x"), 0o644))
	}

	snap := b.backup(t, source, "files")
	target := b.restoredCopy(t, snap.SnapshotID)

	keepTimes(t, func() {
		for i := range 30 {
			must(t, os.Remove(filepath.Join(target, fmt.Sprintf("f%02d", i))))
		}
	}, target)

	res, err := b.vault.Compare(t.Context(), snap.SnapshotID, target, 100)
	if err != nil {
		t.Fatal(err)
	}

	if len(res.Mismatches) != maxCompareMismatches+1 || res.Mismatches[0] != "missing: f00" || res.Mismatches[maxCompareMismatches] != "… and 10 more" {
		t.Errorf("30 missing files: got %d lines, %q", len(res.Mismatches), res.Mismatches)
	}

	if res.Compared != 0 {
		t.Errorf("compared %d files, none of which is there", res.Compared)
	}
}

func TestCompareCannotCompare(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	snap := b.backup(t, source, "files")
	target := b.restoredCopy(t, snap.SnapshotID)

	if _, err := b.vault.Compare(t.Context(), "0123456789abcdef0123456789abcdef", target, 100); err == nil || !strings.Contains(err.Error(), "is not in vault") {
		t.Errorf("unknown snapshot: got %v", err)
	}

	if _, err := b.vault.Compare(t.Context(), snap.SnapshotID, filepath.Join(target, "nothing"), 100); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: got %v, want os.ErrNotExist", err)
	}

	if _, err := b.vault.Compare(t.Context(), snap.SnapshotID, filepath.Join(target, "hello.txt"), 100); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("a file: got %v", err)
	}

	if _, err := b.vault.Compare(t.Context(), snap.SnapshotID, target, 101); err == nil {
		t.Error("101%: no error")
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	if _, err := b.vault.Compare(ctx, snap.SnapshotID, target, 100); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}

// openBelow lists the process's open descriptors on dir or anything below
// it.
func openBelow(dir string) ([]string, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("list open descriptors: %w", err)
	}

	var open []string

	for _, fd := range fds {
		p, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && (p == dir || strings.HasPrefix(p, dir+"/")) {
			open = append(open, p)
		}
	}

	return open, nil
}

// A comparison keeps the restored folders open while their files wait to
// be compared, and closes every one of them, whether it ends well, finds
// differences, or is cancelled half-way.
func TestCompareClosesFolders(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()

	for i := range 40 {
		dir := filepath.Join(source, fmt.Sprintf("d%02d", i), "sub")
		must(t, os.MkdirAll(dir, 0o755))

		for j := range 5 {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", j)), []byte(strings.Repeat("x", 1000*j)), 0o644))
		}
	}

	snap := b.backup(t, source, "files")

	target := filepath.Join(t.TempDir(), "restored")

	restored, err := b.vault.RestoreWith(t.Context(), snap.SnapshotID, target, RestoreOptions{Digests: true})
	if err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, what string) {
		t.Helper()

		open, err := openBelow(target)
		must(t, err)

		if len(open) > 0 {
			t.Errorf("%s: %d descriptors still open below the copy, such as %q", what, len(open), open[:min(3, len(open))])
		}
	}

	for _, pct := range []float64{100, 30} {
		if _, err := b.vault.Compare(t.Context(), snap.SnapshotID, target, pct); err != nil {
			t.Fatal(err)
		}

		check(t, fmt.Sprintf("compare %v%% with the vault", pct))

		if _, err := b.vault.CompareDigests(t.Context(), snap.SnapshotID, target, pct, restored.Digests); err != nil {
			t.Fatal(err)
		}

		check(t, fmt.Sprintf("compare %v%% with the digests", pct))
	}

	// differences: a file gone, a folder in the place of a file
	must(t, os.Remove(filepath.Join(target, "d03", "sub", "f2")))
	must(t, os.Remove(filepath.Join(target, "d07", "sub", "f1")))
	must(t, os.Mkdir(filepath.Join(target, "d07", "sub", "f1"), 0o755))

	res, err := b.vault.CompareDigests(t.Context(), snap.SnapshotID, target, 100, restored.Digests)
	if err != nil || len(res.Mismatches) == 0 {
		t.Fatalf("a changed copy: %v, mismatches %q", err, res.Mismatches)
	}

	check(t, "a changed copy")

	// cancelled as soon as the comparison holds something open
	for range 5 {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})

		go func() {
			defer close(done)

			for ctx.Err() == nil {
				if open, err := openBelow(target); err != nil || len(open) > 0 {
					break
				}

				time.Sleep(50 * time.Microsecond)
			}

			cancel()
		}()

		_, err := b.vault.CompareDigests(ctx, snap.SnapshotID, target, 100, restored.Digests)
		cancel()
		<-done

		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: got %v, want context.Canceled or none", err)
		}

		check(t, "a cancelled comparison")
	}
}
