package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil/internal/testsvc"
)

// makeSmallFiles writes n small files of random bytes into folders of 25,
// as a source tree of many small files is.
func makeSmallFiles(t *testing.T, dir string, n int) {
	t.Helper()

	rnd := rand.New(rand.NewPCG(3, 4))

	for i := range n {
		data := make([]byte, 500+rnd.IntN(3000))
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}

		p := filepath.Join(dir, fmt.Sprintf("d%02d", i/25), fmt.Sprintf("f%03d", i))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, data, 0o644))
	}
}

// packObjects lists the vault's pack objects in the bucket ("p" and "q"
// blobs), with their sizes.
func packObjects(t *testing.T, srv *testsvc.S3) map[string]int64 {
	t.Helper()

	packs := map[string]int64{}

	for o := range srv.Client(t).ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Prefix: "vaults/test/", Recursive: true}) {
		must(t, o.Err)

		if name := strings.TrimPrefix(o.Key, "vaults/test/"); isPack(blob.ID(name)) {
			packs[name] = o.Size
		}
	}

	return packs
}

// A restore from an S3 vault reads each pack whole once it needs a second
// range of it, rather than making a request per file: 400 small files in
// a few packs take a few GETs, not 400, and so do a comparison of every file
// and a verify of all the data. With a budget smaller than any pack, it
// reads range by range as before, and restores the same tree.
func TestS3RestoreReadsEachPackOnce(t *testing.T) {
	t.Parallel()

	const files = 400

	for _, tc := range []struct {
		name   string
		budget int64
		// most GETs the restore may make, given the vault's packs
		most func(packs int) int
	}{
		// a first range and a whole read per pack, and the snapshot's
		// manifest and index reads
		{"default budget", 0, func(packs int) int { return 2*packs + 10 }},
		// no pack fits: every content is its own read
		{"budget below a pack", 1, func(int) int { return files * 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			b, srv := setupS3(t, func(c *Config) { c.Tuning.PackCacheBytes = tc.budget })

			source := t.TempDir()
			makeSmallFiles(t, source, files)
			snap := b.backup(t, source, "files")
			packs := len(packObjects(t, srv))

			// an unchanged backup reads the previous snapshot's folder
			// listings, each listing pack whole once
			before := srv.Requests(t, "GET")
			b.backup(t, source, "files")

			gets := srv.Requests(t, "GET") - before
			t.Logf("unchanged backup made %d GETs", gets)

			if tc.budget == 0 && gets > tc.most(packs) {
				t.Errorf("unchanged backup of %d files in %d folders made %d GET requests, want at most %d", files, files/25, gets, tc.most(packs))
			}

			before = srv.Requests(t, "GET")
			restored := filepath.Join(t.TempDir(), "restored")

			if _, err := b.vault.Restore(t.Context(), snap.SnapshotID, restored, nil); err != nil {
				t.Fatalf("restore from the S3 vault: %v", err)
			}

			gets = srv.Requests(t, "GET") - before
			t.Logf("restore of %d files from %d packs made %d GETs", files, packs, gets)

			if most := tc.most(packs); gets > most {
				t.Errorf("restore of %d files from %d packs made %d GET requests, want at most %d", files, packs, gets, most)
			}

			if tc.budget == 1 && gets < files {
				t.Errorf("restore with no room for a pack made %d GET requests for %d files, want one per file", gets, files)
			}

			compareTrees(t, source, restored)

			if tc.budget != 0 {
				return
			}

			// comparing every file, and verifying all the data, read each
			// pack whole too
			before = srv.Requests(t, "GET")
			cmp, err := b.vault.Compare(t.Context(), snap.SnapshotID, restored, 100)
			must(t, err)

			if gets := srv.Requests(t, "GET") - before; len(cmp.Mismatches) > 0 || gets > tc.most(packs) {
				t.Errorf("compare of all %d files made %d GET requests (mismatches %v), want at most %d", files, gets, cmp.Mismatches, tc.most(packs))
			}

			before = srv.Requests(t, "GET")
			if _, err := b.vault.Verify(t.Context(), 100); err != nil {
				t.Fatalf("verify: %v", err)
			}

			// a verify opens a second connection, which reads the indexes
			if gets := srv.Requests(t, "GET") - before; gets > tc.most(packs)+10 {
				t.Errorf("verify of all the data made %d GET requests, want at most %d", gets, tc.most(packs)+10)
			}
		})
	}
}

// A pack damaged in the bucket still fails the restore and verify when it
// is read whole: Kopia authenticates every content it is given, whoever
// fetched the bytes. A pack cut short fails them too.
func TestS3DamagedPackFailsWholeReads(t *testing.T) {
	t.Parallel()

	for _, damage := range []struct {
		name string
		do   func([]byte) []byte
	}{
		{"one byte flipped", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
		{"cut short", func(b []byte) []byte { return b[:len(b)/2] }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			t.Parallel()

			b, srv := setupS3(t)

			source := t.TempDir()
			makeSmallFiles(t, source, 200)
			snap := b.backup(t, source, "files")

			// the largest pack holds file contents
			var (
				pack string
				most int64
			)

			for name, size := range packObjects(t, srv) {
				if strings.HasPrefix(name, "p") && size > most {
					pack, most = name, size
				}
			}

			cli, key := srv.Client(t), "vaults/test/"+pack

			obj, err := cli.GetObject(t.Context(), srv.Bucket, key, minio.GetObjectOptions{})
			must(t, err)
			data, err := io.ReadAll(obj)
			must(t, err)
			must(t, obj.Close())

			data = damage.do(data)
			_, err = cli.PutObject(t.Context(), srv.Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
			must(t, err)

			restored := filepath.Join(t.TempDir(), "restored")
			if _, err := b.vault.Restore(t.Context(), snap.SnapshotID, restored, nil); err == nil {
				t.Errorf("restore with pack %s %s succeeded, want it to fail", pack, damage.name)
			}

			if _, err := b.vault.Verify(t.Context(), 100); !errors.Is(err, ErrCorrupt) {
				t.Errorf("verify with pack %s %s: got %v, want ErrCorrupt", pack, damage.name, err)
			}
		})
	}
}

// A whole read of a pack rides out an outage of the S3 server, as a ranged
// read does (Kopia's S3 storage tries again, then s3Storage.retry for
// retry_for), and readers of the same pack wait for that one read rather
// than making their own.
func TestS3WholePackReadRidesOutAnOutage(t *testing.T) {
	t.Parallel()

	b, srv := setupS3(t)

	source := t.TempDir()
	makeSmallFiles(t, source, 50)
	b.backup(t, source, "files")

	var pack string

	for name := range packObjects(t, srv) {
		if strings.HasPrefix(name, "p") {
			pack = name
		}
	}

	obj, err := srv.Client(t).GetObject(t.Context(), srv.Bucket, "vaults/test/"+pack, minio.GetObjectOptions{})
	must(t, err)
	want, err := io.ReadAll(obj)
	must(t, err)
	must(t, obj.Close())

	cfg := b.cfg
	cfg.S3.RetryFor = time.Minute
	must(t, cfg.normalize())
	st, err := openS3(t.Context(), cfg, false)
	must(t, err)

	defer st.Close(context.Background()) //nolint:errcheck

	ctx, drop := withPackCache(t.Context(), 0)
	defer drop()

	var first wholeBuffer
	must(t, st.GetBlob(ctx, blob.ID(pack), 0, 10, &first))

	srv.Stop()

	restarted := make(chan struct{})

	go func() {
		defer close(restarted)

		time.Sleep(3 * time.Second)
		srv.Restart(t)
	}()

	const readers = 4

	before := srv.Requests(t, "GET")
	got := make([][]byte, readers)
	errs := make([]error, readers)

	var wg sync.WaitGroup

	for i := range readers {
		wg.Go(func() {
			var out wholeBuffer

			off := int64(i * len(want) / readers)
			errs[i] = st.GetBlob(ctx, blob.ID(pack), off, 100, &out)
			got[i] = out.Bytes()
		})
	}

	wg.Wait()
	<-restarted

	for i := range readers {
		off := i * len(want) / readers
		if errs[i] != nil {
			t.Fatalf("read at %d of pack %s through a 3s outage: %v", off, pack, errs[i])
		}

		if !bytes.Equal(got[i], want[off:off+100]) {
			t.Errorf("read at %d of pack %s gave other bytes than the bucket holds", off, pack)
		}
	}

	if n := srv.Requests(t, "GET") - before; n != 1 {
		t.Errorf("%d readers of pack %s made %d GET requests the server answered, want one whole read", readers, pack, n)
	}

	if packs, held := packCacheFrom(ctx).stats(); packs != 1 || held != int64(len(want)) {
		t.Errorf("the cache holds %d packs of %d bytes, want pack %s whole (%d bytes)", packs, held, pack, len(want))
	}
}

// The cache keeps no more than its budget: the least recently read pack
// goes first, and a pack is fetched once however many read it at once.
func TestPackCacheBudget(t *testing.T) {
	t.Parallel()

	packs := map[blob.ID][]byte{}
	for i, n := range []int{100, 200, 300, 5000} {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(i + j)
		}

		packs[blob.ID(fmt.Sprintf("p%d", i))] = data
	}

	var (
		mu      sync.Mutex
		fetches = map[blob.ID]int{}
	)

	fetch := func(_ context.Context, id blob.ID) ([]byte, error) {
		mu.Lock()
		fetches[id]++
		mu.Unlock()
		time.Sleep(10 * time.Millisecond) // let the other readers arrive

		return slices.Clone(packs[id]), nil
	}

	c := newPackCache(550)
	ctx := t.Context()

	read := func(id blob.ID, off, n int64) (bool, error) {
		var out wholeBuffer

		served, err := c.read(ctx, "test", id, off, n, &out, fetch)
		if served && err == nil && !bytes.Equal(out.Bytes(), packs[id][off:off+n]) {
			t.Errorf("read %d at %d of %s gave other bytes", n, off, id)
		}

		return served, err
	}

	// the first range of a pack is the caller's to read
	if served, _ := read("p0", 0, 10); served {
		t.Fatal("first range of a pack served from the cache, want it read by the caller")
	}

	// then many readers at once: one fetch
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if served, err := read("p0", int64(i*10), 10); !served || err != nil {
				t.Errorf("second range of p0: served %v, %v; want served", served, err)
			}
		})
	}

	wg.Wait()

	for _, id := range []blob.ID{"p1", "p2"} {
		read(id, 0, 1) //nolint:errcheck
		read(id, 1, 1) //nolint:errcheck
	}

	// 100+200+300 > 550: p0, the least recently read, went
	if n, held := c.stats(); n != 2 || held != 500 {
		t.Errorf("cache holds %d packs, %d bytes, want p1 and p2, 500 bytes", n, held)
	}

	// a pack larger than the budget is read by ranges
	read("p3", 0, 1) //nolint:errcheck
	read("p3", 1, 1) //nolint:errcheck

	if served, _ := read("p3", 2, 1); served {
		t.Error("pack larger than the budget served from the cache, want it read by ranges")
	}

	if _, err := read("p1", 150, 100); !errors.Is(err, blob.ErrInvalidRange) {
		t.Errorf("range past the end of a pack: got %v, want ErrInvalidRange", err)
	}

	mu.Lock()
	defer mu.Unlock()

	if fetches["p0"] != 1 || fetches["p3"] != 1 {
		t.Errorf("whole reads %v, want one of p0 for its 8 readers and one of p3", fetches)
	}

	c.drop()

	if n, held := c.stats(); n != 0 || held != 0 {
		t.Errorf("cache after drop holds %d packs, %d bytes, want none", n, held)
	}
}
