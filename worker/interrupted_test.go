package worker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/target"
)

// TestEndInterruptedTouchesOnlyThisNode shows that a restarting node ends
// the jobs it was running when it died, and leaves alone those that another
// node on the same catalog is running.
func TestEndInterruptedTouchesOnlyThisNode(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir, Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)}}
	e, cat := newTestEngine(t, cfg)

	started := time.Now().UTC()
	mine := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupRunning, Resource: "docs",
		ResourceType: "directory", Vault: "v", Node: "node-a", StartedAt: &started}
	theirs := mine
	theirs.ID, theirs.Node = vigil.NewID(vigil.PrefixBackupJob), "node-b"
	partial := filepath.Join(dir, "partial-restore")
	myRestore := vigil.RestoreJob{ID: vigil.NewID(vigil.PrefixRestoreJob), Status: vigil.RestoreRunning, RecoveryPointID: "rp-1",
		Resource: "docs", ResourceType: "directory", Node: "node-a", StartedAt: &started,
		Metadata: map[string]string{resource.MetaTargetPath: partial}}
	// The restore had taken hold of its target, as every restore does
	// before it writes.
	if _, err := e.resources.Env().Claims.Claim(myRestore.ID, partial, target.Folder); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(partial, "half-written"), []byte("x"), 0o644)
	// Another restore of this node died before it took hold of its target,
	// which a third job holds: what is there is not its to remove.
	held := filepath.Join(dir, "held-by-another")
	if _, err := e.resources.Env().Claims.Claim("rj-another", held, target.Folder); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(held, "theirs"), []byte("x"), 0o644)
	unclaimed := myRestore
	unclaimed.ID, unclaimed.Metadata = vigil.NewID(vigil.PrefixRestoreJob), map[string]string{resource.MetaTargetPath: held}
	if err := cat.InsertRestoreJob(ctx, &unclaimed); err != nil {
		t.Fatal(err)
	}
	for _, j := range []*vigil.BackupJob{&mine, &theirs} {
		if err := cat.InsertBackupJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if err := cat.InsertRestoreJob(ctx, &myRestore); err != nil {
		t.Fatal(err)
	}

	if err := e.endInterrupted(ctx); err != nil {
		t.Fatal(err)
	}

	got, _ := cat.GetBackupJob(ctx, mine.ID)
	if got.Status != vigil.BackupAborted || !strings.Contains(got.StatusMessage, "interrupted") || got.CompletedAt == nil {
		t.Errorf("this node's backup: %s %q", got.Status, got.StatusMessage)
	}
	got, _ = cat.GetBackupJob(ctx, theirs.ID)
	if got.Status != vigil.BackupRunning {
		t.Errorf("another node's running backup was ended: %s %q", got.Status, got.StatusMessage)
	}
	rj, _ := cat.GetRestoreJob(ctx, myRestore.ID)
	if rj.Status != vigil.RestoreAborted || !strings.Contains(rj.StatusMessage, "partial files were removed") {
		t.Errorf("this node's restore: %s %q", rj.Status, rj.StatusMessage)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("the interrupted restore's partial folder is still there: %v", err)
	}
	if rj, _ := cat.GetRestoreJob(ctx, unclaimed.ID); rj.Status != vigil.RestoreAborted {
		t.Errorf("the restore that had not taken its target: %s %q", rj.Status, rj.StatusMessage)
	}
	if _, err := os.Stat(filepath.Join(held, "theirs")); err != nil {
		t.Errorf("an interrupted restore removed what another job holds: %v", err)
	}
	logs, _ := cat.Logs(ctx, mine.ID)
	if len(logs) != 1 || !strings.Contains(logs[0].Message, "ABORTED") {
		t.Errorf("the job log does not record the end: %+v", logs)
	}
}

// TestStartRequeuesThisNodesRunningJobs: a River job this node had picked
// up when its process died is "running" with nobody running it, and River
// never rescues jobs without a timeout. Start hands it back to the queue,
// and it runs; another node's running job is left alone.
func TestStartRequeuesThisNodesRunningJobs(t *testing.T) {
	ctx := context.Background()
	cfg := &config.Config{DataDir: t.TempDir(), Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)}}
	e, cat := newTestEngine(t, cfg)
	// Two deliveries to a notification that is not configured: running it
	// records a FAILED delivery, which shows that it ran.
	for seq, node := range map[int64]string{1: "node-a", 2: "node-b"} {
		err := cat.InTx(ctx, func(tx *catalog.Tx) error {
			return e.insertTx(ctx, tx, DeliverArgs{Seq: seq, Notification: "gone"}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cat.SQLDB().ExecContext(ctx, `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = ?,
			attempted_by = jsonb(json_array(?)) WHERE kind = 'vigil.deliver' AND args ->> '$.seq' = ?`,
			time.Now().UTC().Format("2006-01-02 15:04:05.000"), node, seq)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := cat.ListDeliveries(ctx, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) > 0 {
			if len(ds) != 1 || ds[0].EventSeq != 1 || ds[0].Status != vigil.DeliveryFailed || !strings.Contains(ds[0].LastError, "no longer configured") {
				t.Fatalf("deliveries: %+v", ds)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("this node's stranded job never ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if ds, _ := cat.ListDeliveries(ctx, 2, 2); len(ds) != 0 {
		t.Errorf("another node's running job was run here: %+v", ds)
	}
}

// newTestEngine opens a SQLite catalog in cfg.DataDir and builds an engine
// on it; both are closed when the test ends.
func newTestEngine(t *testing.T, cfg *config.Config) (*Engine, *catalog.Catalog) {
	t.Helper()
	cat, err := catalog.Open(context.Background(), "", cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e, err := New(cfg, cat, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e, cat
}
