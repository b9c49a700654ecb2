package vault

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// writeRandomFile writes n bytes from a seeded generator: random enough
// that zstd keeps every byte, and the same on every run.
func writeRandomFile(t *testing.T, p string, n int64, seed uint64) {
	t.Helper()

	f, err := os.Create(p)
	must(t, err)

	_, err = io.CopyN(f, rand.NewChaCha8([32]byte{byte(seed)}), n)
	must(t, err)
	must(t, f.Close())
}

// writeSparseFile writes a file of length n holding data at the offsets
// given, explicit zeros between some of them, and holes elsewhere.
func writeSparseFile(t *testing.T, p string, n int64) {
	t.Helper()

	f, err := os.Create(p)
	must(t, err)
	must(t, f.Truncate(n))

	rng := rand.NewChaCha8([32]byte{7})
	data := func(size int) []byte { b := make([]byte, size); _, _ = rng.Read(b); return b }

	for _, w := range []struct {
		off int64
		b   []byte
	}{
		{0, data(1 << 20)},
		{9<<20 + 123, data(3<<20 + 4567)}, // unaligned, across a chunk or two
		{16 << 20, make([]byte, 2<<20)},   // zeros written out: they come back as a hole
		{30 << 20, data(700 << 10)},
		{n - 5000, data(5000)},
	} {
		_, err := f.WriteAt(w.b, w.off)
		must(t, err)
	}

	must(t, f.Close())
}

// snapshotFile returns the snapshot's entry for the file name at its top.
func snapshotFile(t *testing.T, b *testBundle, snapID, name string) fs.File {
	t.Helper()

	man, err := b.vault.loadSnapshot(t.Context(), snapID)
	must(t, err)

	root, err := snapshotfs.SnapshotRoot(b.vault.rep, man)
	must(t, err)

	e, err := root.(fs.Directory).Child(t.Context(), name) //nolint:forcetypeassert
	must(t, err)

	return e.(fs.File) //nolint:forcetypeassert
}

// chunksOf returns the chunks the restore reads ahead for a file of the
// snapshot, failing the test if it would read the file as one stream.
func chunksOf(t *testing.T, b *testBundle, snapID, name string) *chunkedContent {
	t.Helper()

	c, err := (&confinedOutput{rep: b.vault.rep}).chunkedFile(t.Context(), snapshotFile(t, b, snapID, name))
	must(t, err)

	if c == nil {
		t.Fatalf("%s is not read ahead chunk by chunk; the test needs a file of several chunks", name)
	}

	return c
}

// TestRestoreChunkedFiles: files of many chunks, read ahead in parallel,
// come back byte for byte, with their modes, times and holes, and with
// the digests a read-back of them gives.
func TestRestoreChunkedFiles(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()

	writeRandomFile(t, filepath.Join(source, "random.bin"), 40<<20, 1)
	writeSparseFile(t, filepath.Join(source, "disk.img"), 48<<20)
	writeRandomFile(t, filepath.Join(source, "small"), 1000, 2)

	// 0o640 survives the usual umask 022, so the file is created with it;
	// 0o664 does not and takes the chmod; the set-user-ID bit always does.
	modes := map[string]os.FileMode{"random.bin": 0o640, "disk.img": 0o664, "small": 0o755 | os.ModeSetuid}
	i := 0

	for name, mode := range modes {
		p := filepath.Join(source, name)
		must(t, os.Chmod(p, mode))
		must(t, os.Chtimes(p, fixedTime(i), fixedTime(i)))
		i++
	}

	snap := b.backup(t, source, "files")

	for _, name := range []string{"random.bin", "disk.img"} {
		if c := chunksOf(t, b, snap.SnapshotID, name); len(c.chunks) < 4 {
			t.Fatalf("%s has %d chunks; the test needs several", name, len(c.chunks))
		}
	}

	// The sparse file's runs of zeros are chunks of one content, which
	// the restore reads once and then writes as holes.
	seen, repeated := map[string]bool{}, 0
	for _, c := range chunksOf(t, b, snap.SnapshotID, "disk.img").chunks {
		if seen[c.Object.String()] {
			repeated++
		}

		seen[c.Object.String()] = true
	}

	if repeated == 0 {
		t.Fatal("disk.img has no chunk of zeros twice; the test needs one")
	}

	check := func(t *testing.T, target string) {
		t.Helper()

		compareTrees(t, source, target)

		for name := range modes {
			want, got := allocated(t, filepath.Join(source, name)), allocated(t, filepath.Join(target, name))
			if got > want+64<<10 {
				t.Errorf("%s takes %d bytes on disk, its source %d", name, got, want)
			}
		}
	}

	t.Run("without digests", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "restored")

		if _, err := b.vault.Restore(t.Context(), snap.SnapshotID, target, nil); err != nil {
			t.Fatalf("restore: %v", err)
		}

		check(t, target)
	})

	t.Run("with digests", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "restored")

		res, err := b.vault.RestoreWith(t.Context(), snap.SnapshotID, target, RestoreOptions{Digests: true})
		if err != nil {
			t.Fatalf("restore: %v", err)
		}

		check(t, target)

		for name := range modes {
			content, err := os.ReadFile(filepath.Join(source, name))
			must(t, err)

			got, ok := res.Digests.of(name)
			if !ok || got.size != int64(len(content)) || got.sum != xxhash.Sum64(content) {
				t.Errorf("%s: digest %+v (taken: %v), want %d bytes with sum %x", name, got, ok, len(content), xxhash.Sum64(content))
			}
		}

		cmp, err := b.vault.CompareDigests(t.Context(), snap.SnapshotID, target, 100, res.Digests)
		if err != nil {
			t.Fatalf("compare: %v", err)
		}

		if len(cmp.Mismatches) > 0 || cmp.Digested != int64(len(modes)) {
			t.Errorf("compare with digests: mismatches %q, %d of %d files against digests", cmp.Mismatches, cmp.Digested, len(modes))
		}
	})
}

// chunkGoroutinesSettle fails the test if goroutines of the read-ahead
// outlive a restore, or if budget it took is not given back.
func chunkGoroutinesSettle(t *testing.T) {
	t.Helper()

	var stacks []byte

	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		stacks = make([]byte, 1<<20)
		stacks = stacks[:runtime.Stack(stacks, true)]

		if !bytes.Contains(stacks, []byte("vault/restore_chunks.go")) {
			if !chunkBudget.TryAcquire(chunkBudgetBytes) {
				t.Fatal("the read-ahead's byte budget was not all given back")
			}

			chunkBudget.Release(chunkBudgetBytes)

			return
		}
	}

	t.Fatalf("goroutines of the read-ahead still run:\n%s", stacks)
}

// stopAfter is a writer that fails, or cancels, at its nth write.
type stopAfter struct {
	n      int
	writes int
	err    error
	cancel context.CancelFunc
}

func (w *stopAfter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes < w.n {
		return len(p), nil
	}

	if w.cancel != nil {
		w.cancel()
		return len(p), nil
	}

	return 0, w.err
}

// TestChunkReaderStopsMidFile: a read-ahead stopped mid-file, by its
// context or by a failed write, returns the reason, and ends every
// goroutine and gives back every byte of budget it took. Not parallel: it
// checks the process's goroutines and the process-wide budget.
func TestChunkReaderStopsMidFile(t *testing.T) {
	b := setup(t)
	source := t.TempDir()
	writeRandomFile(t, filepath.Join(source, "random.bin"), 40<<20, 3)
	snap := b.backup(t, source, "files")
	c := chunksOf(t, b, snap.SnapshotID, "random.bin")

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()

		w := &stopAfter{n: 2, cancel: cancel}

		n, err := c.reader(ctx, "random.bin").WriteTo(w)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("read-ahead cancelled after %d bytes: got %v, want context.Canceled", n, err)
		}

		if n >= c.size() {
			t.Fatalf("read-ahead cancelled mid-file wrote all %d bytes", n)
		}

		chunkGoroutinesSettle(t)
	})

	t.Run("write fails", func(t *testing.T) {
		full := errors.New("no space left on the test's device")
		w := &stopAfter{n: 3, err: full}

		if _, err := c.reader(t.Context(), "random.bin").WriteTo(w); !errors.Is(err, full) {
			t.Fatalf("read-ahead whose write fails: got %v, want %v", err, full)
		}

		chunkGoroutinesSettle(t)
	})

	t.Run("read", func(t *testing.T) {
		// Read, which io.Copy does not use, gives the same content.
		h := xxhash.New()

		n, err := io.CopyBuffer(h, struct{ io.Reader }{c.reader(t.Context(), "random.bin")}, make([]byte, 100<<10))
		must(t, err)

		content, err := os.ReadFile(filepath.Join(source, "random.bin"))
		must(t, err)

		if n != int64(len(content)) || h.Sum64() != xxhash.Sum64(content) {
			t.Fatalf("Read gave %d bytes with sum %x, want %d with %x", n, h.Sum64(), len(content), xxhash.Sum64(content))
		}
	})
}

// TestRestoreCancelledDuringLargeFile: a restore cancelled while it writes
// a large file returns the cancellation and leaves no read-ahead running.
// Not parallel, as TestChunkReaderStopsMidFile.
func TestRestoreCancelledDuringLargeFile(t *testing.T) {
	b := setup(t)
	source := t.TempDir()
	writeRandomFile(t, filepath.Join(source, "random.bin"), 40<<20, 4)
	snap := b.backup(t, source, "files")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	target := filepath.Join(t.TempDir(), "restored")
	watched := make(chan struct{})

	go func() {
		defer close(watched)

		// cancel as soon as the file is created, its chunks being read
		for ctx.Err() == nil {
			if _, err := os.Lstat(filepath.Join(target, "random.bin")); err == nil {
				cancel()
				return
			}

			time.Sleep(100 * time.Microsecond)
		}
	}()

	_, err := b.vault.Restore(ctx, snap.SnapshotID, target, nil)
	cancel()
	<-watched

	if !errors.Is(err, context.Canceled) {
		t.Fatalf("restore cancelled during a large file: got %v, want context.Canceled", err)
	}

	chunkGoroutinesSettle(t)
}

// TestRestoreDamagedChunk: a chunk of a large file that fails its
// authentication fails the restore, naming the file and where in it.
func TestRestoreDamagedChunk(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	writeRandomFile(t, filepath.Join(source, "random.bin"), 40<<20, 5)
	snap := b.backup(t, source, "files")
	chunksOf(t, b, snap.SnapshotID, "random.bin")

	damaged := 0

	for _, p := range packBlobs(t, b.cfg.Storage) {
		data, err := os.ReadFile(p)
		must(t, err)

		if len(data) < 1<<20 { // packs of listings, not of the file's chunks
			continue
		}

		data[len(data)/2] ^= 0x40
		writeBlob(t, p, data)
		damaged++
	}

	if damaged == 0 {
		t.Fatal("no pack of the file's chunks found to damage")
	}

	_, err := b.vault.Restore(t.Context(), snap.SnapshotID, filepath.Join(t.TempDir(), "restored"), nil)
	if err == nil {
		t.Fatal("restore of a file with a damaged chunk succeeded")
	}

	if msg := err.Error(); !strings.Contains(msg, "random.bin") || !strings.Contains(msg, "read bytes ") {
		t.Errorf("restore of a damaged chunk failed with %q; want the file and the range of it named", msg)
	}
}

func TestParseUmask(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		status string
		want   os.FileMode
		ok     bool
	}{
		{"Name:\tvigil\nUmask:\t0022\nState:\tR (running)\n", 0o022, true},
		{"Name:\tvigil\nUmask:\t0077\n", 0o077, true},
		{"Umask:\t0000\n", 0, true},
		{"Name:\tvigil\nState:\tR (running)\n", 0, false}, // before Linux 4.7
		{"Umask:\tnonsense\n", 0, false},
		{"Umask:\t7777\n", 0, false},
	} {
		got, ok := parseUmask([]byte(tc.status))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseUmask(%q) = %v, %v; want %v, %v", tc.status, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCreateMode(t *testing.T) {
	t.Parallel()

	umask, known := processUmask()
	if !known {
		t.Fatal("cannot read the process's umask from /proc/self/status (Linux 4.7 or later needed)")
	}

	for _, tc := range []struct {
		mode       os.FileMode
		defaultACL bool
		wantChmod  bool
	}{
		{0o600, false, false},
		{0o644 &^ umask, false, false},
		{0o777, false, umask != 0},
		{0o644 | os.ModeSetuid, false, true},
		{0o755 | os.ModeSetgid, false, true},
		{0o777 | os.ModeSticky, false, true},
		{0o600, true, true},
	} {
		got, chmod := createMode(tc.mode, tc.defaultACL)
		if chmod != tc.wantChmod {
			t.Errorf("createMode(%v, %v) wants chmod %v; want %v", tc.mode, tc.defaultACL, chmod, tc.wantChmod)
		}

		if !chmod && got != tc.mode.Perm() {
			t.Errorf("createMode(%v, %v) = %v with no chmod; want the mode itself", tc.mode, tc.defaultACL, got)
		}
	}
}

// TestS3RestoreChunkedFiles: from an S3 vault, the read-ahead's parallel
// reads of one pack share its single whole read (packCache), and the files
// come back whole.
func TestS3RestoreChunkedFiles(t *testing.T) {
	t.Parallel()

	b, srv := setupS3(t)
	source := t.TempDir()
	writeRandomFile(t, filepath.Join(source, "random.bin"), 40<<20, 6)
	writeSparseFile(t, filepath.Join(source, "disk.img"), 48<<20)
	snap := b.backup(t, source, "files")
	chunksOf(t, b, snap.SnapshotID, "random.bin")
	packs := len(packObjects(t, srv))

	before := srv.Requests(t, "GET")
	target := filepath.Join(t.TempDir(), "restored")

	res, err := b.vault.RestoreWith(t.Context(), snap.SnapshotID, target, RestoreOptions{Digests: true})
	if err != nil {
		t.Fatalf("restore from the S3 vault: %v", err)
	}

	// a first range and a whole read per pack, and the snapshot's
	// manifest and index reads
	gets := srv.Requests(t, "GET") - before
	t.Logf("restore of 2 large files from %d packs made %d GETs", packs, gets)

	if most := 2*packs + 10; gets > most {
		t.Errorf("restore of 2 large files from %d packs made %d GET requests, want at most %d", packs, gets, most)
	}

	compareTrees(t, source, target)

	cmp, err := b.vault.CompareDigests(t.Context(), snap.SnapshotID, target, 100, res.Digests)
	if err != nil {
		t.Fatalf("compare: %v", err)
	}

	if len(cmp.Mismatches) > 0 || cmp.Digested != 2 {
		t.Errorf("compare with digests: mismatches %q, %d of 2 files against digests", cmp.Mismatches, cmp.Digested)
	}
}
