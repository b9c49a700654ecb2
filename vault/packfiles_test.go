package vault

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kopia/kopia/repo/blob"
)

// outputBuffer is a blob.OutputBuffer over a bytes.Buffer.
type outputBuffer struct{ bytes.Buffer }

func (b *outputBuffer) Length() int { return b.Len() }

// TestPackFilesReadRanges reads ranges of every pack blob through a
// restore's open pack files and the usual way, and gets the same bytes;
// once the restore's pack files are closed no descriptor is left open, and
// a blob deleted since reads as missing, as it does without them.
//
// It counts the process's open descriptors, so it runs alone: a parallel
// test opening files meanwhile would look like a leak.
func TestPackFilesReadRanges(t *testing.T) {
	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	b.backup(t, source, "files")

	st := b.vault.rep.BlobReader()
	packs := packBlobs(t, b.cfg.Storage)

	if len(packs) == 0 {
		t.Fatal("the backup wrote no pack blob")
	}

	fdsBefore := openFiles(t)
	ctx, closePacks := withPackFiles(t.Context())

	for _, p := range packs {
		id := blobID(t, b.cfg.Storage, p)
		whole, err := os.ReadFile(p)
		must(t, err)

		for _, r := range [][2]int64{{0, 1}, {0, int64(len(whole))}, {int64(len(whole)) / 3, int64(len(whole)) / 2}, {int64(len(whole)) - 5, 5}} {
			var got, want outputBuffer
			must(t, st.GetBlob(ctx, id, r[0], r[1], &got))
			must(t, st.GetBlob(t.Context(), id, r[0], r[1], &want))

			if !bytes.Equal(got.Bytes(), want.Bytes()) || !bytes.Equal(got.Bytes(), whole[r[0]:r[0]+r[1]]) {
				t.Fatalf("blob %s, %d bytes at %d: read %d bytes through the open pack files, %d the usual way, not the same", id, r[1], r[0], got.Len(), want.Len())
			}
		}
	}

	if during := openFiles(t); during <= fdsBefore {
		t.Errorf("%d descriptors open while reading, %d before: the pack files were not kept open", during, fdsBefore)
	}

	closePacks()

	if after := openFiles(t); after > fdsBefore {
		t.Errorf("%d descriptors open after the restore's pack files were closed, %d before", after, fdsBefore)
	}

	id := blobID(t, b.cfg.Storage, packs[0])
	must(t, os.Remove(packs[0]))

	ctx, closePacks = withPackFiles(t.Context())
	defer closePacks()

	var out outputBuffer
	if err := st.GetBlob(ctx, id, 0, 1, &out); !errors.Is(err, blob.ErrBlobNotFound) {
		t.Errorf("reading a deleted blob: got %v, want blob.ErrBlobNotFound", err)
	}
}

func openFiles(t *testing.T) int {
	t.Helper()

	fds, err := os.ReadDir("/proc/self/fd")
	must(t, err)

	return len(fds)
}

// blobID is the ID of the blob in file p of the folder storage dir: its
// path below dir, without folder separators and the ".f" suffix.
func blobID(t *testing.T, dir, p string) blob.ID {
	t.Helper()

	rel, err := filepath.Rel(dir, p)
	must(t, err)

	return blob.ID(strings.ReplaceAll(strings.TrimSuffix(rel, ".f"), string(filepath.Separator), ""))
}
