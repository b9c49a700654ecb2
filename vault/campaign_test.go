package vault

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// damageKind is one way a vault's storage can go wrong.
type damageKind struct {
	name string
	// damage changes the vault's storage; b holds one snapshot of source.
	// It returns the ids of snapshots the damage made vanish, if any.
	damage func(t *testing.T, rng *rand.Rand, b *testBundle, source string) []string
}

// TestDamageCampaign damages real vaults in five ways, several times each
// with a fixed seed, and counts how the damage is found and whether repair
// makes a new backup of the unchanged source whole. Verify counts as having
// found damage when it reports a problem or when a snapshot the catalog
// expects is missing, as vigil's verify compares them. The counts are
// logged; the ones that must always hold are asserted.
func TestDamageCampaign(t *testing.T) {
	t.Parallel()

	const trials = 3

	kinds := []damageKind{
		{"bit flips in a pack", func(t *testing.T, rng *rand.Rand, b *testBundle, _ string) []string {
			p := randomOf(rng, packBlobs(t, b.cfg.Storage))
			data, err := os.ReadFile(p)
			must(t, err)
			for range 1 + rng.IntN(8) {
				i := rng.IntN(len(data))
				data[i] ^= byte(1 + rng.IntN(255))
			}
			writeBlob(t, p, data)
			return nil
		}},
		{"truncated pack", func(t *testing.T, rng *rand.Rand, b *testBundle, _ string) []string {
			p := randomOf(rng, packBlobs(t, b.cfg.Storage))
			fi, err := os.Stat(p)
			must(t, err)
			must(t, os.Chmod(p, 0o600))
			must(t, os.Truncate(p, rng.Int64N(fi.Size())))
			return nil
		}},
		{"deleted pack", func(t *testing.T, rng *rand.Rand, b *testBundle, _ string) []string {
			must(t, os.Remove(randomOf(rng, packBlobs(t, b.cfg.Storage))))
			return nil
		}},
		{"rolled-back vault", func(t *testing.T, rng *rand.Rand, b *testBundle, source string) []string {
			old := filepath.Join(t.TempDir(), "old")
			copyFolder(t, b.cfg.Storage, old)
			var gone []string
			for i := range 1 + rng.IntN(2) {
				must(t, os.WriteFile(filepath.Join(source, fmt.Sprintf("new-%d.txt", i)), fmt.Appendf(nil, "more %d", rng.Int()), 0o644))
				gone = append(gone, b.backup(t, source, "files").SnapshotID)
			}
			must(t, os.RemoveAll(b.cfg.Storage))
			copyFolder(t, old, b.cfg.Storage)
			return gone
		}},
		{"deleted index blob", func(t *testing.T, rng *rand.Rand, b *testBundle, _ string) []string {
			must(t, os.Remove(randomOf(rng, indexBlobs(t, b.cfg.Storage))))
			return nil
		}},
	}

	type counts struct{ tried, noRead, withRead, restoreTest, repaired, snapshotsBack int }

	results := make([]counts, len(kinds))

	for k, kind := range kinds {
		for trial := range trials {
			rng := rand.New(rand.NewPCG(uint64(k), uint64(trial)))
			c := &results[k]
			c.tried++

			b := setup(t)
			source := t.TempDir()
			makeTree(t, source)
			// expected is what the catalog knows: every snapshot made,
			// including those a rollback then removes.
			expected := []string{b.backup(t, source, "files").SnapshotID}
			gone := kind.damage(t, rng, b, source)
			expected = append(expected, gone...)

			// Verify opens the storage afresh; the open vault is reopened
			// too, so that nothing this process remembers hides the damage.
			b = reopen(t, b)

			detected := func(res VerifyResult, err error) bool {
				if err != nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s #%d: verify failed outright: %v", kind.name, trial, err)
				}
				missing := false
				for _, id := range expected {
					missing = missing || !slices.Contains(res.SnapshotIDs, id)
				}
				return err != nil || missing
			}

			res, err := b.vault.Verify(t.Context(), 0)
			if detected(res, err) {
				c.noRead++
			}

			if detected(b.vault.Verify(t.Context(), 100)) {
				c.withRead++
			}

			if gone != nil {
				for _, id := range gone {
					if slices.Contains(res.SnapshotIDs, id) {
						t.Errorf("%s #%d: verify lists snapshot %s, which the rollback removed", kind.name, trial, id)
					}
				}
			}

			if restoreTestFails(t, b, source, expected) {
				c.restoreTest++
			}

			if _, err := b.vault.Repair(t.Context()); err != nil {
				t.Errorf("%s #%d: repair: %v", kind.name, trial, err)
				continue
			}

			// The first snapshot, whole or rewritten without its damage, is
			// there again (a lost index is read back from the packs).
			if snaps, err := b.vault.Snapshots(t.Context()); err == nil && len(snaps) > 0 {
				c.snapshotsBack++
			}

			// Repaired means: the vault verifies clean reading everything,
			// and a new backup of the unchanged source restores whole.
			fresh := b.backup(t, source, "files")
			_, verr := b.vault.Verify(t.Context(), 100)
			restored := filepath.Join(t.TempDir(), "restored")
			_, rerr := b.vault.Restore(t.Context(), fresh.SnapshotID, restored, nil)
			if verr == nil && rerr == nil && sameTree(t, source, restored) {
				c.repaired++
			} else {
				t.Errorf("%s #%d: not repaired: verify %v, restore %v", kind.name, trial, verr, rerr)
			}
		}
	}

	for k, kind := range kinds {
		c := results[k]
		t.Logf("%-20s tried %d: verify without data read found %d, with data read %d, restore test %d; repaired %d (first snapshot there after repair: %d)",
			kind.name, c.tried, c.noRead, c.withRead, c.restoreTest, c.repaired, c.snapshotsBack)
	}

	for k, kind := range kinds {
		c := results[k]
		switch kind.name {
		case "truncated pack", "deleted pack", "rolled-back vault":
			if c.noRead != c.tried {
				t.Errorf("%s: verify without data read found %d of %d", kind.name, c.noRead, c.tried)
			}
		case "deleted index blob":
			// Losing the index of a session that wrote only settings harms
			// no snapshot; whatever a restore test finds, verify finds too.
			if c.noRead < c.restoreTest {
				t.Errorf("%s: verify without data read found %d, restore tests %d", kind.name, c.noRead, c.restoreTest)
			}
		case "bit flips in a pack":
			if c.withRead != c.tried {
				t.Errorf("%s: verify reading all data found %d of %d", kind.name, c.withRead, c.tried)
			}
		}
		if c.withRead < c.noRead {
			t.Errorf("%s: reading data found less (%d) than not reading (%d)", kind.name, c.withRead, c.noRead)
		}
		if c.repaired != c.tried {
			t.Errorf("%s: repaired %d of %d", kind.name, c.repaired, c.tried)
		}
	}
}

// reopen closes b's vault and opens it again.
func reopen(t *testing.T, b *testBundle) *testBundle {
	t.Helper()

	v, err := Open(t.Context(), b.cfg)
	if err != nil {
		t.Fatalf("reopen the damaged vault: %v", err)
	}

	t.Cleanup(func() { v.Close(t.Context()) }) //nolint:errcheck

	return &testBundle{cfg: b.cfg, vault: v}
}

// restoreTestFails restores each snapshot the catalog expects, as restore
// tests of its recovery points would, and says whether any restore failed
// or the first (taken before the damage step changed the source) does not
// match the source as it was.
func restoreTestFails(t *testing.T, b *testBundle, source string, expected []string) bool {
	t.Helper()

	for i, id := range expected {
		restored := filepath.Join(t.TempDir(), "restored")
		if _, err := b.vault.Restore(t.Context(), id, restored, nil); err != nil {
			return true
		}

		if i > 0 {
			continue
		}

		want, got := readTree(t, source), readTree(t, restored)
		for p := range want {
			// the root's time, and files a later backup added
			if p == "." || strings.HasPrefix(p, "new-") {
				delete(want, p)
				delete(got, p)
			}
		}

		if len(want) != len(got) {
			return true
		}

		for p, w := range want {
			if got[p] != w {
				return true
			}
		}
	}

	return false
}

func sameTree(t *testing.T, a, b string) bool {
	t.Helper()

	want, got := readTree(t, a), readTree(t, b)
	if len(want) != len(got) {
		return false
	}

	for p, w := range want {
		if got[p] != w {
			return false
		}
	}

	return true
}

// randomOf picks one of the files in list. They are sorted by size first:
// kopia names blobs at random, so only their sizes follow the seed.
func randomOf(rng *rand.Rand, list []string) string {
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	slices.SortFunc(list, func(a, b string) int { return cmp.Compare(size(a), size(b)) })

	return list[rng.IntN(len(list))]
}

func writeBlob(t *testing.T, p string, data []byte) {
	t.Helper()
	must(t, os.Chmod(p, 0o600))
	must(t, os.WriteFile(p, data, 0o600))
}

// indexBlobs lists the index blobs in a vault's storage: kopia's epoch
// indexes are named "xn…" and live under the folder "x".
func indexBlobs(t *testing.T, dir string) []string {
	t.Helper()

	var list []string

	err := filepath.WalkDir(filepath.Join(dir, "x"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		if rel, _ := filepath.Rel(dir, p); !d.IsDir() && strings.HasPrefix(rel, "x/n") {
			list = append(list, p)
		}

		return nil
	})
	if err != nil || len(list) == 0 {
		t.Fatalf("list index blobs in %s: %v (%d found)", dir, err, len(list))
	}

	return list
}

func copyFolder(t *testing.T, from, to string) {
	t.Helper()

	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)

		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}

		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}

		return os.WriteFile(target, data, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", from, to, err)
	}
}
