package vault

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// allocated is the space a file takes on disk (st_blocks).
func allocated(t *testing.T, path string) int64 {
	t.Helper()

	var st syscall.Stat_t
	must(t, syscall.Stat(path, &st))

	return st.Blocks * 512
}

// TestSparseWriter: whatever sizes the content arrives in, the file holds
// exactly it, and its aligned blocks of zeros take no space.
func TestSparseWriter(t *testing.T) {
	t.Parallel()

	// 64 blocks, each data or zeros at random, a tail of half a block of
	// zeros, and zeros that start and end inside blocks.
	rng := rand.New(rand.NewPCG(1, 2))

	var content []byte

	dataBlocks := 0

	for i := range 64 {
		block := make([]byte, holeBlock)
		if i%3 == 0 || rng.IntN(2) == 0 {
			for j := range block {
				block[j] = byte(rng.IntN(255) + 1)
			}

			if i%5 == 0 {
				clear(block[100:4000]) // zeros inside a block are data
			}

			dataBlocks++
		}

		content = append(content, block...)
	}

	endsInData := append(append([]byte{}, content...), "the end"...)
	content = append(content, make([]byte, holeBlock/2)...)

	// zeros: pieces of zeros are handed over by their length alone
	// (writeZeros), as the read-ahead does for chunks of zeros.
	for _, tc := range []struct {
		content []byte
		chunk   int
		zeros   bool
	}{
		{content, 1, false}, {content, 1000, false}, {content, holeBlock, false}, {content, 3 * holeBlock, false}, {content, 256 << 10, false},
		{endsInData, 1000, false}, {endsInData, 256 << 10, false}, {nil, 1000, false},
		{content, 1000, true}, {content, 3 * holeBlock, true}, {content, 3*holeBlock + 1, true}, {endsInData, 100, true},
	} {
		content, chunk := tc.content, tc.chunk
		path := filepath.Join(t.TempDir(), "f")
		f, err := os.Create(path)
		must(t, err)

		w := &sparseWriter{f: f}
		for r := bytes.NewReader(content); ; {
			buf := make([]byte, chunk)

			n, err := r.Read(buf)
			if n > 0 && tc.zeros && bytes.Equal(buf[:n], make([]byte, n)) {
				must(t, w.writeZeros(int64(n)))
			} else if n > 0 {
				if m, err := w.Write(buf[:n]); err != nil || m != n {
					t.Fatalf("write %d bytes: %d, %v", n, m, err)
				}
			}

			if err == io.EOF {
				break
			}
		}

		must(t, w.Finish())
		must(t, f.Close())

		got, err := os.ReadFile(path)
		must(t, err)

		if !bytes.Equal(got, content) {
			t.Fatalf("written in pieces of %d: the file differs from what was written (%d bytes, want %d)", chunk, len(got), len(content))
		}

		// ext4 may add a block for the extent tree of a fragmented file
		if a, most := allocated(t, path), int64((dataBlocks+3)*holeBlock); a > most {
			t.Errorf("written in pieces of %d: %d bytes on disk, want at most the %d of its %d data blocks (and two for the file system)", chunk, a, most, dataBlocks)
		}
	}
}

// TestRestoreSparseFile: a 1 GiB sparse file with 8 KiB of data comes back
// taking about as much space as its source, not 1 GiB.
func TestRestoreSparseFile(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	path := filepath.Join(source, "disk.img")

	f, err := os.Create(path)
	must(t, err)
	must(t, f.Truncate(1<<30))
	_, err = f.WriteAt(bytes.Repeat([]byte("vigil"), 800), 512<<20)
	must(t, err)
	_, err = f.WriteAt([]byte("the end"), 1<<30-7)
	must(t, err)
	must(t, f.Close())

	before := allocated(t, path)
	res := b.backup(t, source, "images")
	target := filepath.Join(t.TempDir(), "restored")

	if _, err := b.vault.Restore(t.Context(), res.SnapshotID, target, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}

	restored := filepath.Join(target, "disk.img")
	after := allocated(t, restored)
	t.Logf("1 GiB sparse file: %d bytes on disk before the backup, %d after the restore", before, after)

	fi, err := os.Stat(restored)
	must(t, err)

	if fi.Size() != 1<<30 {
		t.Fatalf("restored file is %d bytes long, want 1 GiB", fi.Size())
	}

	if after > before+holeBlock*4 {
		t.Errorf("restored file takes %d bytes on disk, its source %d: the holes were written out", after, before)
	}

	compareTrees(t, source, target)
}
