package catalog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

// TestPostgresUnreachableIsMarked: a transaction that fails because the
// PostgreSQL server is down, or went down in its middle, is marked
// ErrUnreachable, and runs as a whole once the server is back; a
// transaction that fails for its own reasons is not marked.
func TestPostgresUnreachableIsMarked(t *testing.T) {
	pg := testsvc.StartPostgres(t)
	ctx := context.Background()
	c, err := catalog.Open(ctx, pg.URL, t.TempDir())
	if err != nil {
		t.Fatalf("open catalog on the test cluster: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	job := func() *vigil.BackupJob {
		return &vigil.BackupJob{ID: vigil.NewID(vigil.PrefixBackupJob), Status: vigil.BackupPending, Resource: "docs",
			ResourceType: "directory", Vault: "v", CreatedAt: time.Now().UTC()}
	}

	dup := job()
	if err := c.InsertBackupJob(ctx, dup); err != nil {
		t.Fatal(err)
	}
	err = c.InTx(ctx, func(tx *catalog.Tx) error { return tx.InsertBackupJob(ctx, dup) })
	if err == nil || errors.Is(err, catalog.ErrUnreachable) {
		t.Errorf("inserting a job twice: %v; want an error not marked unreachable", err)
	}

	pg.Stop("fast")
	down := job()
	err = c.InTx(ctx, func(tx *catalog.Tx) error { return tx.InsertBackupJob(ctx, down) })
	if !errors.Is(err, catalog.ErrUnreachable) {
		t.Errorf("a transaction on a stopped server: %v; want it marked unreachable", err)
	}
	pg.Start()
	if err := c.InTx(ctx, func(tx *catalog.Tx) error { return tx.InsertBackupJob(ctx, down) }); err != nil {
		t.Errorf("the same transaction once the server is back: %v", err)
	}

	// The server goes away in the middle of a transaction: nothing of it
	// is committed.
	mid := job()
	err = c.InTx(ctx, func(tx *catalog.Tx) error {
		if err := tx.InsertBackupJob(ctx, mid); err != nil {
			return err
		}
		pg.Stop("immediate")
		_, err := tx.GetBackupJob(ctx, mid.ID)
		return err
	})
	if !errors.Is(err, catalog.ErrUnreachable) {
		t.Errorf("a transaction whose server stopped in its middle: %v; want it marked unreachable", err)
	}
	pg.Start()
	if _, err := c.GetBackupJob(ctx, mid.ID); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("the job of the broken transaction: %v; want it not in the catalog", err)
	}
}
