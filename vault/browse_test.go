package vault

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct {
		path  string
		names []string
		bad   string
	}{
		{"", nil, ""},
		{".", nil, ""},
		{"./", nil, ""},
		{"a", []string{"a"}, ""},
		{"a/b/", []string{"a", "b"}, ""},
		{"./a//b/./c", []string{"a", "b", "c"}, ""},
		{`back\slash`, []string{`back\slash`}, ""},
		{"..", nil, `holds ".."`},
		{"a/../b", nil, `holds ".."`},
		{"a/..", nil, `holds ".."`},
		{"/", nil, "is absolute"},
		{"/etc/passwd", nil, "is absolute"},
		{"a\x00b", nil, "NUL byte"},
	} {
		names, err := SplitPath(tc.path)
		var pe *PathError
		switch {
		case tc.bad == "" && (err != nil || !slices.Equal(names, tc.names)):
			t.Errorf("SplitPath(%q) = %q, %v; want %q", tc.path, names, err, tc.names)
		case tc.bad != "" && (!errors.As(err, &pe) || pe.Missing || !strings.Contains(err.Error(), tc.bad) || !strings.Contains(err.Error(), "relative to its root")):
			t.Errorf("SplitPath(%q) = %q, %v; want a PathError saying %q and what a path is", tc.path, names, err, tc.bad)
		}
	}
}

// TestRestorePath: one file, one folder and one link are each restored
// alone, at their path below the target, equal to what was backed up; the
// folders on the way hold nothing else and keep their recorded times.
func TestRestorePath(t *testing.T) {
	b := setup(t)
	src := t.TempDir()
	makeTree(t, src)
	snap := b.backup(t, src, "docs").SnapshotID

	for _, tc := range []struct {
		path string
		want []string // every path below the target
	}{
		{"a/b/c/deep.txt", []string{"a", "a/b", "a/b/c", "a/b/c/deep.txt"}},
		{"a/b", []string{"a", "a/b", "a/b/c", "a/b/c/deep.txt", "a/b/compressible.log"}},
		{"a/link-up", []string{"a", "a/link-up"}},
		{"./private-dir/", []string{"private-dir", "private-dir/inside"}},
	} {
		target := filepath.Join(t.TempDir(), "target")
		res, err := b.vault.RestorePath(t.Context(), snap, tc.path, target, nil)
		if err != nil {
			t.Fatalf("restore %q: %v", tc.path, err)
		}
		var got []string
		filepath.Walk(target, func(p string, _ os.FileInfo, err error) error {
			if err == nil && p != target {
				rel, _ := filepath.Rel(target, p)
				got = append(got, rel)
			}
			return nil
		})
		if !slices.Equal(got, tc.want) {
			t.Errorf("restore %q wrote %q, want %q (%+v)", tc.path, got, tc.want, res)
		}
		// What was restored equals the source, times of the folders on
		// the way included.
		want, have := readTree(t, src), readTree(t, target)
		for _, p := range got {
			if want[p] != have[p] {
				t.Errorf("restore %q: %s is %+v, want %+v", tc.path, p, have[p], want[p])
			}
		}
	}

	for p, want := range map[string]string{"a/nope": `no "a/nope": folder "a" holds no entry named "nope"`, "../x": `holds ".."`, "hello.txt/x": `"hello.txt" is a file, not a folder`} {
		target := filepath.Join(t.TempDir(), "target")
		_, err := b.vault.RestorePath(t.Context(), snap, p, target, nil)
		var pe *PathError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) {
			t.Errorf("restore %q: %v; want a PathError saying %q", p, err, want)
		}
		if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("restore %q created its target though the path was refused", p)
		}
	}
}

// TestFilesAndOpenPath: entries carry the times, modes and sizes the
// backup read, folders' own times too; a file's content is read back
// whole.
func TestFilesAndOpenPath(t *testing.T) {
	b := setup(t)
	src := t.TempDir()
	makeTree(t, src)
	snap := b.backup(t, src, "docs").SnapshotID

	at, list, err := b.vault.Files(t.Context(), snap, "a", false)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(src, "a"))
	if at.Type != EntryDir || !at.ModTime.Equal(fi.ModTime()) || at.Path != "a" {
		t.Errorf("entry a = %+v, want the folder's own time %v", at, fi.ModTime())
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name+":"+e.Type)
		sfi, _ := os.Lstat(filepath.Join(src, e.Path))
		if !e.ModTime.Equal(sfi.ModTime()) && e.Type != EntrySymlink {
			t.Errorf("%s: time %v, want %v", e.Path, e.ModTime, sfi.ModTime())
		}
		if e.Mode.Perm() != sfi.Mode().Perm() && e.Type != EntrySymlink {
			t.Errorf("%s: mode %v, want %v", e.Path, e.Mode, sfi.Mode())
		}
	}
	if strings.Join(names, " ") != "b:dir link-up:symlink random.bin:file" || list[1].LinkTarget != "../hello.txt" {
		t.Errorf("a holds %v (%+v)", names, list)
	}

	rc, e, err := b.vault.OpenPath(t.Context(), snap, "a/random.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	want, _ := os.ReadFile(filepath.Join(src, "a/random.bin"))
	if err != nil || string(got) != string(want) || e.Size != int64(len(want)) {
		t.Errorf("a/random.bin read back: %d bytes, %v; want %d", len(got), err, len(want))
	}
}
