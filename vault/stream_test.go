package vault

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/snapshot/snapshotfs"
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

// TestBackupStreamModesAndTimes: the file and folder of a stream snapshot,
// as kopia itself reads them (and the stock `kopia snapshot restore` writes
// them), are a 0600 file in a 0700 folder, both dated at the backup.
func TestBackupStreamModesAndTimes(t *testing.T) {
	b := setup(t)

	before := time.Now().Truncate(time.Second)
	res, err := b.vault.BackupStream(t.Context(), "database.sqlite", strings.NewReader("SQLite format 3\x00"), BackupOptions{Resource: "app-db"})
	if err != nil {
		t.Fatalf("backup stream: %v", err)
	}
	after := time.Now()

	man, err := b.vault.loadSnapshot(t.Context(), res.SnapshotID)
	must(t, err)
	root, err := snapshotfs.SnapshotRoot(b.vault.rep, man)
	must(t, err)
	dir, ok := root.(fs.Directory)
	if !ok {
		t.Fatalf("the snapshot's root is a %T, not a folder", root)
	}
	file, err := dir.Child(t.Context(), "database.sqlite")
	must(t, err)

	for _, c := range []struct {
		what string
		e    fs.Entry
		mode os.FileMode
	}{
		{"folder", root, os.ModeDir | 0o700},
		{"file", file, 0o600},
	} {
		if c.e.Mode() != c.mode {
			t.Errorf("the snapshot's %s has mode %v, want %v", c.what, c.e.Mode(), c.mode)
		}
		if m := c.e.ModTime(); m.Before(before) || m.After(after) {
			t.Errorf("the snapshot's %s is dated %v, want the backup's time (between %v and %v)", c.what, m, before, after)
		}
		if o := c.e.Owner(); o.UserID != uint32(os.Getuid()) || o.GroupID != uint32(os.Getgid()) {
			t.Errorf("the snapshot's %s is owned by %d:%d, want vigil's user %d:%d", c.what, o.UserID, o.GroupID, os.Getuid(), os.Getgid())
		}
	}
	if file.Size() != int64(len("SQLite format 3\x00")) {
		t.Errorf("the snapshot's file has size %d", file.Size())
	}
}
