package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// writeFiles writes n one-byte files below dir, a hundred to a folder:
// little data, but on disk each takes a block.
func writeFiles(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%03d/f%04d", i/100, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte{'x'}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeRandom writes a file of n random bytes, which no vault compresses.
func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fill writes into dir until its disk is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			return
		}
	}
}

// A restore test on a data dir whose disk is too small: refused before it
// writes when the recovery point does not fit, FAILED naming the disk and
// its figures when it runs out of space midway, and vigil starts again on
// a disk a killed test's copy filled.
func TestFullDataDisk(t *testing.T) {
	e := newEnv(t, envOptions{extra: `  - name: big
    type: directory
    path: ./big
  - name: many
    type: directory
    path: ./many
`})
	makeTree(t, e.path("docs"))
	writeRandom(t, e.path("big/blob"), 24<<20)
	writeFiles(t, e.path("many"), 6000)
	mountTmpfs(t, e.path("vigil-data"), "16m")
	e.serve()
	e.backup("big")
	e.backup("many")
	e.backup("docs")
	mount := e.path("vigil-data")

	// Too big: refused before a byte is written, with both figures.
	var job vigil.RestoreJob
	r := e.run("restore-test", "start", "--resource", "big", "--wait", "--json")
	json.Unmarshal([]byte(r.stdout), &job)
	if r.code != 1 || job.Status != vigil.RestoreFailed || !strings.Contains(job.StatusMessage, "needs 24.0 MiB") ||
		!strings.Contains(job.StatusMessage, "free of 16.0 MiB") || !strings.Contains(job.StatusMessage, "mounted at "+mount) {
		t.Errorf("a copy that does not fit: exit %d, %s %q\n%s", r.code, job.Status, job.StatusMessage, r.stderr)
	}
	if !strings.Contains(e.logText(job.ID), "restore-tests count too") {
		t.Errorf("the refusal does not say where to free space: %s", e.logText(job.ID))
	}
	t.Logf("refused: %s", job.StatusMessage)
	e.requireNoLeak()

	// Small files that take more room than their size: the restore runs
	// out of space, and the test ends FAILED, saying where and how full.
	r = e.run("restore-test", "start", "--resource", "many", "--wait", "--json")
	json.Unmarshal([]byte(r.stdout), &job)
	if r.code != 1 || job.Status != vigil.RestoreFailed || !strings.Contains(job.StatusMessage, "no space left on device") ||
		!strings.Contains(job.StatusMessage, "mounted at "+mount) || !strings.Contains(job.StatusMessage, "free of 16.0 MiB") ||
		job.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("a copy that ran out of space: exit %d, %s, deletion %s, %q\n%s", r.code, job.Status, job.DeletionStatus, job.StatusMessage, r.stderr)
	}
	t.Logf("ran out of space: %s", job.StatusMessage)
	e.requireNoLeak()
	e.stop()

	// A test's copy fills the disk and vigil is killed: it starts again,
	// clears the copy first, and records the test's end.
	plain := e.env
	e.env = append(plain, "VIGIL_TEST_PAUSE=start=10m")
	e.serve()
	job = e.startTest("docs", "")
	waitFor(t, time.Minute, "restore test "+job.ID+" to be restored", func() bool {
		return strings.Contains(e.logText(job.ID), "before start (VIGIL_TEST_PAUSE)")
	})
	e.mustJSON(&job, "jobs", "show", job.ID)
	fill(t, job.CreatedResourceLocation)
	e.kill()
	e.env = plain
	e.serve()
	waitFor(t, time.Minute, "restore test "+job.ID+" to be finished", func() bool {
		e.mustJSON(&job, "jobs", "show", job.ID)
		return job.DeletionStatus == vigil.DeletionSuccessful
	})
	if job.ValidationStatus != vigil.ValidationAborted {
		t.Errorf("the killed test: %s %q", job.ValidationStatus, job.ValidationMessage)
	}
	e.requireNoLeak()
	e.stop()
}

// A backup into a vault whose disk is full says that the vault's write
// failed, how full its disk is, and reports no bytes stored.
func TestBackupIntoFullVault(t *testing.T) {
	e := newEnv(t, envOptions{extra: `  - name: big
    type: directory
    path: ./big
`})
	cfg, _ := os.ReadFile(e.config)
	cfg = []byte(strings.Replace(string(cfg), "vaults:\n", "vaults:\n  - name: small-vault\n    storage: ./small-vault\n    password_env: VIGIL_VAULT_PASSWORD\n", 1))
	os.WriteFile(e.config, cfg, 0o600)
	writeRandom(t, e.path("big/blob"), 24<<20)
	mountTmpfs(t, e.path("small-vault"), "4m")
	e.serve()
	var job vigil.BackupJob
	r := e.run("backup", "start", "--resource", "big", "--vault", "small-vault", "--wait", "--json")
	json.Unmarshal([]byte(r.stdout), &job)
	if r.code != 1 || job.Status != vigil.BackupFailed {
		t.Fatalf("backup into a full vault: exit %d, %+v\n%s", r.code, job, r.stderr)
	}
	if strings.Contains(job.StatusMessage, "read source") || !strings.Contains(job.StatusMessage, `storage of vault "small-vault"`) ||
		!strings.Contains(job.StatusMessage, "mounted at "+e.path("small-vault")) || !strings.Contains(job.StatusMessage, "free of 4.0 MiB") {
		t.Errorf("the message does not name the vault's write and its disk: %q", job.StatusMessage)
	}
	t.Logf("full vault: %s", job.StatusMessage)
	if job.Bytes != 0 || job.Files != 0 {
		t.Errorf("the failed backup reports %d bytes in %d files it did not store", job.Bytes, job.Files)
	}
	e.stop()
}
