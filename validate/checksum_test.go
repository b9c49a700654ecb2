package validate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/validate"
	"github.com/vigil-backup/vigil/vault"
)

// TestChecksumWithVault wires the checksum check to a real vault, as the
// worker does: a restored copy passes, a damaged one fails at once.
func TestChecksumWithVault(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()

	v, err := vault.Open(t.Context(), vault.Config{
		Name:       "test",
		Storage:    filepath.Join(dir, "vault"),
		Password:   "correct horse battery staple",
		CacheDir:   filepath.Join(dir, "cache"),
		SoleWriter: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })

	source := filepath.Join(dir, "source")
	for i := range 10 {
		p := filepath.Join(source, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}

		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprint(i), 1000)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	backup, err := v.Backup(t.Context(), source, vault.BackupOptions{Resource: "docs"})
	if err != nil {
		t.Fatal(err)
	}

	restored := filepath.Join(dir, "restored")
	if _, err := v.Restore(t.Context(), backup.SnapshotID, restored, nil); err != nil {
		t.Fatal(err)
	}

	target, log := newTarget(t)
	target.Dir = restored
	target.Checksum = func(ctx context.Context, pct float64) error {
		res, err := v.Compare(ctx, backup.SnapshotID, restored, pct)
		if err != nil {
			return err
		}

		target.Log("compared %d of %d files, %d bytes", res.Compared, res.Files, res.Bytes)

		if len(res.Mismatches) > 0 {
			return errors.New("the restored files differ: " + strings.Join(res.Mismatches, "; "))
		}

		return nil
	}

	res := validate.Run(t.Context(), []config.Validator{checksum(100)}, target, time.Minute)
	expect(t, res, vigil.ValidationSuccessful, "checksum (all files equal the recovery point)")

	if log.count("compared 10 of 10 files, 10000 bytes") != 1 {
		t.Errorf("log:%s", log)
	}

	// same size and time, one byte changed
	p := filepath.Join(restored, "d1", "f4.txt")

	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(p, []byte(strings.Repeat("4", 999)+"5"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}

	res = validate.Run(t.Context(), []config.Validator{checksum(100)}, target, time.Minute)
	expect(t, res, vigil.ValidationFailed, "check 1 (checksum): the restored files differ: content differs: d1/f4.txt (from byte 999)")
}
