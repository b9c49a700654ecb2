package treediff

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeTree(t *testing.T, root string) {
	t.Helper()
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(root, "sub/b.txt"), []byte("beta"), 0o600)
	os.Symlink("a.txt", filepath.Join(root, "link"))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(root, "a.txt"), old, old)
	os.Chtimes(filepath.Join(root, "sub/b.txt"), old, old)
	os.Chtimes(filepath.Join(root, "sub"), old, old)
}

// TestCompare makes sure the comparison the restore tests rely on notices
// every kind of difference: a comparison that always matched would make
// them prove nothing.
func TestCompare(t *testing.T) {
	tests := []struct {
		name   string
		change func(root string)
		want   string
	}{
		{"identical", func(string) {}, ""},
		{"content", func(r string) { os.WriteFile(filepath.Join(r, "a.txt"), []byte("alphA"), 0o644) }, "a.txt: contents differ"},
		{"mode", func(r string) { os.Chmod(filepath.Join(r, "sub/b.txt"), 0o644) }, "sub/b.txt: mode"},
		{"mtime", func(r string) { os.Chtimes(filepath.Join(r, "sub"), time.Now(), time.Now()) }, "sub: modified"},
		{"symlink target", func(r string) {
			os.Remove(filepath.Join(r, "link"))
			os.Symlink("sub/b.txt", filepath.Join(r, "link"))
		}, "link: symlink target"},
		{"type", func(r string) {
			os.Remove(filepath.Join(r, "link"))
			os.WriteFile(filepath.Join(r, "link"), []byte("a.txt"), 0o644)
		}, "link: type"},
		{"missing", func(r string) { os.Remove(filepath.Join(r, "sub/b.txt")) }, "sub/b.txt: only in"},
		{"extra", func(r string) { os.WriteFile(filepath.Join(r, "new"), nil, 0o644) }, "new: only in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := t.TempDir(), t.TempDir()
			writeTree(t, a)
			writeTree(t, b)
			tt.change(b)
			diffs, err := Compare(a, b, Options{ModTimes: true})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(diffs, "\n")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("diffs = %q, want %q", got, tt.want)
			}
		})
	}
}
