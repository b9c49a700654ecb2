package vault

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A restore that takes digests lets the comparison check every file
// without reading a content from the vault again, and still finds a file
// changed, shortened or removed after the restore wrote it.
func TestCompareDigests(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	snap := b.backup(t, source, "files")

	restore := func(t *testing.T) (string, RestoreResult) {
		t.Helper()

		target := filepath.Join(t.TempDir(), "restored")

		res, err := b.vault.RestoreWith(t.Context(), snap.SnapshotID, target, RestoreOptions{Digests: true})
		if err != nil {
			t.Fatal(err)
		}

		if res.Digests == nil || int64(res.Digests.Len()) != res.Files || res.Digests.SnapshotID() != snap.SnapshotID {
			t.Fatalf("restore of %d files took %d digests of snapshot %q, want one per file of %s", res.Files, res.Digests.Len(), res.Digests.SnapshotID(), snap.SnapshotID)
		}

		return target, res
	}

	t.Run("identical", func(t *testing.T) {
		target, restored := restore(t)

		res, err := b.vault.CompareDigests(t.Context(), snap.SnapshotID, target, 100, restored.Digests)
		if err != nil {
			t.Fatal(err)
		}

		if len(res.Mismatches) > 0 {
			t.Errorf("identical copy: mismatches %q", res.Mismatches)
		}

		if res.Compared != res.Files || res.Digested != res.Files || res.Bytes != snap.Bytes || res.VaultBytes != 0 {
			t.Errorf("compared %d files (%d against digests), %d bytes, %d read from the vault; want all %d files against digests, %d bytes, none from the vault",
				res.Compared, res.Digested, res.Bytes, res.VaultBytes, res.Files, snap.Bytes)
		}
	})

	// Nor are the listings and link targets read again: the comparison
	// passes with the vault's storage gone.
	t.Run("nothing read from the vault", func(t *testing.T) {
		target, restored := restore(t)

		away := b.cfg.Storage + ".away"
		must(t, os.Rename(b.cfg.Storage, away))
		defer func() { must(t, os.Rename(away, b.cfg.Storage)) }()

		res, err := b.vault.CompareDigests(t.Context(), snap.SnapshotID, target, 100, restored.Digests)
		if err != nil {
			t.Fatalf("compare read the vault: %v", err)
		}

		if len(res.Mismatches) > 0 || res.Symlinks == 0 {
			t.Errorf("identical copy: mismatches %q, %d links compared", res.Mismatches, res.Symlinks)
		}
	})

	t.Run("changed after the restore", func(t *testing.T) {
		target, restored := restore(t)

		// The same length and time: only the content tells.
		p := filepath.Join(target, "a", "random.bin")
		keepTimes(t, func() {
			data, err := os.ReadFile(p)
			must(t, err)
			data[4096+7] ^= 0xff
			must(t, os.WriteFile(p, data, 0))
		}, p)

		shortened := filepath.Join(target, "hello.txt")
		keepTimes(t, func() { must(t, os.Truncate(shortened, 5)) }, shortened)

		dir := filepath.Join(target, "a", "b", "c")
		keepTimes(t, func() { must(t, os.Remove(filepath.Join(dir, "deep.txt"))) }, dir)

		res, err := b.vault.CompareDigests(t.Context(), snap.SnapshotID, target, 100, restored.Digests)
		if err != nil {
			t.Fatal(err)
		}

		slices.Sort(res.Mismatches)

		want := []string{
			"content differs: a/random.bin (changed since the restore wrote it)",
			"missing: a/b/c/deep.txt",
			"size differs: hello.txt (snapshot 13 bytes, restored 5)",
		}
		if !slices.Equal(res.Mismatches, want) {
			t.Errorf("mismatches %q, want %q", res.Mismatches, want)
		}

		if res.VaultBytes != 0 {
			t.Errorf("%d bytes of content were read from the vault, want none", res.VaultBytes)
		}
	})

	// A copy restored without digests, or digests of another snapshot,
	// is compared with the vault's contents.
	t.Run("without digests", func(t *testing.T) {
		target := b.restoredCopy(t, snap.SnapshotID)

		other := newDigests("another-snapshot")
		other.add("hello.txt", writtenDigest{size: 13})

		for _, digests := range []*Digests{nil, other} {
			res, err := b.vault.CompareDigests(t.Context(), snap.SnapshotID, target, 100, digests)
			if err != nil {
				t.Fatal(err)
			}

			if len(res.Mismatches) > 0 || res.Digested != 0 || res.VaultBytes != snap.Bytes || res.Compared != res.Files {
				t.Errorf("digests %v: mismatches %q, %d of %d files against digests, %d bytes from the vault; want none, none, all %d",
					digests.SnapshotID(), res.Mismatches, res.Digested, res.Compared, res.VaultBytes, snap.Bytes)
			}
		}
	})
}
