package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/treediff"
)

// TestBrowseEndToEnd: the files of a real backup are listed, one of them
// written out byte for byte, two backups compared after files were
// added, removed and changed, and one file and one folder restored alone
// into a target, each equal to what was backed up.
func TestBrowseEndToEnd(t *testing.T) {
	e := newEnv(t, envOptions{extra: `  - name: appdb
    type: sqlite
    path: ./app.db
`})
	makeTree(t, e.path("docs"))
	lite := sqlDB(t, "sqlite", "file:"+e.path("app.db"))
	execAll(t, lite, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`, `INSERT INTO notes (body) VALUES ('browse me')`)
	lite.Close()
	e.serve()

	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "lab-vault", "--wait")
	if job.Status != vigil.BackupCompleted {
		t.Fatalf("backup = %+v", job)
	}
	rp := job.RecoveryPointID

	// ls of the root, as ls -l would show it.
	out := e.mustRun("recovery-points", "ls", rp)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var got []string
	for _, l := range lines {
		f := strings.Fields(l)
		got = append(got, f[0]+" "+strings.Join(f[4:], " "))
	}
	want := []string{
		"-rw-r--r-- README.md",
		"Lrwxrwxrwx abs-link -> /etc/hostname",
		"drwxr-xr-x bin",
		"Lrwxrwxrwx dangling -> does/not/exist",
		"drwxr-xr-x data",
		"drwx------ empty-dir",
		"drwxr-xr-x guide",
		"Lrwxrwxrwx latest -> guide/install.md",
		"-rw-r--r-- name with spaces & ünïcode.txt",
	}
	// Link modes are what the system gave them; only their type is ours.
	for i := range got {
		if strings.HasPrefix(got[i], "L") {
			got[i] = "Lrwxrwxrwx" + got[i][10:]
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ls %s:\n%s\nwant (mode, name):\n%s", rp, out, strings.Join(want, "\n"))
	}
	if !strings.Contains(out, "2021-03-04") || !strings.Contains(lines[0], " 7 ") {
		t.Errorf("ls does not show README.md's 7 bytes and 2021 time:\n%s", out)
	}

	// A subfolder, in JSON, and recursively.
	var l api.FileListing
	e.mustJSON(&l, "recovery-points", "ls", rp, "guide")
	var paths []string
	for _, f := range l.Entries {
		paths = append(paths, f.Path+":"+f.Type)
	}
	if strings.Join(paths, " ") != "guide/deep:dir guide/install.md:file guide/up:symlink" || l.Path != "guide" {
		t.Errorf("ls guide --json = %+v", l)
	}
	out = e.mustRun("recovery-points", "ls", "-r", rp, "guide")
	if !strings.Contains(out, " deep/er/still.txt\n") || !strings.Contains(out, "-rw------- ") {
		t.Errorf("ls -r guide:\n%s", out)
	}

	// dump gives the binary file back byte for byte.
	blob, err := os.ReadFile(e.path("docs/data/blob.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if out := e.mustRun("recovery-points", "dump", rp, "data/blob.bin"); out != string(blob) {
		t.Errorf("dump data/blob.bin: %d bytes, not the %d backed up", len(out), len(blob))
	}

	// Paths are confined, and a wrong one is named.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ls", rp, "../vaults"}, `holds ".."`},
		{[]string{"ls", rp, "/etc"}, "is absolute"},
		{[]string{"ls", rp, "guide/nope"}, `no "guide/nope"`},
		{[]string{"dump", rp, "guide"}, "is a folder, not a file"},
		{[]string{"dump", rp, "../../etc/passwd"}, `holds ".."`},
	} {
		r := e.run(append([]string{"recovery-points"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("vigil recovery-points %s: exit %d, stdout %q, stderr %q; want exit 2 saying %q", strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.want)
		}
	}

	// Partial restores: one file, then one folder, each at its path
	// below its target and nothing else there.
	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", rp, "--path", "guide/deep/er/still.txt", "--set", "target_path="+e.path("one-file"), "--wait")
	if rj.Status != vigil.RestoreCompleted || rj.Metadata["path"] != "guide/deep/er/still.txt" {
		t.Fatalf("restore of one file = %+v", rj)
	}
	onlyHolds(t, e.path("one-file"), "guide", "guide/deep", "guide/deep/er", "guide/deep/er/still.txt")
	if diffs, err := treediff.Compare(e.path("docs/guide/deep/er"), e.path("one-file/guide/deep/er"), treediff.Options{ModTimes: true}); err != nil || len(diffs) > 0 {
		t.Errorf("restored file differs: %v %v", diffs, err)
	}
	e.mustJSON(&rj, "restore", "start", "--recovery-point", rp, "--path", "guide", "--set", "target_path="+e.path("one-folder"), "--wait")
	if rj.Status != vigil.RestoreCompleted {
		t.Fatalf("restore of one folder = %+v", rj)
	}
	if diffs, err := treediff.Compare(e.path("docs/guide"), e.path("one-folder/guide"), treediff.Options{ModTimes: true}); err != nil || len(diffs) > 0 {
		t.Errorf("restored folder differs: %v %v", diffs, err)
	}
	onlyHolds(t, e.path("one-folder"), "guide", "guide/deep", "guide/deep/er", "guide/deep/er/still.txt", "guide/install.md", "guide/up")
	if fi, err := os.Stat(e.path("one-folder/guide")); err != nil || !fi.ModTime().Equal(time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)) {
		t.Errorf("restored folder's time: %v %v", fi.ModTime(), err)
	}
	// A path the recovery point does not hold queues nothing.
	if r := e.run("restore", "start", "--recovery-point", rp, "--path", "guide/nope"); r.code != 2 || !strings.Contains(r.stderr, `no "guide/nope"`) {
		t.Errorf("restore of a missing path: exit %d, %s", r.code, r.stderr)
	}

	// A second backup after adding, removing and changing files.
	os.WriteFile(e.path("docs/README.md"), []byte("# docs, revised\n"), 0o644)
	os.Chmod(e.path("docs/bin/run.sh"), 0o700)
	os.RemoveAll(e.path("docs/guide/deep"))
	os.Remove(e.path("docs/dangling"))
	os.MkdirAll(e.path("docs/notes"), 0o755)
	os.WriteFile(e.path("docs/notes/todo.txt"), []byte("add browsing\n"), 0o644)
	var job2 vigil.BackupJob
	e.mustJSON(&job2, "backup", "start", "--resource", "docs", "--vault", "lab-vault", "--wait")
	if job2.Status != vigil.BackupCompleted {
		t.Fatalf("second backup = %+v", job2)
	}
	out = e.mustRun("recovery-points", "diff", rp, job2.RecoveryPointID)
	wantDiff := `M README.md (contents, time)
M bin/run.sh (mode)
- dangling
- guide/deep
- guide/deep/er
- guide/deep/er/still.txt
+ notes
+ notes/todo.txt
2 added, 4 removed, 2 changed
`
	if out != wantDiff {
		t.Errorf("diff:\n%s\nwant:\n%s", out, wantDiff)
	}
	var d api.RecoveryPointDiff
	e.mustJSON(&d, "recovery-points", "diff", rp, job2.RecoveryPointID)
	if len(d.Changes) != 8 || d.Changes[7].Path != "notes/todo.txt" || d.Changes[7].Size != 13 {
		t.Errorf("diff --json = %+v", d)
	}
	// A database's recovery point holds its dump: ls says so, dump
	// writes it out, and it is not restored in part nor compared with
	// another resource's.
	var dbJob vigil.BackupJob
	e.mustJSON(&dbJob, "backup", "start", "--resource", "appdb", "--vault", "lab-vault", "--wait")
	r := e.run("recovery-points", "ls", dbJob.RecoveryPointID)
	if r.code != 0 || !strings.Contains(r.stderr, "holds a dump of database \"app.db\"") || !strings.Contains(r.stderr, "dump "+dbJob.RecoveryPointID+" database.sqlite'") || strings.Count(r.stdout, "\n") != 1 || !strings.HasPrefix(r.stdout, "-rw------- ") {
		t.Errorf("ls of a database recovery point: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.mustJSON(&l, "recovery-points", "ls", dbJob.RecoveryPointID)
	if len(l.Entries) != 1 || l.Note == "" {
		t.Fatalf("ls --json of a database recovery point = %+v", l)
	}
	if dump := e.mustRun("recovery-points", "dump", dbJob.RecoveryPointID, l.Entries[0].Path); int64(len(dump)) != l.Entries[0].Size || !strings.Contains(dump, "browse me") {
		t.Errorf("dump of %s: %d bytes, listed %d", l.Entries[0].Path, len(dump), l.Entries[0].Size)
	}
	if r := e.run("restore", "start", "--recovery-point", dbJob.RecoveryPointID, "--path", l.Entries[0].Path); r.code != 2 || !strings.Contains(r.stderr, "cannot be restored in part") {
		t.Errorf("partial restore of a database: exit %d, %s", r.code, r.stderr)
	}
	if r := e.run("recovery-points", "diff", rp, dbJob.RecoveryPointID); r.code != 2 || !strings.Contains(r.stderr, "compare two recovery points of one resource") {
		t.Errorf("diff of two resources: exit %d, %s", r.code, r.stderr)
	}

	// A recovery point against itself has nothing to show.
	if out := e.mustRun("recovery-points", "diff", job2.RecoveryPointID, job2.RecoveryPointID); out != "0 added, 0 removed, 0 changed\n" {
		t.Errorf("diff of a point with itself: %q", out)
	}
}

// onlyHolds fails unless dir holds exactly the paths want.
func onlyHolds(t *testing.T, dir string, want ...string) {
	t.Helper()
	var got []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, rel)
		}
		return nil
	})
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}
