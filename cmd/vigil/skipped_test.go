package main

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigil-backup/vigil"
)

// TestBackupSaysWhatItSkipped: a named pipe, a socket and a device file in
// a backed-up folder are left out, and the backup says so: in its job log,
// and in the recovery point's record that `recovery-points show` prints.
func TestBackupSaysWhatItSkipped(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	os.MkdirAll(e.path("docs/run"), 0o755)
	if err := syscall.Mkfifo(e.path("docs/run/queue"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", e.path("docs/run/app.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := unix.Mknod(e.path("docs/null"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	e.serve()
	job := e.backup("docs")
	if job.Status != vigil.BackupCompleted {
		t.Fatalf("backup: %+v", job)
	}

	log := e.logText(job.ID)
	if want := "skipped 3 entries that no snapshot can hold (1 character device, 1 named pipe, 1 socket): "; !strings.Contains(log, want) {
		t.Errorf("the job's log does not say %q; it is:\n%s", want, log)
	}
	for _, want := range []string{"run/queue (named pipe)", "run/app.sock (socket)", "null (character device)"} {
		if !strings.Contains(log, want) {
			t.Errorf("the job's log does not name %q; it is:\n%s", want, log)
		}
	}

	var rp vigil.RecoveryPoint
	e.mustJSON(&rp, "recovery-points", "show", job.RecoveryPointID)
	if rp.Skipped == nil || rp.Skipped.Total != 3 || rp.Skipped.ByKind["socket"] != 1 || rp.Skipped.ByKind["named pipe"] != 1 ||
		rp.Skipped.ByKind["character device"] != 1 || len(rp.Skipped.Entries) != 3 {
		t.Errorf("recovery point's skipped entries: %+v", rp.Skipped)
	}
	out := e.mustRun("recovery-points", "show", job.RecoveryPointID)
	for _, want := range []string{"skipped 3 entries that no snapshot can hold", "run/app.sock  socket", "run/queue     named pipe"} {
		if !strings.Contains(out, want) {
			t.Errorf("recovery-points show does not say %q; it printed:\n%s", want, out)
		}
	}
}
