package vault

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// RepairResult reports what Repair found and changed.
type RepairResult struct {
	// Contents is how many contents were read back; DamagedContents how
	// many of them were unreadable or outside their pack, and were dropped
	// from the index.
	Contents, DamagedContents int
	// RecoveredPacks is how many packs no index named (an index blob was
	// lost) whose own index was read back into the vault's.
	RecoveredPacks int
	// Snapshots lists the snapshots that held damaged entries.
	Snapshots []RepairedSnapshot
}

// RepairedSnapshot is one snapshot that Repair rewrote or deleted.
type RepairedSnapshot struct {
	// OldID is the snapshot's id before; NewID its id after, or "" when its
	// root folder was damaged and nothing was left, so it was deleted.
	OldID, NewID  string
	Resource      string
	RecoveryPoint string // the vigil:recovery-point tag, if any
	// Removed lists the paths removed from the snapshot, folders ending in "/".
	Removed []string
}

// Repair makes a damaged vault whole again, at the price of what was lost:
//
//  1. packs that no index names, because an index blob was lost, have their
//     own index (kopia writes one into every pack) read back;
//  2. every content in the index is read back and decrypted; those that are
//     unreadable or lie outside their pack are damaged;
//  3. every snapshot is rewritten without the files and folders that use a
//     damaged content, and tagged vigil:repaired; a snapshot whose root
//     folder is damaged is deleted;
//  4. the damaged contents are dropped from the index.
//
// The next backup of an unchanged source then stores those contents again,
// rather than reusing the damaged ones through deduplication, because no
// index entry and no earlier snapshot points at them any more. Step 2 reads
// the whole vault. Repair holds back this process's backups, restores and
// verifies while it runs; no other process may write to the vault meanwhile.
func (v *Vault) Repair(ctx context.Context) (RepairResult, error) {
	var res RepairResult

	if err := v.writable("repair"); err != nil {
		return res, err
	}

	if err := v.activity.Acquire(ctx, activityUnits); err != nil {
		return res, fmt.Errorf("repair vault %q: wait for backups and restores to finish: %w", v.cfg.Name, err)
	}
	defer v.activity.Release(activityUnits)

	if err := v.rep.Refresh(ctx); err != nil {
		return res, fmt.Errorf("repair vault %q: refresh: %w", v.cfg.Name, err)
	}

	err := repo.DirectWriteSession(ctx, v.rep, repo.WriteSessionOptions{Purpose: "vigil repair"}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
		return repair(ctx, w, &res)
	})
	if err != nil {
		return res, fmt.Errorf("repair vault %q: %w", v.cfg.Name, err)
	}

	if err := v.rep.Refresh(ctx); err != nil {
		return res, fmt.Errorf("repair vault %q: refresh: %w", v.cfg.Name, err)
	}

	return res, nil
}

func repair(ctx context.Context, w repo.DirectRepositoryWriter, res *RepairResult) error {
	blobs, err := blob.ReadBlobMap(ctx, w.BlobReader())
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}

	if res.RecoveredPacks, err = recoverLostIndexes(ctx, w, blobs); err != nil {
		return err
	}

	damaged, total, err := damagedContents(ctx, w, blobs)
	if err != nil {
		return err
	}

	res.Contents, res.DamagedContents = total, len(damaged)

	if res.Snapshots, err = rewriteSnapshots(ctx, w, damaged); err != nil {
		return err
	}

	for _, cid := range slices.SortedFunc(maps.Keys(damaged), func(a, b content.ID) int { return strings.Compare(a.String(), b.String()) }) {
		if err := w.ContentManager().DeleteContent(ctx, cid); err != nil {
			return fmt.Errorf("drop damaged content %v from the index: %w", cid, err)
		}
	}

	return nil
}

// recoverLostIndexes reads back the own index of every pack that no index
// entry names, deleted or not: such a pack lost its index blob. A pack that
// maintenance is about to delete still has its deleted entries, so it is
// not brought back.
func recoverLostIndexes(ctx context.Context, w repo.DirectRepositoryWriter, blobs map[blob.ID]blob.Metadata) (int, error) {
	named := map[blob.ID]bool{}

	err := w.ContentReader().IterateContents(ctx, content.IterateOptions{IncludeDeleted: true}, func(ci content.Info) error {
		named[ci.PackBlobID] = true
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read the index: %w", err)
	}

	recovered := 0

	for id, bm := range blobs {
		if named[id] || (!strings.HasPrefix(string(id), string(content.PackBlobIDPrefixRegular)) && !strings.HasPrefix(string(id), string(content.PackBlobIDPrefixSpecial))) {
			continue
		}

		// A pack whose own index is unreadable is left alone: nothing in
		// it can be found, and maintenance deletes it in time.
		if infos, err := w.ContentManager().RecoverIndexFromPackBlob(ctx, id, bm.Length, true); err == nil && len(infos) > 0 {
			recovered++
		}
	}

	return recovered, nil
}

// damagedContents reads back every content in the index and returns those
// that cannot be read, and how many contents there are.
func damagedContents(ctx context.Context, w repo.DirectRepositoryWriter, blobs map[blob.ID]blob.Metadata) (map[content.ID]bool, int, error) {
	var (
		mu      sync.Mutex
		damaged = map[content.ID]bool{}
		total   int
	)

	err := w.ContentReader().IterateContents(ctx, content.IterateOptions{Parallel: parallelism(0, defaultUploadParallelism)}, func(ci content.Info) error {
		bm, ok := blobs[ci.PackBlobID]
		bad := !ok || bm.Length < int64(ci.PackOffset)+int64(ci.PackedLength)

		if !bad {
			_, err := w.ContentReader().GetContent(ctx, ci.ContentID)
			bad = err != nil
		}

		mu.Lock()
		defer mu.Unlock()

		total++

		if bad {
			damaged[ci.ContentID] = true
		}

		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read back contents: %w", err)
	}

	return damaged, total, nil
}

// rewriteSnapshots rewrites every snapshot that uses a damaged content, or
// one the index no longer names, without the entries that use it.
func rewriteSnapshots(ctx context.Context, w repo.DirectRepositoryWriter, damaged map[content.ID]bool) ([]RepairedSnapshot, error) {
	ids, err := snapshot.ListSnapshotManifests(ctx, w, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}

	mans, err := snapshot.LoadSnapshots(ctx, w, ids)
	if err != nil {
		return nil, fmt.Errorf("load snapshots: %w", err)
	}

	usesDamage := func(oid object.ID) bool {
		cids, err := w.VerifyObject(ctx, oid)
		if err != nil {
			return true
		}

		for _, cid := range cids {
			if damaged[cid] {
				return true
			}

			if _, err := w.ContentInfo(ctx, cid); err != nil {
				return true
			}
		}

		return false
	}

	var out []RepairedSnapshot

	for _, man := range mans {
		if man.RootEntry == nil {
			continue
		}

		rs := RepairedSnapshot{OldID: string(man.ID), Resource: man.Source.UserName, RecoveryPoint: man.Tags[tagPrefix+recoveryPointTag]}

		if usesDamage(man.RootEntry.ObjectID) {
			if _, err := readListing(ctx, w, man.RootEntry.ObjectID); err != nil || man.RootEntry.Type != snapshot.EntryTypeDirectory {
				rs.Removed = []string{"/"}
				if err := w.DeleteManifest(ctx, man.ID); err != nil {
					return out, fmt.Errorf("delete snapshot %s, whose root folder is damaged: %w", man.ID, err)
				}

				out = append(out, rs)

				continue
			}
		}

		removed, err := rewriteSnapshot(ctx, w, man, usesDamage)
		if err != nil {
			return out, err
		}

		if len(removed) == 0 {
			continue
		}

		rs.Removed = removed
		rs.NewID = string(man.ID)
		out = append(out, rs)
	}

	return out, nil
}

// rewriteSnapshot rewrites man's tree without the entries usesDamage
// condemns, saves it in place of man and returns the paths removed.
func rewriteSnapshot(ctx context.Context, w repo.DirectRepositoryWriter, man *snapshot.Manifest, usesDamage func(object.ID) bool) ([]string, error) {
	var (
		mu      sync.Mutex
		removed []string
	)

	remove := func(p string, e *snapshot.DirEntry) {
		if e.Type == snapshot.EntryTypeDirectory {
			p += "/"
		}

		mu.Lock()
		defer mu.Unlock()

		removed = append(removed, "/"+strings.TrimPrefix(p, "./"))
	}

	// A rewriter per snapshot: its cache would otherwise hide, in the second
	// snapshot sharing a folder, what was removed from it.
	rw, err := snapshotfs.NewDirRewriter(ctx, w, snapshotfs.DirRewriterOptions{
		Parallel: 1,
		RewriteEntry: func(_ context.Context, parentPath string, e *snapshot.DirEntry) (*snapshot.DirEntry, error) {
			// Kopia passes the entry's own path, its name included.
			if e.ObjectID != object.EmptyID && usesDamage(e.ObjectID) {
				remove(parentPath, e)
				return nil, nil
			}

			return e, nil
		},
		OnDirectoryReadFailure: func(_ context.Context, p string, e *snapshot.DirEntry, _ error) (*snapshot.DirEntry, error) {
			remove(p, e)
			return nil, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("rewrite snapshot %s: %w", man.ID, err)
	}
	defer rw.Close(ctx)

	pt, err := policy.TreeForSource(ctx, w, man.Source)
	if err != nil {
		return nil, fmt.Errorf("rewrite snapshot %s: read its policy: %w", man.ID, err)
	}

	oldID := man.ID

	changed, err := rw.RewriteSnapshotManifest(ctx, man, pt.EffectivePolicy().MetadataCompressionPolicy.MetadataCompressor())
	if err != nil {
		return nil, fmt.Errorf("rewrite snapshot %s: %w", oldID, err)
	}

	if !changed || len(removed) == 0 {
		return nil, nil
	}

	slices.Sort(removed)

	if man.Tags == nil {
		man.Tags = map[string]string{}
	}

	man.Tags[tagPrefix+repairedTag] = fmt.Sprintf("damaged entries removed: %d", len(removed))

	if err := snapshot.UpdateSnapshot(ctx, w, man); err != nil {
		return nil, fmt.Errorf("save repaired snapshot %s: %w", oldID, err)
	}

	return removed, nil
}
