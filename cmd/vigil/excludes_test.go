package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// TestBackupExcludes: a folder resource's exclude rules, each kind, leave
// their entries out of the recovery point: patterns, a folder holding
// .nobackup, a tmpfs mounted inside the folder (one_file_system), a 2 GiB
// file (exclude_larger_than: 1GiB). The job's log counts them by rule, the
// restore test of the recovery point is SUCCESSFUL (its checksum compares
// the copy with the snapshot, which has no excluded file to miss), and a
// plain restore brings back everything but them.
func TestBackupExcludes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, `  - name: site
    type: directory
    path: ./site
    exclude: ["*.tmp", "node_modules/", "cache/**"]
    exclude_if_present: .nobackup
    one_file_system: true
    exclude_larger_than: 1GiB
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [site]
    validation_window: 30s
`)
	files := map[string]string{
		"index.html":                 "<h1>kept</h1>",
		"upload-3f2a.tmp":            "excluded by *.tmp",
		"assets/app.js":              "kept",
		"assets/build/app.js.tmp":    "excluded by *.tmp",
		"node_modules/left-pad/x.js": "excluded with node_modules/",
		"cache/page-1":               "excluded by cache/**",
		"cache/thumbs/a.png":         "excluded with cache/thumbs",
		"scratch/.nobackup":          "",
		"scratch/notes.txt":          "excluded with scratch/",
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(e.path("site/"+p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.path("site/"+p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A 2 GiB file takes no room when sparse; excluded, it is never read.
	if err := os.WriteFile(e.path("site/video.raw"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(e.path("site/video.raw"), 2<<30); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, e.path("site/mnt"), "1m")
	if err := os.WriteFile(e.path("site/mnt/on-tmpfs.txt"), []byte("another file system"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.serve()

	job := e.backup("site")
	if job.Status != vigil.BackupCompleted {
		t.Fatalf("backup: %+v\nlog:\n%s", job, e.logText(job.ID))
	}
	if job.Files != 2 {
		t.Errorf("backup has %d files, want 2 (index.html, assets/app.js)", job.Files)
	}
	log := e.logText(job.ID)
	want := "excluded 8 entries by the resource's exclude rules (5 by pattern, 1 folder holding .nobackup, 1 on another file system, 1 larger than 1.0 GiB; 2.0 GiB of files): "
	if !strings.Contains(log, want) {
		t.Errorf("the job's log does not say %q; it is:\n%s", want, log)
	}
	for _, p := range []string{"upload-3f2a.tmp", "assets/build/app.js.tmp", "node_modules", "cache/page-1", "cache/thumbs", "scratch", "mnt", "video.raw"} {
		if !strings.Contains(log, " "+p+",") && !strings.Contains(log, " "+p+";") {
			t.Errorf("the job's log does not name excluded %s; it is:\n%s", p, log)
		}
	}
	if strings.Contains(log, "skipped") {
		t.Errorf("excluded entries are not skipped ones; the log is:\n%s", log)
	}

	test := e.waitTest(e.testOf(job.RecoveryPointID).ID)
	if test.ValidationStatus != vigil.ValidationSuccessful {
		t.Errorf("restore test of an excluding backup: %s %s\nlog:\n%s", test.ValidationStatus, test.StatusMessage, e.logText(test.ID))
	}

	target := e.path("restored")
	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+target)
	if rj = e.waitRestore(rj.ID); rj.Status != vigil.RestoreCompleted {
		t.Fatalf("restore: %+v", rj)
	}
	var restored []string
	if err := filepath.WalkDir(target, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(target, p)
			restored = append(restored, rel)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(restored)
	if want := []string{"assets/app.js", "index.html"}; !slices.Equal(restored, want) {
		t.Errorf("restored files %v, want only %v", restored, want)
	}
}

// TestBackupHooks: before_backup and after_backup run around each backup
// in the resource's folder, with the job in their environment and their
// output in the job's log. A before hook's file is in the backup (the
// flush an application-consistent backup needs); a failing before hook
// fails the backup with its output, and a hanging one is killed with what
// it started at its timeout; the after hook runs either way and is told
// how the backup ended; a failing after hook is reported but leaves a
// COMPLETED backup COMPLETED.
func TestBackupHooks(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, `  - name: app-data
    type: directory
    path: ./app-data
    before_backup: {run: ["./flush.sh"], timeout: 10s}
    after_backup: {run: ["./after.sh", "app-data"], env: {GREETING: hello}}
  - name: not-flushed
    type: directory
    path: ./app-data
    before_backup: {run: ["sh", "-c", "echo 'database is locked' >&2; exit 3"]}
    after_backup: {run: ["./after.sh", "not-flushed"]}
  - name: hanging
    type: directory
    path: ./app-data
    before_backup: {run: ["sh", "-c", "sleep 300 & echo $! > ../hang.pid; echo waiting; wait"], timeout: 1s}
    after_backup: {run: ["./after.sh", "hanging"]}
  - name: after-fails
    type: directory
    path: ./app-data
    after_backup: {run: ["sh", "-c", "echo cannot thaw; exit 1"]}
  - name: notes-db
    type: sqlite
    path: ./db/notes.db
    before_backup: {run: ["./after.sh", "notes-db"]}
`)
	if err := os.MkdirAll(e.path("app-data"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(e.path("app-data/data.db"), []byte("rows"), 0o644)
	os.MkdirAll(e.path("db"), 0o755)
	execAll(t, sqlDB(t, "sqlite", "file:"+e.path("db/notes.db")), `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`, `INSERT INTO notes (body) VALUES ('one')`)
	writeScript(t, e.path("flush.sh"), `echo "flushing $VIGIL_RESOURCE for $VIGIL_BACKUP_JOB_ID"
echo "flushed at backup $VIGIL_BACKUP_JOB_ID" > flushed.txt
`)
	writeScript(t, e.path("after.sh"), `env | grep -E '^(VIGIL_|GREETING=)' | sort > "../after-$1.env"
echo "pwd=$(pwd)" >> "../after-$1.env"
echo "after ran with $VIGIL_BACKUP_STATUS"
`)
	e.serve()

	// before and after
	{
		job := e.backup("app-data")
		if job.Status != vigil.BackupCompleted || job.StatusMessage != "" {
			t.Fatalf("backup: %+v\nlog:\n%s", job, e.logText(job.ID))
		}
		log := e.logText(job.ID)
		for _, want := range []string{
			"before_backup: flushing app-data for " + job.ID,
			"before_backup " + e.path("flush.sh") + ": exit status 0 in ",
			"after_backup: after ran with COMPLETED",
			"after_backup " + e.path("after.sh") + ": exit status 0 in ",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("the job's log does not say %q; it is:\n%s", want, log)
			}
		}
		if strings.Index(log, "before_backup: flushing") > strings.Index(log, "after_backup: after ran") {
			t.Errorf("the after hook ran before the before hook:\n%s", log)
		}
		env := readFile(t, e.path("after-app-data.env"))
		for _, want := range []string{"VIGIL_RESOURCE=app-data\n", "VIGIL_BACKUP_JOB_ID=" + job.ID + "\n", "VIGIL_BACKUP_STATUS=COMPLETED\n", "GREETING=hello\n", "pwd=" + e.path("app-data") + "\n"} {
			if !strings.Contains(env, want) {
				t.Errorf("the after hook's environment lacks %q; it is:\n%s", want, env)
			}
		}

		// The file the before hook wrote is in the recovery point.
		target := e.path("restored-app-data")
		var rj vigil.RestoreJob
		e.mustJSON(&rj, "restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+target)
		if rj = e.waitRestore(rj.ID); rj.Status != vigil.RestoreCompleted {
			t.Fatalf("restore: %+v", rj)
		}
		if got := readFile(t, filepath.Join(target, "flushed.txt")); got != "flushed at backup "+job.ID+"\n" {
			t.Errorf("flushed.txt in the recovery point holds %q, want the before hook's flush of this backup", got)
		}
	}

	// failing before hook
	{
		job := e.failedBackup("not-flushed")
		if job.Status != vigil.BackupFailed || job.RecoveryPointID != "" {
			t.Fatalf("backup: %+v, want FAILED without a recovery point", job)
		}
		for _, want := range []string{"before_backup sh failed: exit status 3 (output ends: database is locked); the backup did not start"} {
			if !strings.Contains(job.StatusMessage, want) {
				t.Errorf("message %q does not say %q", job.StatusMessage, want)
			}
		}
		if log := e.logText(job.ID); !strings.Contains(log, "before_backup: database is locked") {
			t.Errorf("the job's log lacks the hook's output:\n%s", log)
		}
		if env := readFile(t, e.path("after-not-flushed.env")); !strings.Contains(env, "VIGIL_BACKUP_STATUS=FAILED\n") {
			t.Errorf("the after hook did not run on a failed backup, or was not told: %s", env)
		}
	}

	// hanging before hook
	{
		start := time.Now()
		job := e.failedBackup("hanging")
		if job.Status != vigil.BackupFailed || !strings.Contains(job.StatusMessage, "before_backup sh failed: still running after its timeout of 1s: its processes were killed (output ends: waiting)") {
			t.Fatalf("backup: %s %q, want FAILED at the hook's timeout", job.Status, job.StatusMessage)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("the backup took %s: the hook was not stopped at its timeout", took)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, e.path("hang.pid"))))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("the hook's background process %d outlived its timeout", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if env := readFile(t, e.path("after-hanging.env")); !strings.Contains(env, "VIGIL_BACKUP_STATUS=FAILED\n") {
			t.Errorf("the after hook did not run after a hanging before hook: %s", env)
		}
	}

	// failing after hook
	{
		job := e.backup("after-fails")
		if job.Status != vigil.BackupCompleted || job.RecoveryPointID == "" {
			t.Fatalf("backup: %+v, want COMPLETED: the snapshot is good", job)
		}
		if want := "the backup completed, then after_backup sh failed: exit status 1 (output ends: cannot thaw)"; job.StatusMessage != want {
			t.Errorf("message %q, want %q", job.StatusMessage, want)
		}
	}

	// A database resource's hook runs in the folder of its file.
	{
		job := e.backup("notes-db")
		if job.Status != vigil.BackupCompleted {
			t.Fatalf("backup: %+v\nlog:\n%s", job, e.logText(job.ID))
		}
		env := readFile(t, e.path("after-notes-db.env"))
		for _, want := range []string{"VIGIL_RESOURCE=notes-db\n", "VIGIL_BACKUP_JOB_ID=" + job.ID + "\n", "pwd=" + e.path("db") + "\n"} {
			if !strings.Contains(env, want) {
				t.Errorf("the sqlite resource's hook environment lacks %q; it is:\n%s", want, env)
			}
		}
	}
}

// failedBackup runs a backup of resource that must fail.
func (e *testEnv) failedBackup(resource string) vigil.BackupJob {
	e.t.Helper()
	r := e.run("backup", "start", "--resource", resource, "--vault", "lab-vault", "--wait", "--json")
	var job vigil.BackupJob
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || r.code == 0 {
		e.t.Fatalf("backup of %s: exit %d, %v\nstdout: %s\nstderr: %s", resource, r.code, err, r.stdout, r.stderr)
	}
	return job
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// alive reports whether process pid runs, a zombie not counting.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}
