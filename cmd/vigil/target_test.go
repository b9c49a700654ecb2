package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/treediff"
)

// apiPost calls the API with the server's token.
func (e *testEnv) apiPost(path string, body any) (int, string) {
	e.t.Helper()
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		e.t.Error(err)
		return 0, ""
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.listen+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// waitRestore waits until restore job id has ended.
func (e *testEnv) waitRestore(id string) vigil.RestoreJob {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var job vigil.RestoreJob
		e.mustJSON(&job, "jobs", "show", id)
		if job.Status.Final() {
			return job
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("restore job %s did not end within 2 minutes: %+v", id, job)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mountTmpfs mounts a tmpfs of size at dir, unmounted when the test ends.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs at %s (the test needs root): %v: %s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// Concurrent restores into one new target: exactly one gets it and
// completes, the others are refused or fail without touching its folder.
func TestConcurrentRestoresIntoOneTarget(t *testing.T) {
	e := newEnv(t, envOptions{})
	makeTree(t, e.path("docs"))
	e.serve()
	job := e.backup("docs")
	target := e.path("restored/same")

	for round := range 3 {
		os.RemoveAll(e.path("restored"))
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ids []string
		refused := 0
		for range 3 {
			wg.Go(func() {
				code, body := e.apiPost("/api/v1/restore-jobs", map[string]any{
					"recovery_point_id": job.RecoveryPointID, "metadata": map[string]string{"target_path": target}})
				mu.Lock()
				defer mu.Unlock()
				switch code {
				case http.StatusCreated:
					var rj vigil.RestoreJob
					if err := json.Unmarshal([]byte(body), &rj); err != nil {
						t.Errorf("decode %s: %v", body, err)
					}
					ids = append(ids, rj.ID)
				case http.StatusBadRequest:
					refused++
				default:
					t.Errorf("round %d: POST answered %d %s", round, code, body)
				}
			})
		}
		wg.Wait()
		completed, failed := 0, 0
		for _, id := range ids {
			rj := e.waitRestore(id)
			switch rj.Status {
			case vigil.RestoreCompleted:
				completed++
			case vigil.RestoreFailed:
				failed++
				t.Logf("round %d: %s FAILED: %s", round, id, rj.StatusMessage)
				if !strings.Contains(rj.StatusMessage, "target_path") {
					t.Errorf("round %d: %s failed without naming the target: %s", round, id, rj.StatusMessage)
				}
			default:
				t.Errorf("round %d: %s ended %s: %s", round, id, rj.Status, rj.StatusMessage)
			}
		}
		t.Logf("round %d: %d refused at once, %d FAILED, %d COMPLETED", round, refused, failed, completed)
		if completed != 1 {
			t.Errorf("round %d: %d of %d accepted restores completed (%d refused), want exactly 1", round, completed, len(ids), refused)
		}
		if diffs, err := treediff.Compare(e.path("docs"), target, treediff.Options{}); err != nil || len(diffs) > 0 {
			t.Errorf("round %d: the completed restore's folder %s is not the backup: %v %v", round, target, err, diffs)
		}
	}
	if claims, _ := os.ReadDir(e.path("vigil-data/restore-claims")); len(claims) != 0 {
		t.Errorf("ended restores left their claims: %v", claims)
	}
	e.stop()
}

// A restore that fails leaves a folder it did not create, emptied, and
// never removes a link given as its target; vigil's own folders are
// refused.
func TestRestoreRemovesOnlyWhatItCreated(t *testing.T) {
	e := newEnv(t, envOptions{})
	makeTree(t, e.path("docs"))
	// The docs tree holds a 3 MiB file: it does not fit in 1 MiB.
	mountTmpfs(t, e.path("small"), "1m")
	e.serve()
	job := e.backup("docs")

	// A folder that was there, empty, before the restore: kept.
	empty := e.path("small/empty")
	if err := os.Mkdir(empty, 0o750); err != nil {
		t.Fatal(err)
	}
	var rj vigil.RestoreJob
	r := e.run("restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+empty, "--wait", "--json")
	json.Unmarshal([]byte(r.stdout), &rj)
	if r.code != 1 || rj.Status != vigil.RestoreFailed || !strings.Contains(rj.StatusMessage, "free of 1.0 MiB") {
		t.Errorf("restore into a full disk: exit %d, %+v, stderr %s", r.code, rj, r.stderr)
	}
	if fi, err := os.Lstat(empty); err != nil || !fi.IsDir() {
		t.Errorf("the failed restore removed the empty folder it was given: %v", err)
	} else if names, _ := os.ReadDir(empty); len(names) != 0 {
		t.Errorf("the failed restore left its partial files in %s: %v", empty, names)
	}
	// A folder the restore created: removed.
	made := e.path("small/new/folder")
	r = e.run("restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+made, "--wait", "--json")
	if r.code != 1 {
		t.Errorf("restore into a full disk: exit %d, %s", r.code, r.stdout)
	}
	if _, err := os.Lstat(e.path("small/new")); !os.IsNotExist(err) {
		t.Errorf("the failed restore left the folders it created: %v", err)
	}

	// Links, live or dangling, are refused and left in place.
	os.Mkdir(e.path("real-empty"), 0o755)
	for name, to := range map[string]string{"live-link": e.path("real-empty"), "dangling-link": e.path("nowhere")} {
		link := e.path(name)
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
		r := e.run("restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+link, "--wait")
		if r.code != 2 || !strings.Contains(r.stderr, "symbolic link") {
			t.Errorf("%s as target: exit %d, stderr %q", name, r.code, r.stderr)
		}
		if got, err := os.Readlink(link); err != nil || got != to {
			t.Errorf("%s was removed or changed: %q %v", name, got, err)
		}
	}

	// vigil's own folders are refused; its default restores folder is not.
	for _, own := range []string{"vigil-data/restore-tests/x", "vigil-data/catalog-copy", "vigil-data", "vaults/lab-vault/x", "vigil-data/restores"} {
		r := e.run("restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+e.path(own))
		if r.code != 2 || !strings.Contains(r.stderr, "vigil's own") {
			t.Errorf("target_path %s: exit %d, stderr %q", own, r.code, r.stderr)
		}
	}
	e.mustJSON(&rj, "restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+e.path("vigil-data/restores/mine"), "--wait")
	if rj.Status != vigil.RestoreCompleted {
		t.Errorf("restore below the default restores folder: %+v", rj)
	}
	e.stop()
}

// An SQLite restore's target_path gets the same care: vigil's own folders
// and links are refused, and one that fails removes the file and the
// folders it created, and names the full disk.
func TestSQLiteRestoreTarget(t *testing.T) {
	e := newEnv(t, envOptions{extra: `  - name: app-sqlite
    type: sqlite
    path: ./app.db
`})
	lite := sqlDB(t, "sqlite", "file:"+e.path("app.db"))
	execAll(t, lite, "CREATE TABLE notes (body TEXT)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 3000) INSERT INTO notes SELECT hex(randomblob(400)) FROM n")
	mountTmpfs(t, e.path("small"), "1m")
	e.serve()
	job := e.backup("app-sqlite")

	for _, own := range []string{"vigil-data/restore-tests/x.db", "vigil-data/catalog.db", "vaults/lab-vault/x.db"} {
		r := e.run("restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+e.path(own))
		if r.code != 2 || !strings.Contains(r.stderr, "vigil's own") {
			t.Errorf("target_path %s: exit %d, stderr %q", own, r.code, r.stderr)
		}
	}
	link := e.path("dangling.db")
	os.Symlink(e.path("nowhere.db"), link)
	if r := e.run("restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+link); r.code != 2 || !strings.Contains(r.stderr, "symbolic link") {
		t.Errorf("a dangling link as target: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Readlink(link); err != nil {
		t.Errorf("the link went: %v", err)
	}

	var rj vigil.RestoreJob
	r := e.run("restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+e.path("small/new/app.db"), "--wait", "--json")
	json.Unmarshal([]byte(r.stdout), &rj)
	if r.code != 1 || rj.Status != vigil.RestoreFailed || !strings.Contains(rj.StatusMessage, "mounted at "+e.path("small")) {
		t.Errorf("an SQLite restore into a full disk: exit %d, %s %q", r.code, rj.Status, rj.StatusMessage)
	}
	if _, err := os.Lstat(e.path("small/new")); !os.IsNotExist(err) {
		t.Errorf("the failed restore left what it created: %v", err)
	}
	e.stop()
}
