package main

import (
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/treediff"
)

// makeTree writes a folder with what a backup must keep: nested folders, an
// empty folder, modes, old modification times, relative, absolute and
// dangling symlinks, an empty file and a larger file.
func makeTree(t *testing.T, root string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(rng.UintN(256))
	}
	files := []struct {
		name string
		body []byte
		mode os.FileMode
	}{
		{"README.md", []byte("# docs\n"), 0o644},
		{"guide/install.md", []byte(strings.Repeat("install vigil\n", 500)), 0o644},
		{"guide/deep/er/still.txt", []byte("deep\n"), 0o600},
		{"bin/run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
		{"data/blob.bin", big, 0o640},
		{"data/empty", nil, 0o444},
		{"name with spaces & ünïcode.txt", []byte("x"), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(root, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.body, f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, f.mode)
	}
	os.MkdirAll(filepath.Join(root, "empty-dir"), 0o700)
	os.Chmod(filepath.Join(root, "empty-dir"), 0o700)
	for link, target := range map[string]string{
		"latest":         "guide/install.md",
		"guide/up":       "..",
		"abs-link":       "/etc/hostname",
		"dangling":       "does/not/exist",
		"data/blob-link": "blob.bin",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode()&os.ModeSymlink == 0 && p != root {
			os.Chtimes(p, old, old)
		}
		return nil
	})
}

func TestBackupRestoreEndToEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	makeTree(t, e.path("docs"))
	e.serve()

	// The first start wrote the API token, readable by its owner only.
	fi, err := os.Stat(e.path("vigil-data/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("api-token mode = %v, want 0600", fi.Mode().Perm())
	}

	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "lab-vault", "--expire-days", "7", "--wait")
	if job.Status != vigil.BackupCompleted || job.RecoveryPointID == "" || job.Files != 7 || job.Bytes < 3<<20 ||
		job.PercentDone != 100 || job.ResourceType != "directory" || job.CreatedBy != "on-demand" || job.CompletedAt == nil {
		t.Fatalf("backup job = %+v", job)
	}

	var rp vigil.RecoveryPoint
	e.mustJSON(&rp, "recovery-points", "show", job.RecoveryPointID)
	if rp.Status != vigil.RecoveryPointAvailable || rp.Vault != "lab-vault" || rp.Resource != "docs" || rp.ExpireAt == nil ||
		rp.ExpireAt.Sub(rp.CreatedAt) < 7*24*time.Hour-time.Minute || rp.SizeBytes != job.Bytes {
		t.Fatalf("recovery point = %+v", rp)
	}
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list", "--resource", "docs")
	if len(rps) != 1 || rps[0].ID != rp.ID {
		t.Fatalf("recovery points = %+v", rps)
	}
	var meta map[string]string
	e.mustJSON(&meta, "recovery-points", "metadata", rp.ID)
	if !strings.HasSuffix(meta["target_path"], "/restores/{restore_job_id}") {
		t.Fatalf("restore metadata = %v", meta)
	}

	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", rp.ID, "--wait")
	if rj.Status != vigil.RestoreCompleted || rj.CreatedResourceLocation != e.path("vigil-data/restores/"+rj.ID) || rj.CreatedResourceID == "" {
		t.Fatalf("restore job = %+v", rj)
	}
	diffs, err := treediff.Compare(e.path("docs"), rj.CreatedResourceLocation, treediff.Options{ModTimes: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("restored tree differs: %s", d)
	}

	// A restore into a chosen, new folder.
	var rj2 vigil.RestoreJob
	e.mustJSON(&rj2, "restore", "start", "--recovery-point", rp.ID, "--set", "target_path="+e.path("chosen"), "--wait")
	if diffs, _ := treediff.Compare(e.path("docs"), e.path("chosen"), treediff.Options{}); len(diffs) > 0 || rj2.Status != vigil.RestoreCompleted {
		t.Errorf("restore into target_path: %+v, diffs %v", rj2, diffs)
	}

	// An unchanged second backup reuses the first one's data.
	var job2 vigil.BackupJob
	e.mustJSON(&job2, "backup", "start", "--resource", "docs", "--vault", "lab-vault", "--wait")
	if job2.Status != vigil.BackupCompleted || job2.RecoveryPointID == job.RecoveryPointID {
		t.Fatalf("second backup = %+v", job2)
	}

	var jobs []map[string]any
	e.mustJSON(&jobs, "jobs", "list")
	if len(jobs) != 4 || jobs[0]["job_type"] != "backup" {
		t.Errorf("jobs list = %v", jobs)
	}
	var backups []vigil.BackupJob
	e.mustJSON(&backups, "jobs", "list", "--type", "backup", "--status", "completed")
	if len(backups) != 2 || backups[0].ID != job2.ID {
		t.Errorf("backup jobs, newest first = %+v", backups)
	}
	out := e.mustRun("jobs", "show", rj.ID)
	if !strings.Contains(out, rj.ID) || !strings.Contains(out, "COMPLETED") {
		t.Errorf("jobs show: %s", out)
	}
	logs := e.mustRun("logs", job.ID)
	if !strings.Contains(logs, "started on node") || !strings.Contains(logs, "completed in") || !strings.Contains(logs, rp.ID) {
		t.Errorf("backup log:\n%s", logs)
	}
	logs = e.mustRun("logs", rj.ID)
	if !strings.Contains(logs, "completed in") {
		t.Errorf("restore log:\n%s", logs)
	}

	out = e.mustRun("vault", "verify", "lab-vault", "--read-data-percent", "100")
	if !strings.Contains(out, "all file contents (") || !strings.Contains(out, "no damage found") {
		t.Errorf("vault verify: %s", out)
	}
	out = e.mustRun("vault", "list")
	if !strings.Contains(out, "lab-vault") {
		t.Errorf("vault list: %s", out)
	}

	// A vault with a pack of data gone: verify says so, and exits 1.
	var packs []string
	filepath.Walk(e.path("vaults/lab-vault"), func(p string, info os.FileInfo, err error) error {
		// Kopia keeps file data in pack blobs under p/.
		if err == nil && info.Mode().IsRegular() && strings.Contains(p, "/lab-vault/p/") {
			packs = append(packs, p)
		}
		return nil
	})
	if len(packs) == 0 {
		t.Fatal("found no pack files in the vault")
	}
	for _, p := range packs {
		os.Rename(p, p+".moved")
	}
	r := e.run("vault", "verify", "lab-vault")
	if r.code != 1 || !strings.Contains(r.stdout, "damaged") || !strings.Contains(r.stderr, "lab-vault is damaged") {
		t.Errorf("verify of a damaged vault: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, p := range packs {
		os.Rename(p+".moved", p)
	}
	e.mustRun("vault", "verify", "lab-vault")

	// The API needs its token; only the health check does not.
	for path, want := range map[string]int{"/api/v1/backup-jobs": 401, "/api/v1/vaults": 401, "/healthz": 200} {
		resp, err := http.Get("http://" + e.listen + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a token: %d, want %d", path, resp.StatusCode, want)
		}
	}

	// Secrets appear in no catalog file, log line or API answer.
	token, _ := os.ReadFile(e.path("vigil-data/api-token"))
	secrets := []string{e.password, strings.TrimSpace(string(token))}
	for _, args := range [][]string{
		{"jobs", "list", "--json"}, {"recovery-points", "list", "--json"}, {"vault", "list", "--json"},
		{"logs", job.ID, "--json"}, {"logs", rj.ID, "--json"}, {"recovery-points", "metadata", rp.ID},
		{"vault", "verify", "lab-vault", "--json"},
	} {
		out := e.mustRun(args...)
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("vigil %s prints a secret", strings.Join(args, " "))
			}
		}
	}
	grepTree(t, e.path("vigil-data"), e.password)
	grepTree(t, e.path("vaults"), secrets...)
	for _, f := range []string{"vigil.db", "vigil.db-wal"} {
		b, _ := os.ReadFile(e.path("vigil-data/" + f))
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("catalog file %s holds a secret", f)
			}
		}
	}
	e.stop()
	for _, s := range secrets {
		if strings.Contains(e.serverLog.String(), s) {
			t.Errorf("server log holds a secret")
		}
	}
}

func TestBadInputEndToEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	// A second vault, so that a backup must say which.
	setConfig(t, e, "resources:\n", "  - name: offsite\n    storage: ./vaults/offsite\n    password_env: VIGIL_VAULT_PASSWORD\nresources:\n")
	makeTree(t, e.path("docs"))

	// Never started: no token yet, and the message says how to get one.
	r := e.run("jobs", "list")
	if r.code != 2 || !strings.Contains(r.stderr, "start 'vigil serve' once") {
		t.Errorf("never served: exit %d, stderr %q", r.code, r.stderr)
	}
	// Started once, now down: exit code 3.
	e.serve()
	e.stop()
	r = e.run("jobs", "list")
	if r.code != 3 || !strings.Contains(r.stderr, "cannot reach the vigil server") {
		t.Errorf("no server: exit %d, stderr %q", r.code, r.stderr)
	}
	e.serve()

	r = e.run("backup", "start", "--resource", "nope", "--vault", "lab-vault")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown resource "nope"`) || !strings.Contains(r.stderr, "docs") {
		t.Errorf("unknown resource: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("backup", "start", "--resource", "docs", "--vault", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, "lab-vault") {
		t.Errorf("unknown vault: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("backup", "start", "--resource", "docs")
	if r.code != 2 || !strings.Contains(r.stderr, "lab-vault, offsite") || !strings.Contains(r.stderr, "--vault") {
		t.Errorf("missing --vault among two vaults: exit %d, stderr %q; want 2, naming both and --vault", r.code, r.stderr)
	}
	r = e.run("jobs", "show", "bj-0000")
	if r.code != 2 || !strings.Contains(r.stderr, "no backup job bj-0000") {
		t.Errorf("unknown job: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("bogus")
	if r.code != 2 {
		t.Errorf("unknown command: exit %d", r.code)
	}
	r = e.run("jobs", "list", "--token", "wrong")
	if r.code == 0 || !strings.Contains(r.stderr, "API token") {
		t.Errorf("wrong token: exit %d, stderr %q", r.code, r.stderr)
	}

	// A missing source folder: FAILED, the path named, no recovery point.
	r = e.run("backup", "start", "--resource", "missing", "--vault", "lab-vault", "--wait", "--json")
	if r.code != 1 || !strings.Contains(r.stdout, `"FAILED"`) || !strings.Contains(r.stdout, e.path("no-such-folder")) {
		t.Errorf("missing source: exit %d, stdout %s", r.code, r.stdout)
	}
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list")
	if len(rps) != 0 {
		t.Errorf("a failed backup listed recovery points: %+v", rps)
	}

	// A restore into a folder that is not empty is refused before anything is written.
	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "lab-vault", "--wait")
	os.MkdirAll(e.path("occupied"), 0o755)
	os.WriteFile(e.path("occupied/keep.txt"), []byte("mine"), 0o644)
	before := snapshotTree(t, e.path("occupied"))
	r = e.run("restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+e.path("occupied"))
	if r.code != 2 || !strings.Contains(r.stderr, "is not empty") {
		t.Errorf("non-empty target: exit %d, stderr %q", r.code, r.stderr)
	}
	if after := snapshotTree(t, e.path("occupied")); len(after) != len(before) {
		t.Errorf("refused restore wrote into the target: %v", after)
	}
	r = e.run("restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "colour=blue")
	if r.code != 2 || !strings.Contains(r.stderr, "target_path") {
		t.Errorf("unknown metadata key: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("restore", "start", "--recovery-point", "rp-nope")
	if r.code != 2 || !strings.Contains(r.stderr, job.RecoveryPointID) {
		t.Errorf("unknown recovery point: exit %d, stderr %q (should list %s)", r.code, r.stderr, job.RecoveryPointID)
	}
	e.stop()

	// The wrong vault password: vigil refuses to start, with a clear
	// error naming the vault, and nothing written to the vault.
	vaultBefore := snapshotTree(t, e.path("vaults/lab-vault"))
	e.password = "not the password"
	code, out := e.serveRefused()
	if code != 2 || !strings.Contains(out, `vault "lab-vault"`) || !strings.Contains(out, "wrong vault password") || !strings.Contains(out, "password_env") {
		t.Errorf("wrong password: exit %d, output %s", code, out)
	}
	vaultAfter := snapshotTree(t, e.path("vaults/lab-vault"))
	if len(vaultAfter) != len(vaultBefore) {
		t.Errorf("a wrong password changed the vault: %d files before, %d after", len(vaultBefore), len(vaultAfter))
	}
	for p, v := range vaultBefore {
		if vaultAfter[p] != v {
			t.Errorf("a wrong password changed %s", p)
		}
	}
}
