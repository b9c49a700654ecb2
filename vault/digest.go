package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"

	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
)

// RestoreOptions are the choices of RestoreWith.
type RestoreOptions struct {
	// Progress, when set, is called from time to time from a single
	// goroutine.
	Progress func(Progress)
	// Digests makes the restore hash each file's content as it writes it,
	// and return the digests in RestoreResult.Digests, so that
	// CompareDigests can check the restored files without reading their
	// contents from the vault a second time.
	Digests bool
}

// RestoreWith is Restore with options.
func (v *Vault) RestoreWith(ctx context.Context, snapshotID, target string, opts RestoreOptions) (RestoreResult, error) {
	return v.restoreWith(ctx, snapshotID, "", target, opts)
}

// Digests are what a restore wrote into each regular file: its length and
// an xxHash64 of its content, by slash-separated path below the target.
//
// The content is hashed as it streams from the vault into the file. Kopia
// checks every content it reads against its id (a keyed BLAKE2 hash of the
// plaintext, within authenticated encryption), so the stream is what the
// snapshot holds; a digest then only has to tell whether the file on disk
// still holds that stream, and a fast non-cryptographic hash is enough for
// that. A file the restore failed to write has no digest.
type Digests struct {
	snapshotID string

	mu sync.Mutex
	// +checklocks:mu
	files map[string]writtenDigest
	// listings are the folder listings the restore read, by object id,
	// and links the symbolic links' targets, by path: the comparison
	// reads neither from the vault again.
	// +checklocks:mu
	listings map[object.ID][]*snapshot.DirEntry
	// +checklocks:mu
	links map[string]string
}

type writtenDigest struct {
	size int64
	sum  uint64
}

func newDigests(snapshotID string) *Digests {
	return &Digests{snapshotID: snapshotID, files: map[string]writtenDigest{},
		listings: map[object.ID][]*snapshot.DirEntry{}, links: map[string]string{}}
}

// SnapshotID is the snapshot the digests were taken from.
func (d *Digests) SnapshotID() string {
	if d == nil {
		return ""
	}

	return d.snapshotID
}

// Len is the number of files with a digest.
func (d *Digests) Len() int {
	if d == nil {
		return 0
	}

	d.mu.Lock()
	defer d.mu.Unlock()

	return len(d.files)
}

// of returns the digest of the file at p, if the restore took one.
func (d *Digests) of(p string) (writtenDigest, bool) {
	if d == nil {
		return writtenDigest{}, false
	}

	d.mu.Lock()
	defer d.mu.Unlock()

	fd, ok := d.files[p]

	return fd, ok
}

// keepListing keeps the entries of the folder listing oid, as the restore
// read it; nothing when d is nil.
func (d *Digests) keepListing(oid object.ID, entries []*snapshot.DirEntry) {
	if d == nil {
		return
	}

	d.mu.Lock()
	defer d.mu.Unlock()

	d.listings[oid] = entries
}

// listing returns the entries of folder listing oid, if the restore read it.
func (d *Digests) listing(oid object.ID) ([]*snapshot.DirEntry, bool) {
	if d == nil {
		return nil, false
	}

	d.mu.Lock()
	defer d.mu.Unlock()

	entries, ok := d.listings[oid]

	return entries, ok
}

// keepLink keeps the target of the link the restore wrote at p; nothing
// when d is nil.
func (d *Digests) keepLink(p, target string) {
	if d == nil {
		return
	}

	d.mu.Lock()
	defer d.mu.Unlock()

	d.links[p] = target
}

// link returns the target of the link the restore wrote at p, if it did.
func (d *Digests) link(p string) (string, bool) {
	if d == nil {
		return "", false
	}

	d.mu.Lock()
	defer d.mu.Unlock()

	target, ok := d.links[p]

	return target, ok
}

func (d *Digests) add(p string, fd writtenDigest) {
	d.mu.Lock()
	defer d.mu.Unlock()

	d.files[p] = fd
}

// reader returns r, hashing what is read from it when d is not nil: once r
// is read to its end, the digest of the file at p is kept. What the restore
// reads it writes, or the restore fails; so the digest is that of what was
// written.
func (d *Digests) reader(p string, r io.Reader) io.Reader {
	if d == nil {
		return r
	}

	return &digestReader{r: r, d: d, path: p, h: xxhash.New()}
}

type digestReader struct {
	r    io.Reader
	d    *Digests
	path string
	h    *xxhash.Digest
	n    int64
	done bool
}

func (dr *digestReader) Read(p []byte) (int, error) {
	n, err := dr.r.Read(p)
	dr.h.Write(p[:n]) //nolint:errcheck // never fails
	dr.n += int64(n)

	if errors.Is(err, io.EOF) && !dr.done {
		dr.done = true
		dr.d.add(dr.path, writtenDigest{size: dr.n, sum: dr.h.Sum64()})
	}

	return n, err //nolint:wrapcheck
}

// CompareDigests is Compare, except that the contents of the sampled files
// are checked against digests, taken as a restore of snapID wrote them
// (RestoreOptions.Digests): each sampled file is read from dir and hashed,
// and its content is not read from the vault again. A file with no digest
// (digests nil, or of another snapshot, or missing that path) is compared
// with the vault as Compare does. The folder listings (names, types,
// sizes, modes, times) and link targets compared are those the restore
// read, kept with the digests; any it did not keep are read from the
// vault.
func (v *Vault) CompareDigests(ctx context.Context, snapID, dir string, samplePercent float64, digests *Digests) (CompareResult, error) {
	if digests.SnapshotID() != snapID {
		digests = nil
	}

	res, err := v.compare(ctx, snapID, dir, samplePercent, digests)
	if err != nil {
		return CompareResult{}, fmt.Errorf("compare %s with snapshot %s of vault %q: %w", dir, snapID, v.cfg.Name, err)
	}

	return res, nil
}

// compareDigest reads the restored file f and checks it against the digest
// the restore took of it. It returns the bytes read and the difference
// found, if any.
func (c *comparison) compareDigest(ctx context.Context, f fileToCompare, want writtenDigest) (int64, string, error) {
	fd, err := c.openRestored(f)
	if err != nil {
		return 0, fmt.Sprintf("cannot read: %s (%v)", f.path, err), nil
	}
	defer unix.Close(fd) //nolint:errcheck

	buf := copyBuffers.Get().(*[]byte) //nolint:forcetypeassert
	defer copyBuffers.Put(buf)

	h := xxhash.New()

	var n int64

	for {
		if err := ctx.Err(); err != nil {
			return n, "", err //nolint:wrapcheck
		}

		m, err := unix.Read(fd, *buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}

		if err != nil {
			return n, fmt.Sprintf("cannot read: %s (%v)", f.path, err), nil
		}

		if m == 0 {
			break
		}

		h.Write((*buf)[:m]) //nolint:errcheck // never fails
		n += int64(m)
	}

	switch {
	case n != want.size:
		return n, fmt.Sprintf("content differs: %s (%d bytes now, the restore wrote %d)", f.path, n, want.size), nil
	case h.Sum64() != want.sum:
		return n, fmt.Sprintf("content differs: %s (changed since the restore wrote it)", f.path), nil
	}

	return n, "", nil
}
