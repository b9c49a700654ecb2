package target_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/resource/target"
)

func TestClaimIsExclusiveAndUndoRemovesOnlyWhatItMade(t *testing.T) {
	dir := t.TempDir()
	claims := target.Claims{Dir: filepath.Join(dir, "claims")}
	path := filepath.Join(dir, "a", "b", "new")

	if _, err := claims.Claim("rj-1", path, target.Folder); err != nil {
		t.Fatal(err)
	}
	if _, err := claims.Claim("rj-2", path, target.Folder); err == nil || !strings.Contains(err.Error(), "rj-1") {
		t.Fatalf("a second job got a held target: %v", err)
	}
	// After a crash the same job finds its claim again, as it was.
	again, err := claims.Reclaim("rj-1", path)
	if err != nil || again == nil || !again.Created() {
		t.Fatalf("reclaim after a crash: %+v %v", again, err)
	}
	if other, err := claims.Reclaim("rj-2", path); other != nil || err != nil {
		t.Fatalf("another job reclaimed rj-1's target: %+v %v", other, err)
	}
	os.WriteFile(filepath.Join(path, "partial"), []byte("x"), 0o600)
	if msg := again.Undo(); msg != "" {
		t.Fatal(msg)
	}
	if _, err := os.Lstat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("undo left the folders it made: %v", err)
	}
	if h, _ := claims.Holder(path); h != "" {
		t.Errorf("undo left the claim of %s", h)
	}

	// An empty folder that was there is emptied, and kept.
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	cl, err := claims.Claim("rj-3", empty, target.Folder)
	if err != nil || cl.Created() {
		t.Fatalf("claim an empty folder: %+v %v", cl, err)
	}
	os.MkdirAll(filepath.Join(empty, "sub"), 0o700)
	if msg := cl.Undo(); msg != "" {
		t.Fatal(msg)
	}
	if names, err := os.ReadDir(empty); err != nil || len(names) != 0 {
		t.Errorf("the empty folder was removed or not emptied: %v %v", names, err)
	}

	// Links, folders that are not empty and files are refused, touching
	// nothing.
	link := filepath.Join(dir, "link")
	os.Symlink(empty, link)
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
	for _, p := range []string{link, filepath.Join(dir, "file"), dir} {
		if _, err := claims.Claim("rj-4", p, target.Folder); err == nil {
			t.Errorf("claimed %s", p)
		}
		if h, _ := claims.Holder(p); h != "" {
			t.Errorf("a refused claim of %s stayed", p)
		}
	}
	if _, err := os.Readlink(link); err != nil {
		t.Errorf("the link went: %v", err)
	}
}

func TestOutside(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	restores := filepath.Join(data, "restores")
	os.MkdirAll(restores, 0o700)
	os.Symlink(data, filepath.Join(dir, "to-data"))
	os.Symlink(data, filepath.Join(restores, "back"))
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{filepath.Join(dir, "elsewhere"), true},
		{filepath.Join(restores, "rj-1"), true},
		{filepath.Join(restores, "a", "b"), true},
		{restores, false},
		{data, false},
		{filepath.Join(data, "restore-tests", "x"), false},
		{filepath.Join(dir, "to-data", "x"), false},
		{filepath.Join(restores, "back", "catalog"), false},
		{filepath.Join(dir, "vault", "x"), false},
		{filepath.Join(dir, "vaultish"), true},
	} {
		err := target.Outside(tc.path, []string{data, filepath.Join(dir, "vault")}, restores)
		if (err == nil) != tc.ok {
			t.Errorf("Outside(%s) = %v, want ok %v", tc.path, err, tc.ok)
		}
	}
}
