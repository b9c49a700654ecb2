package vault

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestBackupStreamRoundTrip(t *testing.T) {
	b := setup(t)

	// Not a multiple of any buffer size, and incompressible.
	data := make([]byte, 5<<20+123)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(data)

	res, err := b.vault.BackupStream(t.Context(), "dump.pgdump", bytes.NewReader(data), BackupOptions{
		Resource: "orders-db",
		Tags:     map[string]string{"vigil:recovery-point": "rp-1"},
	})
	if err != nil {
		t.Fatalf("backup stream: %v", err)
	}

	if res.Files != 1 || res.Bytes != int64(len(data)) {
		t.Fatalf("backup result: %d files, %d bytes; want 1 file, %d bytes", res.Files, res.Bytes, len(data))
	}

	rc, size, err := b.vault.OpenFile(t.Context(), res.SnapshotID, "dump.pgdump")
	if err != nil {
		t.Fatalf("open file: %v", err)
	}

	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read file: %v", err)
	}

	if err := rc.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	if size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (size %d), want the %d bytes stored", len(got), size, len(data))
	}

	if _, _, err := b.vault.OpenFile(t.Context(), res.SnapshotID, "other.sql"); err == nil || !strings.Contains(err.Error(), "has no file other.sql") {
		t.Fatalf("opening a missing file: got %v, want an error naming it", err)
	}

	// The vault alone can be restored from, like any snapshot.
	dir := t.TempDir()
	if _, err := b.vault.Restore(t.Context(), res.SnapshotID, dir+"/out", nil); err != nil {
		t.Fatalf("restore the stream's snapshot as a folder: %v", err)
	}
}

// failingReader yields some data, then fails, as a dump tool that dies
// half-way makes its pipe do.
type failingReader struct {
	left int
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, r.err
	}

	n := min(len(p), r.left)
	for i := range p[:n] {
		p[i] = byte(i * 7)
	}

	r.left -= n

	return n, nil
}

func TestBackupStreamFailureLeavesNoSnapshot(t *testing.T) {
	b := setup(t)

	cause := errors.New("pg_dump: error: connection to server lost")

	_, err := b.vault.BackupStream(t.Context(), "dump.pgdump", &failingReader{left: 3 << 20, err: cause}, BackupOptions{Resource: "orders-db"})
	if err == nil || !strings.Contains(err.Error(), "connection to server lost") {
		t.Fatalf("backup of a failing stream: got %v, want the stream's error", err)
	}

	if snaps := b.snapshots(t); len(snaps) != 0 {
		t.Fatalf("a failed stream left %d snapshots", len(snaps))
	}

	res, err := b.vault.Verify(t.Context(), 100)
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("verify after a failed stream: %v %v", err, res.Errors)
	}
}
