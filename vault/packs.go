package vault

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
)

// Pack is one pack file of a vault's storage that the index places
// contents in: the unit that verification coverage counts (see the
// coverage package), as restic's check counts its packs.
type Pack struct {
	ID string
	// Length is the pack's size in storage, in bytes.
	Length int64
	// Contents is how many contents the index places in it.
	Contents int
	// Written is when storage says the pack was written (Packs only).
	Written time.Time
}

// Packs lists the packs the vault's index names, by id. A pack that the
// index names but storage lacks is listed with Length 0: Verify reports it.
func (v *Vault) Packs(ctx context.Context) ([]Pack, error) {
	release, err := v.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	blobs, err := blob.ReadBlobMap(ctx, v.rep.BlobReader())
	if err != nil {
		return nil, fmt.Errorf("list packs of vault %q: %w", v.cfg.Name, err)
	}

	byID := map[blob.ID]*Pack{}

	err = v.rep.ContentReader().IterateContents(ctx, content.IterateOptions{}, func(ci content.Info) error {
		p := byID[ci.PackBlobID]
		if p == nil {
			p = &Pack{ID: string(ci.PackBlobID), Length: blobs[ci.PackBlobID].Length, Written: blobs[ci.PackBlobID].Timestamp}
			byID[ci.PackBlobID] = p
		}

		p.Contents++

		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs of vault %q: read the index: %w", v.cfg.Name, err)
	}

	packs := make([]Pack, 0, len(byID))
	for _, p := range byID {
		packs = append(packs, *p)
	}

	slices.SortFunc(packs, func(a, b Pack) int { return strings.Compare(a.ID, b.ID) })

	return packs, nil
}

// PackCheck is what VerifyPacks found in one pack.
type PackCheck struct {
	ID string
	// Contents and Bytes count the contents read back and their stored
	// (packed) bytes.
	Contents int
	Bytes    int64
	// Problems name each content that did not read back whole and
	// authentic; empty when the pack is sound.
	Problems []string
}

// VerifyPacks reads back every content the index places in the packs
// named by ids, and checks each: kopia decrypts it, which authenticates
// it, and compares its hash with its id. It returns one PackCheck per id,
// in the order given. Damage is reported in the checks, not as an error;
// the error is for a vault that cannot be read at all or a cancelled ctx.
func (v *Vault) VerifyPacks(ctx context.Context, ids []string) ([]PackCheck, error) {
	if len(ids) == 0 {
		return nil, nil // a night with nothing due need not read the index
	}

	release, err := v.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	// each pack is read whole once, not content by content
	ctx, dropPacks := withPackCache(ctx, v.cfg.Tuning.PackCacheBytes)
	defer dropPacks()

	index := map[blob.ID]int{}
	checks := make([]PackCheck, len(ids))

	for i, id := range ids {
		index[blob.ID(id)] = i
		checks[i].ID = id
	}

	var (
		mu    sync.Mutex
		infos []content.Info
	)

	err = v.rep.ContentReader().IterateContents(ctx, content.IterateOptions{}, func(ci content.Info) error {
		if _, ok := index[ci.PackBlobID]; ok {
			infos = append(infos, ci)
		}

		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify packs of vault %q: read the index: %w", v.cfg.Name, err)
	}

	// in pack order, so that a pack is read while it is in the cache
	slices.SortFunc(infos, func(a, b content.Info) int {
		if c := strings.Compare(string(a.PackBlobID), string(b.PackBlobID)); c != 0 {
			return c
		}

		return cmp.Compare(a.PackOffset, b.PackOffset)
	})

	work := make(chan content.Info)

	var wg sync.WaitGroup

	for range parallelism(0, defaultUploadParallelism) {
		wg.Go(func() {
			for ci := range work {
				_, err := v.rep.ContentReader().GetContent(ctx, ci.ContentID)

				mu.Lock()
				c := &checks[index[ci.PackBlobID]]
				c.Contents++
				c.Bytes += int64(ci.PackedLength)

				if err != nil && ctx.Err() == nil {
					c.Problems = append(c.Problems, fmt.Sprintf("content %v at offset %d of pack %v: %v", ci.ContentID, ci.PackOffset, ci.PackBlobID, err))
				}
				mu.Unlock()
			}
		})
	}

	for _, ci := range infos {
		if ctx.Err() != nil {
			break
		}

		work <- ci
	}

	close(work)
	wg.Wait()

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("verify packs of vault %q: cancelled: %w", v.cfg.Name, err)
	}

	return checks, nil
}

// PacksReadBy returns the packs whose every content belongs to snapshot
// id: a restore of the whole snapshot read and authenticated each of
// those contents, so those packs count as read back (see the coverage
// package). A pack that also holds contents of other snapshots, or ones
// no snapshot uses any more, is left out: the restore did not read all of
// it.
//
// It reads the snapshot's folder listings again (they are small) and the
// index; run it after the restore test's verdict, not in its time.
func (v *Vault) PacksReadBy(ctx context.Context, id string) ([]Pack, error) {
	release, err := v.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	man, err := snapshot.LoadSnapshot(ctx, v.rep, manifest.ID(id))
	if err != nil {
		return nil, fmt.Errorf("packs read by snapshot %s of vault %q: %w", id, v.cfg.Name, err)
	}

	if man.RootEntry == nil {
		return nil, fmt.Errorf("packs read by snapshot %s of vault %q: it has no root", id, v.cfg.Name)
	}

	used := map[content.ID]bool{}
	seen := map[object.ID]bool{}

	var walk func(e *snapshot.DirEntry) error

	walk = func(e *snapshot.DirEntry) error {
		if e.ObjectID == object.EmptyID || seen[e.ObjectID] {
			return nil
		}

		seen[e.ObjectID] = true

		ids, err := v.rep.VerifyObject(ctx, e.ObjectID)
		if err != nil {
			return fmt.Errorf("object %v: %w", e.ObjectID, err)
		}

		for _, cid := range ids {
			used[cid] = true
		}

		if e.Type != snapshot.EntryTypeDirectory {
			return nil
		}

		entries, err := readListing(ctx, v.rep, e.ObjectID)
		if err != nil {
			return err
		}

		for _, child := range entries {
			if err := walk(child); err != nil {
				return err
			}
		}

		return nil
	}

	if err := walk(man.RootEntry); err != nil {
		return nil, fmt.Errorf("packs read by snapshot %s of vault %q: %w", id, v.cfg.Name, err)
	}

	type count struct {
		pack        Pack
		usedByThis  int
		allContents int
	}

	packs := map[blob.ID]*count{}

	err = v.rep.ContentReader().IterateContents(ctx, content.IterateOptions{}, func(ci content.Info) error {
		c := packs[ci.PackBlobID]
		if c == nil {
			c = &count{pack: Pack{ID: string(ci.PackBlobID)}}
			packs[ci.PackBlobID] = c
		}

		c.allContents++
		c.pack.Contents++
		c.pack.Length = max(c.pack.Length, int64(ci.PackOffset)+int64(ci.PackedLength))

		if used[ci.ContentID] {
			c.usedByThis++
		}

		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("packs read by snapshot %s of vault %q: read the index: %w", id, v.cfg.Name, err)
	}

	var out []Pack

	for _, c := range packs {
		if c.usedByThis == c.allContents {
			out = append(out, c.pack)
		}
	}

	slices.SortFunc(out, func(a, b Pack) int { return strings.Compare(a.ID, b.ID) })

	return out, nil
}
