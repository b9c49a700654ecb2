package worker

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

// TestRecordWaitsOutACatalogOutage: in a job's work, a record the
// PostgreSQL catalog was down for is written, once, when it is back;
// outside a job (an API call) it fails at once, marked unreachable.
func TestRecordWaitsOutACatalogOutage(t *testing.T) {
	pg := testsvc.StartPostgres(t)
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, pg.URL, dir)
	if err != nil {
		t.Fatalf("open catalog on the test cluster: %v", err)
	}
	t.Cleanup(func() { cat.Close() })
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)}}
	e, err := New(cfg, cat, Options{})
	if err != nil {
		t.Fatal(err)
	}
	job := vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupPending, Resource: "docs",
		ResourceType: "directory", Vault: "v", CreatedAt: time.Now().UTC()}
	insert := func(ctx context.Context) error {
		return e.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.InsertBackupJob(ctx, &job) },
			vigil.BackupJobEvent(vigil.EventBackupJobStarted, &job))
	}

	pg.Stop("fast")
	if err := insert(ctx); !errors.Is(err, catalog.ErrUnreachable) {
		t.Errorf("a record outside a job while the catalog is down: %v; want it to fail marked unreachable", err)
	}
	done := make(chan error, 1)
	go func() { done <- insert(context.WithValue(ctx, catalogWaitKey{}, true)) }()
	time.Sleep(2 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("a job's record returned while the catalog was down: %v; want it to wait", err)
	default:
	}
	pg.Start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a job's record once the catalog is back: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a job's record was not written within 30s of the catalog coming back")
	}
	if _, err := cat.GetBackupJob(ctx, job.ID); err != nil {
		t.Errorf("the job recorded after the outage: %v", err)
	}
	evs, err := cat.ListEvents(ctx, catalog.EventFilter{JobID: job.ID})
	if err != nil || len(evs) != 1 {
		t.Errorf("the job recorded after the outage has %d events (%v), want 1", len(evs), err)
	}
}
