package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/mount"
)

// instantAppYAML is the web app restored instantly: before it serves, it
// writes a file into its copy, which the http check then fetches.
const instantAppYAML = `  - name: web
    type: app
    path: ./site
    restore: instant
    run: ["sh", "-c", "echo written by the app > written.txt && exec python3 -m http.server {{.Port}} --bind {{.Host}} --directory {{.Dir}}"]
    validate:
      - checksum: {}
      - http: {path: /, expect_body: "Welcome"}
      - http: {path: /written.txt, expect_body: "written by the app"}
`

// requireNoMounts fails when a mount is left under dir.
func requireNoMounts(t *testing.T, dir string) {
	t.Helper()
	left, err := mount.Under(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("mounts left under %s: %+v", dir, left)
	}
}

func instantEnv(t *testing.T) *testEnv {
	t.Helper()
	if err := mount.Available(); err != nil {
		t.Fatalf("instant copies need FUSE and overlayfs, which this machine does not give: %v (run the tests as root on a kernel with /dev/fuse and overlay in /proc/filesystems)", err)
	}
	e := newTestEnv(t, instantAppYAML)
	writeSite(t, e.path("site"))
	t.Cleanup(func() { mount.UnmountUnder(e.instancesDir()) })
	return e
}

// TestInstantRestoreTest: an app restored with restore: instant answers
// from its mounted copy; what it writes lands in the copy's upper folder,
// not in the recovery point; a missing name is ENOENT; the clean-up leaves
// no mount and no folder.
func TestInstantRestoreTest(t *testing.T) {
	t.Parallel()
	e := instantEnv(t)
	e.env = append(e.env, "VIGIL_TEST_PAUSE=validate=2s")
	e.serve()
	defer e.stop()
	b := e.backup("web")
	job := e.startTest("web", "")
	job = e.waitValidating(job.ID)

	root := filepath.Join(e.instancesDir(), job.ID)
	if ms, _ := mount.Under(root); len(ms) != 2 {
		t.Fatalf("mounts of the instant copy: %+v, want the recovery point (FUSE) and the overlay", ms)
	}
	if _, err := os.Stat(filepath.Join(root, "data", "no-such-page.html")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat of a missing name in the copy: %v, want fs.ErrNotExist", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "data", "index.html")); err != nil || !strings.Contains(string(b), "Welcome") {
		t.Errorf("the copy's index.html: %q, %v", b, err)
	}
	waitFor(t, 10*time.Second, "the app to write its file", func() bool {
		_, err := os.Stat(filepath.Join(root, "instant", "upper", "written.txt"))
		return err == nil
	})
	if _, err := os.Stat(filepath.Join(root, "instant", "lower", "written.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the app's file shows in the mounted recovery point: %v", err)
	}

	job = e.waitTest(job.ID)
	log := e.logText(job.ID)
	if job.ValidationStatus != vigil.ValidationSuccessful || job.DeletionStatus != vigil.DeletionSuccessful {
		t.Fatalf("instant restore test: %s %q, deletion %s\n%s", job.ValidationStatus, job.ValidationMessage, job.DeletionStatus, log)
	}
	if !strings.Contains(log, "mounted recovery point "+b.RecoveryPointID) || !strings.Contains(log, "checksum:") {
		t.Errorf("the job log does not say the copy was mounted and checked:\n%s", log)
	}
	requireNoMounts(t, e.instancesDir())
	e.requireNoLeak()
	// The vault still holds the site as backed up.
	if out := e.mustRun("recovery-points", "ls", b.RecoveryPointID); strings.Contains(out, "written.txt") {
		t.Errorf("the app's file is in the recovery point:\n%s", out)
	}
}

// TestKillDuringInstantRestoreTest: vigil killed (-9) while an instant
// copy's app runs leaves its mounts behind, dead; the next start takes
// them down and deletes the copy.
func TestKillDuringInstantRestoreTest(t *testing.T) {
	t.Parallel()
	e := instantEnv(t)
	plain := e.env
	e.env = append(plain, "VIGIL_TEST_PAUSE=validate=1m")
	e.serve()
	e.backup("web")
	job := e.startTest("web", "")
	job = e.waitValidating(job.ID)
	root := filepath.Join(e.instancesDir(), job.ID)
	e.kill()
	if ms, _ := mount.Under(root); len(ms) != 2 {
		t.Fatalf("mounts after the kill: %+v, want the two the killed vigil left", ms)
	}

	e.env = plain
	e.serve()
	defer e.stop()
	job = e.waitTest(job.ID)
	if job.ValidationStatus != vigil.ValidationAborted || job.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("the killed test after the restart: %s %q, deletion %s %q", job.ValidationStatus, job.ValidationMessage, job.DeletionStatus, job.DeletionMessage)
	}
	requireNoMounts(t, root) // its retry may be mounted meanwhile
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the killed test's copy is still there: %v", err)
	}
	// Its retry runs instantly too, and is cleaned up the same way.
	retry := e.waitTest(e.retryOf(job).ID)
	if retry.ValidationStatus != vigil.ValidationSuccessful {
		t.Errorf("the retry: %s %q\n%s", retry.ValidationStatus, retry.ValidationMessage, e.logText(retry.ID))
	}
	requireNoMounts(t, e.instancesDir())
	e.requireNoLeak()
}

// TestInstantRestoreTestFallsBack: where instant copies cannot be made,
// the copy is restored in full, and the job log says so.
func TestInstantRestoreTestFallsBack(t *testing.T) {
	t.Parallel()
	e := instantEnv(t)
	e.env = append(e.env, mount.EnvOff+"=off")
	e.serve()
	defer e.stop()
	b := e.backup("web")
	job := e.waitTest(e.startTest("web", "").ID)
	log := e.logText(job.ID)
	if job.ValidationStatus != vigil.ValidationSuccessful {
		t.Fatalf("restore test: %s %q\n%s", job.ValidationStatus, job.ValidationMessage, log)
	}
	if !strings.Contains(log, "restore: instant is not possible on node") || !strings.Contains(log, "restored in full instead") ||
		strings.Contains(log, "mounted recovery point "+b.RecoveryPointID) {
		t.Errorf("the job log does not say the copy was restored in full instead:\n%s", log)
	}
	requireNoMounts(t, e.instancesDir())
	e.requireNoLeak()
}
