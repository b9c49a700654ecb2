package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/vault"
	"github.com/vigil-backup/vigil/worker"
)

// backUpDocs backs the docs resource's folder up into vault v, as it
// is now, and records the recovery point.
func backUpDocs(t *testing.T, s *Server) vigil.RecoveryPoint {
	t.Helper()
	ctx := context.Background()
	v, err := s.engine.(*worker.Engine).Vault(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Backup(ctx, s.cfg.Current().Resources[0].Path, vault.BackupOptions{Resource: "docs"})
	if err != nil {
		t.Fatal(err)
	}
	rp := vigil.RecoveryPoint{ID: vigil.NewID(vigil.PrefixRecoveryPoint), Resource: "docs", ResourceType: "directory", Vault: "v",
		Status: vigil.RecoveryPointAvailable, SnapshotID: res.SnapshotID, SizeBytes: res.Bytes, Files: res.Files}
	if err := s.catalog.InsertRecoveryPoint(ctx, &rp); err != nil {
		t.Fatal(err)
	}
	return rp
}

// writeDocs fills the docs folder: a text file, a binary file in a
// subfolder, a deeper file and a symbolic link, all dated old.
func writeDocs(t *testing.T, s *Server) (binary []byte) {
	t.Helper()
	root := s.cfg.Current().Resources[0].Path
	binary = make([]byte, 300<<10)
	for i := range binary {
		binary[i] = byte(i * 7 % 251) // zeros and every other byte value
	}
	for name, body := range map[string][]byte{"a.txt": []byte("hello\n"), "sub/b.bin": binary, "sub/deep/c": []byte("c")} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2022, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, p := range []string{"a.txt", "sub/b.bin", "sub/deep/c", "sub/deep", "sub"} {
		os.Chtimes(filepath.Join(root, p), old, old)
	}
	return binary
}

func listing(t *testing.T, s *Server, rpID, p string, extra string) (int, FileListing, string) {
	t.Helper()
	code, body := call(s, http.MethodGet, "/api/v1/recovery-points/"+rpID+"/files?path="+url.QueryEscape(p)+extra, "")
	var l FileListing
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
	}
	return code, l, body
}

func names(es []FileEntry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.Path+":"+e.Type)
	}
	return strings.Join(out, " ")
}

// TestRecoveryPointFiles: the files of a recovery point are listed from
// the vault with type, mode, size and time; a path that leads out of the
// recovery point is refused with a 400 that says what a path is, and one
// it does not hold is a 404 that names it.
func TestRecoveryPointFiles(t *testing.T) {
	s := newTestServer(t)
	writeDocs(t, s)
	rp := backUpDocs(t, s)

	code, l, body := listing(t, s, rp.ID, "", "")
	if code != http.StatusOK {
		t.Fatalf("list root: %d %s", code, body)
	}
	if got, want := names(l.Entries), "a.txt:file link:symlink sub:dir"; got != want || l.Entry.Type != "dir" || l.Note != "" {
		t.Fatalf("root lists %q (entry %+v, note %q), want %q", got, l.Entry, l.Note, want)
	}
	a, link, sub := l.Entries[0], l.Entries[1], l.Entries[2]
	old := time.Date(2022, 5, 6, 7, 8, 9, 0, time.UTC)
	if a.Size != 6 || a.Mode != "0640" || a.ModeString != "-rw-r-----" || !a.ModTime.Equal(old) {
		t.Errorf("a.txt = %+v", a)
	}
	if link.LinkTarget != "a.txt" || !strings.HasPrefix(link.ModeString, "L") {
		t.Errorf("link = %+v", link)
	}
	// A folder's own time, not the newest below it; its size is that of
	// the files below it.
	if sub.Size != 300<<10+1 || !sub.ModTime.Equal(old) || sub.Mode != "0755" {
		t.Errorf("sub = %+v", sub)
	}

	for p, want := range map[string]string{
		"sub":        "sub/b.bin:file sub/deep:dir",
		"sub/":       "sub/b.bin:file sub/deep:dir",
		"./sub/deep": "sub/deep/c:file",
	} {
		if code, l, body := listing(t, s, rp.ID, p, ""); code != http.StatusOK || names(l.Entries) != want {
			t.Errorf("list %q: %d %s; want %s", p, code, body, want)
		}
	}
	if code, l, body := listing(t, s, rp.ID, "sub", "&recursive=true"); code != http.StatusOK || names(l.Entries) != "sub/b.bin:file sub/deep:dir sub/deep/c:file" {
		t.Errorf("list sub recursively: %d %s", code, body)
	}
	if code, l, body := listing(t, s, rp.ID, "sub/b.bin", ""); code != http.StatusOK || l.Entry.Size != 300<<10 || len(l.Entries) != 0 {
		t.Errorf("list a file: %d %s", code, body)
	}

	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"../etc", http.StatusBadRequest, `path "../etc" holds ".."`},
		{"sub/../../x", http.StatusBadRequest, `holds ".."`},
		{"/etc/passwd", http.StatusBadRequest, `path "/etc/passwd" is absolute`},
		{"sub\x00/x", http.StatusBadRequest, "NUL byte"},
		{"sub/nope", http.StatusNotFound, `no "sub/nope": folder "sub" holds no entry named "nope"; see what is there with 'vigil recovery-points ls ` + rp.ID + ` sub'`},
		{"a.txt/x", http.StatusNotFound, `"a.txt" is a file, not a folder`},
		{"link/x", http.StatusNotFound, `"link" is a symlink, not a folder`},
	} {
		for _, route := range []string{"files", "files/content"} {
			code, body := call(s, http.MethodGet, "/api/v1/recovery-points/"+rp.ID+"/"+route+"?path="+url.QueryEscape(tc.path), "")
			var e Error
			json.Unmarshal([]byte(body), &e)
			if code != tc.code || !strings.Contains(e.Message, tc.want) {
				t.Errorf("%s %q: %d %s; want %d saying %q", route, tc.path, code, body, tc.code, tc.want)
			}
			if code == http.StatusBadRequest && !strings.Contains(e.Message, "relative to its root") {
				t.Errorf("%s %q: %q does not say what a path is", route, tc.path, e.Message)
			}
		}
	}
	if code, body := call(s, http.MethodGet, "/api/v1/recovery-points/rp-nope/files", ""); code != http.StatusNotFound || !strings.Contains(body, "rp-nope") {
		t.Errorf("unknown recovery point: %d %s", code, body)
	}
}

// TestRecoveryPointFileContent: one file's bytes come back exactly, with
// their length announced; a folder is refused, saying to list it.
func TestRecoveryPointFileContent(t *testing.T) {
	s := newTestServer(t)
	binary := writeDocs(t, s)
	rp := backUpDocs(t, s)

	r := httptest.NewRequest(http.MethodGet, "/api/v1/recovery-points/"+rp.ID+"/files/content?path=sub/b.bin", nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), binary) {
		t.Fatalf("content of sub/b.bin: %d, %d bytes, equal %v", w.Code, w.Body.Len(), bytes.Equal(w.Body.Bytes(), binary))
	}
	if got := w.Header().Get("Content-Length"); got != "307200" || w.Header().Get("Content-Type") != "application/octet-stream" {
		t.Errorf("headers %v", w.Header())
	}

	for _, p := range []string{"sub", "", "link"} {
		code, body := call(s, http.MethodGet, "/api/v1/recovery-points/"+rp.ID+"/files/content?path="+p, "")
		if code != http.StatusBadRequest || !strings.Contains(body, "not a file") || !strings.Contains(body, "vigil recovery-points ls") {
			t.Errorf("content of %q: %d %s; want 400 saying to list it", p, code, body)
		}
	}
	// Without the token, nothing.
	r = httptest.NewRequest(http.MethodGet, "/api/v1/recovery-points/"+rp.ID+"/files/content?path=a.txt", nil)
	w = httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "hello") {
		t.Errorf("content without the token: %d %s", w.Code, w.Body)
	}
}

// TestRecoveryPointDiff: added, removed and changed files between two
// backups of one resource; two resources' points are not compared.
func TestRecoveryPointDiff(t *testing.T) {
	s := newTestServer(t)
	writeDocs(t, s)
	a := backUpDocs(t, s)
	root := s.cfg.Current().Resources[0].Path
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("changed\n"), 0o640)
	os.Chmod(filepath.Join(root, "sub/b.bin"), 0o600)
	os.RemoveAll(filepath.Join(root, "sub/deep"))
	os.MkdirAll(filepath.Join(root, "new/dir"), 0o755)
	os.WriteFile(filepath.Join(root, "new/dir/f"), []byte("f"), 0o644)
	b := backUpDocs(t, s)

	code, body := call(s, http.MethodGet, "/api/v1/recovery-points/"+a.ID+"/diff?to="+b.ID, "")
	var d RecoveryPointDiff
	if err := json.Unmarshal([]byte(body), &d); code != http.StatusOK || err != nil {
		t.Fatalf("diff: %d %s", code, body)
	}
	var got []string
	for _, c := range d.Changes {
		got = append(got, c.Change+" "+c.Path+" "+strings.Join(c.What, ","))
	}
	want := []string{"changed a.txt contents,time", "added new ", "added new/dir ", "added new/dir/f ", "changed sub/b.bin mode", "removed sub/deep ", "removed sub/deep/c "}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || d.Added != 3 || d.Removed != 2 || d.Changed != 2 {
		t.Errorf("diff:\n%s\nwant:\n%s\n(%+v)", strings.Join(got, "\n"), strings.Join(want, "\n"), d)
	}

	other := vigil.RecoveryPoint{ID: vigil.NewID(vigil.PrefixRecoveryPoint), Resource: "app-db", ResourceType: "sqlite", Vault: "v", Status: vigil.RecoveryPointAvailable, SnapshotID: b.SnapshotID}
	if err := s.catalog.InsertRecoveryPoint(context.Background(), &other); err != nil {
		t.Fatal(err)
	}
	if code, body := call(s, http.MethodGet, "/api/v1/recovery-points/"+a.ID+"/diff?to="+other.ID, ""); code != http.StatusBadRequest || !strings.Contains(body, "one resource") {
		t.Errorf("diff of two resources: %d %s", code, body)
	}
	if code, body := call(s, http.MethodGet, "/api/v1/recovery-points/"+a.ID+"/diff", ""); code != http.StatusBadRequest || !strings.Contains(body, "to=ID") {
		t.Errorf("diff without to: %d %s", code, body)
	}
}

// TestPartialRestoreChecks: a restore of a part names a path inside the
// recovery point that it holds, and only directory (and app) recovery
// points are restored in part; all is checked before a job is queued.
func TestPartialRestoreChecks(t *testing.T) {
	s := newTestServer(t)
	writeDocs(t, s)
	rp := backUpDocs(t, s)
	db := vigil.RecoveryPoint{ID: vigil.NewID(vigil.PrefixRecoveryPoint), Resource: "app-db", ResourceType: "sqlite", Vault: "v", Status: vigil.RecoveryPointAvailable, SnapshotID: rp.SnapshotID}
	if err := s.catalog.InsertRecoveryPoint(context.Background(), &db); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rp, path string
		code     int
		want     string
	}{
		{rp.ID, "../x", http.StatusBadRequest, `holds ".."`},
		{rp.ID, "/sub", http.StatusBadRequest, "is absolute"},
		{rp.ID, "sub/nope", http.StatusNotFound, `no "sub/nope"`},
		{db.ID, "sub", http.StatusBadRequest, "a sqlite recovery point cannot be restored in part"},
	} {
		req, _ := json.Marshal(StartRestoreRequest{RecoveryPointID: tc.rp, Metadata: map[string]string{"path": tc.path}})
		code, body := call(s, http.MethodPost, "/api/v1/restore-jobs", string(req))
		var e Error
		json.Unmarshal([]byte(body), &e)
		if code != tc.code || !strings.Contains(e.Message, tc.want) {
			t.Errorf("restore %s path %q: %d %s; want %d saying %q", tc.rp, tc.path, code, body, tc.code, tc.want)
		}
	}
	req, _ := json.Marshal(StartRestoreRequest{RecoveryPointID: rp.ID, Metadata: map[string]string{"path": "./sub/deep/"}})
	code, body := call(s, http.MethodPost, "/api/v1/restore-jobs", string(req))
	var job vigil.RestoreJob
	if err := json.Unmarshal([]byte(body), &job); code != http.StatusCreated || err != nil || job.Metadata["path"] != "sub/deep" {
		t.Errorf("restore of sub/deep: %d %s", code, body)
	}
}
