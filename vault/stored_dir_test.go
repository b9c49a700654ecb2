package vault

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// countingRepo counts the objects opened through it.
type countingRepo struct {
	repo.DirectRepository

	mu     sync.Mutex
	opened map[object.ID]int
}

func (r *countingRepo) OpenObject(ctx context.Context, id object.ID) (object.Reader, error) {
	r.mu.Lock()
	r.opened[id]++
	r.mu.Unlock()

	return r.DirectRepository.OpenObject(ctx, id) //nolint:wrapcheck
}

// A restore reads each folder listing of the snapshot once, with digests
// or without, and still gives every folder its recorded time (the
// fidelity tests check the times).
func TestRestoreReadsEachListingOnce(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	snap := b.backup(t, source, "files")

	man, err := b.vault.loadSnapshot(t.Context(), snap.SnapshotID)
	must(t, err)

	// every folder of the snapshot, by its listing
	folders := map[object.ID]string{man.RootEntry.ObjectID: "."}

	var walk func(oid object.ID, p string)
	walk = func(oid object.ID, p string) {
		entries, err := readListing(t.Context(), b.vault.rep, oid)
		must(t, err)

		for _, e := range entries {
			if e.Type == snapshot.EntryTypeDirectory {
				folders[e.ObjectID] = p + "/" + e.Name
				walk(e.ObjectID, p+"/"+e.Name)
			}
		}
	}
	walk(man.RootEntry.ObjectID, ".")

	if len(folders) < 5 {
		t.Fatalf("the tree has %d folders; the test needs subfolders of subfolders", len(folders))
	}

	for _, digests := range []bool{false, true} {
		counting := &countingRepo{DirectRepository: b.vault.rep, opened: map[object.ID]int{}}
		plain := b.vault.rep
		b.vault.rep = counting

		target := filepath.Join(t.TempDir(), "restored")
		res, err := b.vault.RestoreWith(t.Context(), snap.SnapshotID, target, RestoreOptions{Digests: digests})
		b.vault.rep = plain
		must(t, err)

		for oid, p := range folders {
			if n := counting.opened[oid]; n != 1 {
				t.Errorf("digests %v: the listing of %s was read %d times, want once", digests, p, n)
			}
		}

		for oid := range counting.opened {
			if _, ok := folders[oid]; !ok && snapshotfs.IsDirectoryID(oid) {
				t.Errorf("digests %v: read listing %v, which is no folder of the snapshot", digests, oid)
			}
		}

		if digests {
			cmp, err := b.vault.CompareDigests(t.Context(), snap.SnapshotID, target, 100, res.Digests)
			must(t, err)

			if len(cmp.Mismatches) > 0 {
				t.Errorf("restored copy: mismatches %q", cmp.Mismatches)
			}
		}
	}
}
