package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
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

// makeLargeTree writes n files of size bytes of random data, so that a
// backup of it takes long enough to be interrupted or overlapped.
func makeLargeTree(t *testing.T, root string, n, size int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		for j := 0; j+8 <= len(buf); j += 8 {
			binary.LittleEndian.PutUint64(buf[j:], rng.Uint64())
		}
		p := filepath.Join(root, fmt.Sprintf("part-%03d/file-%03d.bin", i%7, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func TestKillDuringBackup(t *testing.T) {
	e := newEnv(t, envOptions{})
	makeLargeTree(t, e.path("docs"), 40, 8<<20)
	e.serve()

	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "lab-vault")
	waitFor(t, 30*time.Second, "the backup to run", func() bool {
		e.mustJSON(&job, "jobs", "show", job.ID)
		return job.Status == vigil.BackupRunning
	})
	time.Sleep(700 * time.Millisecond) // into the upload
	e.kill()

	e.serve()
	e.mustJSON(&job, "jobs", "show", job.ID)
	if job.Status != vigil.BackupAborted || !strings.Contains(job.StatusMessage, "interrupted") || job.CompletedAt == nil {
		t.Fatalf("after a kill -9 and a restart, the job is %s %q; want ABORTED, saying it was interrupted", job.Status, job.StatusMessage)
	}
	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list")
	if len(rps) != 0 {
		t.Fatalf("the interrupted backup listed a recovery point: %+v", rps)
	}
	out := e.mustRun("vault", "verify", "lab-vault", "--read-data-percent", "100")
	if !strings.Contains(out, "no damage found") {
		t.Errorf("vault verify after the kill: %s", out)
	}

	// The vault goes on working: a new backup completes and restores.
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "lab-vault", "--wait")
	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", job.RecoveryPointID, "--wait")
	if diffs, err := treediff.Compare(e.path("docs"), rj.CreatedResourceLocation, treediff.Options{ModTimes: true}); err != nil || len(diffs) > 0 {
		t.Errorf("restore after the crash: %v %v", err, diffs)
	}
	e.mustRun("vault", "verify", "lab-vault")

	// A kill -9 during a restore: on restart the restore ends ABORTED and
	// its partial files are gone.
	target := e.path("restore-killed")
	e.mustJSON(&rj, "restore", "start", "--recovery-point", job.RecoveryPointID, "--set", "target_path="+target)
	waitFor(t, 30*time.Second, "the restore to run", func() bool {
		e.mustJSON(&rj, "jobs", "show", rj.ID)
		return rj.Status == vigil.RestoreRunning
	})
	e.kill()
	e.serve()
	e.mustJSON(&rj, "jobs", "show", rj.ID)
	if rj.Status != vigil.RestoreAborted || !strings.Contains(rj.StatusMessage, "interrupted") {
		t.Fatalf("after a kill -9 during a restore, the job is %s %q; want ABORTED, interrupted", rj.Status, rj.StatusMessage)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the interrupted restore left %s behind (stat: %v)", target, err)
	}
}

func TestBackupPlanAndLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{extra: `lifecycle:
  check_interval: 1s
backup_plans:
  - name: every-second
    schedule: "* * * * * *"
    resources: ["docs"]
    vault: lab-vault
    expire_after: 6s
`})
	makeLargeTree(t, e.path("docs"), 24, 8<<20)
	e.serve()

	// The plan starts backups by itself, never two of one resource at a
	// time, and logs the runs it skipped.
	var skipped bool
	var completed []vigil.BackupJob
	waitFor(t, 90*time.Second, "two planned backups and a logged skip", func() bool {
		var jobs []vigil.BackupJob
		e.mustJSON(&jobs, "jobs", "list", "--type", "backup")
		unfinished := 0
		completed = completed[:0]
		for _, j := range jobs {
			if j.CreatedBy != "every-second" {
				t.Fatalf("a planned job says created_by %q", j.CreatedBy)
			}
			if !j.Status.Final() {
				unfinished++
			}
			if j.Status == vigil.BackupCompleted {
				completed = append(completed, j)
			}
			if !skipped && strings.Contains(e.mustRun("logs", j.ID), "plan every-second: skipped a scheduled backup") {
				skipped = true
			}
		}
		if unfinished > 1 {
			t.Fatalf("the plan started %d backups of one resource at once", unfinished)
		}
		return len(completed) >= 2 && skipped
	})
	e.stop()
	if n := dirSize(t, e.path("vaults/lab-vault")); n < 150<<20 {
		t.Fatalf("the vault holds %d bytes after the planned backups; want the 192 MiB backed up", n)
	}

	// Expiry: with the plan gone, every recovery point expires within a few
	// check intervals, going through DELETING, and the vault holds none.
	os.WriteFile(e.config, []byte(strings.SplitN(string(must(os.ReadFile(e.config))), "backup_plans:", 2)[0]), 0o600)
	e.serve()
	waitFor(t, 60*time.Second, "every recovery point to expire", func() bool {
		var rps []vigil.RecoveryPoint
		e.mustJSON(&rps, "recovery-points", "list")
		for _, rp := range rps {
			if rp.Status != vigil.RecoveryPointExpired {
				return false
			}
		}
		return len(rps) >= 2
	})
	out := e.mustRun("vault", "verify", "lab-vault", "--json")
	if !strings.Contains(out, `"snapshots": 0`) {
		t.Errorf("expired recovery points are still in the vault: %s", out)
	}
	// Maintenance then gives the space back: the vault held 192 MiB of
	// random data.
	waitFor(t, 60*time.Second, "maintenance to reclaim the expired data", func() bool {
		return dirSize(t, e.path("vaults/lab-vault")) < 8<<20
	})
	logs := e.mustRun("logs", completed[0].ID)
	if !strings.Contains(logs, "expired") {
		t.Errorf("the backup job's log does not tell of the expiry:\n%s", logs)
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestPostgresCatalog runs vigil on a PostgreSQL catalog, in a schema of its
// own, so that the scale-out catalog is exercised end to end.
func TestPostgresCatalog(t *testing.T) {
	catalogURL, schema, conn := postgresSchema(t)
	ctx := context.Background()

	e := newEnv(t, envOptions{catalog: catalogURL})
	makeTree(t, e.path("docs"))
	e.mustRun("migrate") // serve on PostgreSQL migrates only when asked
	e.serve()
	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "lab-vault", "--wait")
	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", job.RecoveryPointID, "--wait")
	if diffs, err := treediff.Compare(e.path("docs"), rj.CreatedResourceLocation, treediff.Options{ModTimes: true}); err != nil || len(diffs) > 0 {
		t.Errorf("restore on a PostgreSQL catalog: %v %v", err, diffs)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".vigil_backup_job").Scan(&n); err != nil || n != 1 {
		t.Errorf("backup jobs in the PostgreSQL schema: %d, %v", n, err)
	}

	// A restore test, its events in order, and a restart that finds the
	// River jobs this node left running (none here) on PostgreSQL too.
	var test vigil.RestoreJob
	e.mustJSON(&test, "restore-test", "start", "--resource", "docs", "--wait")
	if test.ValidationStatus != vigil.ValidationSuccessful || test.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("restore test on a PostgreSQL catalog: %+v", test)
	}
	var page api.EventPage
	e.mustJSON(&page, "events", "list")
	var types []vigil.EventType
	for _, ev := range page.Events {
		types = append(types, ev.Type)
	}
	want := []vigil.EventType{vigil.EventBackupJobStarted, vigil.EventBackupJobCompleted, vigil.EventRestoreJobStarted,
		vigil.EventRestoreJobCompleted, vigil.EventRestoreJobStarted, vigil.EventRestoreJobCompleted, vigil.EventRestoreTestStatus}
	if !slices.Equal(types, want) {
		t.Errorf("events on PostgreSQL: %v, want %v", types, want)
	}
	e.stop()
	e.serve()
	e.stop()
}
