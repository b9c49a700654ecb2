package worker

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// TestLongKindsQueuedOncePerJob: a backup, restore or restore test queued
// again while its River job lives (a retried call, a rescue) adds no
// second River job, so it can never run twice at once; each kind goes
// to its own queue.
func TestLongKindsQueuedOncePerJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)}}
	e, cat := newTestEngine(t, cfg) // not started: the jobs stay queued
	queue := func(args interface{ Kind() string }) {
		t.Helper()
		for range 2 {
			err := cat.InTx(ctx, func(tx *catalog.Tx) error {
				switch a := args.(type) {
				case BackupArgs:
					return e.insertTx(ctx, tx, a, nil)
				case RestoreArgs:
					return e.insertTx(ctx, tx, a, nil)
				case RestoreTestArgs:
					return e.insertTx(ctx, tx, a, nil)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	queue(BackupArgs{JobID: "bj-1"})
	queue(BackupArgs{JobID: "bj-2"})
	queue(RestoreArgs{JobID: "rj-1"})
	queue(RestoreTestArgs{JobID: "rj-2"})
	for _, want := range []struct{ kind, queue string }{
		{"vigil.backup", queueBackup}, {"vigil.restore", queueRestore}, {"vigil.restore-test", queueRestoreTest},
	} {
		rows, err := cat.SQLDB().QueryContext(ctx, `SELECT queue, args ->> '$.job_id' FROM river_job WHERE kind = ?`, want.kind)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for rows.Next() {
			var q, id string
			if err := rows.Scan(&q, &id); err != nil {
				t.Fatal(err)
			}
			if q != want.queue {
				t.Errorf("%s job %s queued in %q, want %q", want.kind, id, q, want.queue)
			}
			seen[id]++
		}
		rows.Close()
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s job %s has %d River jobs after being queued twice, want 1", want.kind, id, n)
			}
		}
		if want.kind == "vigil.backup" && len(seen) != 2 {
			t.Errorf("two backup jobs queued twice each give River jobs for %v, want bj-1 and bj-2", seen)
		}
	}
}
