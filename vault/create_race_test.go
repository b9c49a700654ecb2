package vault

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil/internal/testsvc"
)

// TestConcurrentCreate opens one new folder vault from several processes'
// worth of connections at once, as serve and its workers do on their first
// start: one creates it, the others wait and open what it made, and all
// of them can then use it.
func TestConcurrentCreate(t *testing.T) {
	storage := filepath.Join(t.TempDir(), "vault")
	testConcurrentCreate(t, func(c *Config) { c.Storage = storage })
}

// TestConcurrentCreateS3 is TestConcurrentCreate on a new S3 vault, where
// no folder can be locked.
func TestConcurrentCreateS3(t *testing.T) {
	srv := testsvc.StartS3(t)
	testConcurrentCreate(t, func(c *Config) {
		c.Storage = "s3://" + srv.Bucket + "/vaults/race"
		c.S3 = S3{Endpoint: srv.Endpoint, Insecure: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	})
	// The creation lock went with the creation.
	if _, err := srv.Client(t).StatObject(t.Context(), srv.Bucket, "vaults/race/"+s3CreateLock, minio.StatObjectOptions{}); err == nil {
		t.Errorf("the creation lock %s is left in the bucket", s3CreateLock)
	}
}

func testConcurrentCreate(t *testing.T, storage func(*Config)) {
	dir := t.TempDir()
	config := func(cache string) Config {
		c := Config{Name: "race", Password: "pw", CacheDir: filepath.Join(dir, cache)}
		storage(&c)
		return c
	}
	const n = 6
	vaults := make([]*Vault, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			vaults[i], errs[i] = Open(context.Background(), config(fmt.Sprintf("cache-%d", i)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("connection %d: %v", i, err)
			continue
		}
		defer vaults[i].Close(context.Background())
	}
	if t.Failed() {
		return
	}
	// Every connection reads the same repository: one's snapshot is
	// listed by all.
	src := t.TempDir()
	writeRandomTree(t, src, 3, 1000)
	res, err := vaults[0].Backup(context.Background(), src, BackupOptions{Resource: "docs", Description: "race"})
	if err != nil {
		t.Fatal(err)
	}
	// A connection opened afterwards reads it: the repository on disk is
	// one whole repository, not a mix of several creations.
	again, err := Open(context.Background(), config("cache-again"))
	if err != nil {
		t.Fatalf("open the vault again: %v", err)
	}
	defer again.Close(context.Background())
	snaps, err := again.Snapshots(context.Background())
	if err != nil || len(snaps) != 1 || snaps[0].ID != res.SnapshotID {
		t.Errorf("a new connection lists %+v (%v), want the one snapshot %s", snaps, err, res.SnapshotID)
	}
}
