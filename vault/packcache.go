package vault

import (
	"bytes"
	"container/list"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/kopia/kopia/repo/blob"
)

// Kopia reads every content with its own ranged read of the pack blob that
// holds it. From an S3 vault that is one GET per content: a restore of
// 15,000 small files makes over 15,000 requests, and each costs the server
// and the client far more than its bytes (bench/README.md, "S3 vault against
// restic on S3"). A packCache, carried by the context of one bulk read (a
// restore, a checksum comparison, a verify, a copy), reads a pack whole the
// second time a range of it is asked for, and serves every later range of
// that pack from the copy, as restic reads each pack once.
//
// Only how the bytes are fetched changes: they are the bucket's, fetched by
// the same retried request (s3Storage.retry), and Kopia still decrypts and
// authenticates every content it is given, so a damaged pack fails as it
// does range by range. The cache lives as long as its read and no longer:
// the next restore reads the bucket again, so that each restore test proves
// what the bucket holds, not what an earlier one fetched.

// defaultPackCacheBytes bounds the whole packs one bulk read keeps: room for
// as many packs of Kopia's default size (20 MiB) as a restore writes files at
// once, each of which may be reading a different pack.
const defaultPackCacheBytes = defaultRestoreParallelism * 20 << 20

// packCache holds the whole packs of one bulk read, least recently used
// first out, within a byte budget. It is safe for concurrent use; readers of
// one pack wait for a single fetch of it.
type packCache struct {
	budget int64

	mu    sync.Mutex
	packs map[packKey]*cachedPack
	lru   list.List // of *cachedPack holding data, most recently read in front
	held  int64     // bytes of the packs in lru
}

// cachedPack is what a packCache knows of one pack. data and err are written
// once, by the reader that fetches the pack, before it closes fetched; after
// that they are only read, so a reader that has waited for fetched uses them
// without the lock, even after the pack has been evicted.
type cachedPack struct {
	key     packKey
	fetched chan struct{} // nil until a whole read starts
	data    []byte
	err     error

	// tooLarge marks a pack larger than the whole budget: it is read range
	// by range, as without a cache.
	tooLarge bool
	elem     *list.Element
}

// packKey names a pack in one storage: a copy reads two vaults, which
// could hold packs of the same name (a bucket copied to make a second
// vault).
type packKey struct {
	storage string
	id      blob.ID
}

func newPackCache(budget int64) *packCache {
	return &packCache{budget: budget, packs: map[packKey]*cachedPack{}}
}

type packCacheKey struct{}

// withPackCache returns a context whose reads of pack blobs from an S3 vault
// share one packCache of budget bytes (defaultPackCacheBytes when zero or
// less), and a function that drops what the cache holds, for when the read
// is done.
func withPackCache(ctx context.Context, budget int64) (context.Context, func()) {
	if budget <= 0 {
		budget = defaultPackCacheBytes
	}

	c := newPackCache(budget)

	return context.WithValue(ctx, packCacheKey{}, c), c.drop
}

func packCacheFrom(ctx context.Context) *packCache {
	c, _ := ctx.Value(packCacheKey{}).(*packCache)
	return c
}

// isPack reports whether id is one of Kopia's pack blobs: "p" for file
// contents, "q" for folder listings and other metadata. Every other blob
// (indexes, manifests, the repository's own) is read whole already.
func isPack(id blob.ID) bool {
	return strings.HasPrefix(string(id), "p") || strings.HasPrefix(string(id), "q")
}

// fetchWhole reads the whole blob id into memory.
type fetchWhole func(ctx context.Context, id blob.ID) ([]byte, error)

// read serves length bytes at offset of pack id of the storage named
// storage from its whole copy,
// fetching the copy with fetch when this is the second range of the pack
// asked for, or waiting for the reader that fetches it. It returns
// served=false when the caller is to read the range itself: the first range
// of a pack (a restore of one small file reads no whole pack), and every
// range of a pack larger than the budget.
func (c *packCache) read(ctx context.Context, storage string, id blob.ID, offset, length int64, output blob.OutputBuffer, fetch fetchWhole) (served bool, err error) {
	if length <= 0 || offset < 0 || !isPack(id) {
		return false, nil
	}

	key := packKey{storage, id}

	c.mu.Lock()

	p := c.packs[key]

	switch {
	case p == nil:
		c.packs[key] = &cachedPack{key: key}
		c.mu.Unlock()

		return false, nil
	case p.tooLarge:
		c.mu.Unlock()
		return false, nil
	case p.fetched == nil:
		p.fetched = make(chan struct{})
		c.mu.Unlock()

		p.data, p.err = fetch(ctx, id)
		c.fetchedWhole(p)
		close(p.fetched)
	default:
		if p.elem != nil {
			c.lru.MoveToFront(p.elem)
		}

		c.mu.Unlock()

		select {
		case <-p.fetched:
		case <-ctx.Done():
			return true, ctx.Err() //nolint:wrapcheck
		}
	}

	if p.err != nil {
		return true, p.err
	}

	if offset+length > int64(len(p.data)) {
		return true, fmt.Errorf("read %d bytes at %d of pack %s, which holds %d: %w", length, offset, id, len(p.data), blob.ErrInvalidRange)
	}

	output.Reset()

	if _, err := output.Write(p.data[offset : offset+length]); err != nil {
		return true, fmt.Errorf("copy a range of pack %s: %w", id, err)
	}

	return true, nil
}

// fetchedWhole files the outcome of p's whole read: a failed read is
// forgotten, so that the next range asked (Kopia tries again) fetches the
// pack anew, a pack larger than the budget is marked to be read by ranges,
// and any other is kept, evicting the least recently read packs beyond the
// budget.
func (c *packCache) fetchedWhole(p *cachedPack) {
	c.mu.Lock()
	defer c.mu.Unlock()

	key := p.key
	if c.packs[key] != p {
		return // dropped while it was fetched
	}

	size := int64(len(p.data))

	switch {
	case p.err != nil:
		// the entry left says a range was read already: the next reader
		// fetches the whole pack again.
		c.packs[key] = &cachedPack{key: key}
	case size > c.budget:
		c.packs[key] = &cachedPack{key: key, tooLarge: true}
	default:
		p.elem = c.lru.PushFront(p)
		c.held += size

		for c.held > c.budget {
			last := c.lru.Back()
			if last == nil || last == p.elem {
				break
			}

			c.evict(last.Value.(*cachedPack)) //nolint:forcetypeassert
		}
	}
}

// evict forgets pack p; readers that already hold it finish with its data.
func (c *packCache) evict(p *cachedPack) {
	c.lru.Remove(p.elem)
	c.held -= int64(len(p.data))
	delete(c.packs, p.key)
}

// drop forgets every pack, so that their memory goes back once their
// readers are done.
func (c *packCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.packs = map[packKey]*cachedPack{}
	c.lru.Init()
	c.held = 0
}

// stats reports how many packs the cache holds and their bytes, for tests.
func (c *packCache) stats() (packs int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.lru.Len(), c.held
}

// wholeBuffer is the blob.OutputBuffer a whole pack is read into.
type wholeBuffer struct{ bytes.Buffer }

func (b *wholeBuffer) Length() int { return b.Len() }
