package vault

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// storedDir is a folder of a snapshot as a restore walks it, read from its
// stored listing once. Kopia's own folders (snapshotfs) replace each
// subfolder's modification time with the newest time found in its subtree
// as they read a listing, so a restore through them had to read the
// listing of every folder with subfolders a second time to set the times
// right, and a restore taking digests every listing, to keep it. A
// storedDir's subfolders keep the times their listing records, and the
// listing read is the one kept with the digests.
type storedDir struct {
	// fs.Directory is Kopia's, on the same entry, for its own fields
	// (name, mode, owner): those it reads from the entry as recorded.
	// Only listing the folder is done here.
	fs.Directory

	rep     repo.Repository
	de      *snapshot.DirEntry
	path    string   // slash-separated below the snapshot's root, for errors
	digests *Digests // nil unless the restore takes digests
}

var (
	_ fs.DirectoryWithSummary = (*storedDir)(nil)
	_ object.HasObjectID      = (*storedDir)(nil)
	_ snapshot.HasDirEntry    = (*storedDir)(nil)
)

// storedRoot is the root folder of the snapshot man, or an error when the
// snapshot is of a single file.
func storedRoot(rep repo.Repository, man *snapshot.Manifest, digests *Digests) (*storedDir, error) {
	switch {
	case man.RootEntry == nil || man.RootEntry.ObjectID == object.EmptyID:
		return nil, fmt.Errorf("open snapshot root: snapshot %s records no root object", man.ID)
	case man.RootEntry.Type != snapshot.EntryTypeDirectory:
		return nil, errors.New("snapshot is of a single file, not a folder; restore it with the kopia CLI")
	}

	return newStoredDir(rep, man.RootEntry, ".", digests), nil
}

func newStoredDir(rep repo.Repository, de *snapshot.DirEntry, p string, digests *Digests) *storedDir {
	return &storedDir{
		Directory: snapshotfs.EntryFromDirEntry(rep, de).(fs.Directory), //nolint:forcetypeassert // a folder's entry is a folder
		rep:       rep,
		de:        de,
		path:      p,
		digests:   digests,
	}
}

// ObjectID is the object id of the folder's listing.
func (d *storedDir) ObjectID() object.ID { return d.de.ObjectID }

// DirEntry is the folder's entry, as its parent's listing records it.
func (d *storedDir) DirEntry() *snapshot.DirEntry { return d.de }

// Summary is the folder's summary, as its parent's listing records it.
func (d *storedDir) Summary(ctx context.Context) (*fs.DirectorySummary, error) {
	if d.de.DirSummary != nil {
		return d.de.DirSummary, nil
	}

	s, ok := d.Directory.(fs.DirectoryWithSummary)
	if !ok {
		return nil, nil //nolint:nilnil // no summary recorded
	}

	return s.Summary(ctx) //nolint:wrapcheck
}

// Iterate lists the folder's entries in the order of its listing.
func (d *storedDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	listing, err := d.listing(ctx)
	if err != nil {
		return nil, err
	}

	entries := make([]fs.Entry, len(listing))
	for i, de := range listing {
		entries[i] = d.child(de)
	}

	return fs.StaticIterator(entries, nil), nil
}

// Child is the entry name of the folder.
func (d *storedDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	listing, err := d.listing(ctx)
	if err != nil {
		return nil, err
	}

	for _, de := range listing {
		if de.Name == name {
			return d.child(de), nil
		}
	}

	return nil, fs.ErrEntryNotFound
}

// SupportsMultipleIterations implements fs.Directory: every iteration
// reads the listing again.
func (d *storedDir) SupportsMultipleIterations() bool { return true }

func (d *storedDir) listing(ctx context.Context) ([]*snapshot.DirEntry, error) {
	listing, err := readListing(ctx, d.rep, d.de.ObjectID)
	if err != nil {
		return nil, fmt.Errorf("read folder listing of %q: %w", d.path, err)
	}

	d.digests.keepListing(d.de.ObjectID, listing)

	return listing, nil
}

func (d *storedDir) child(de *snapshot.DirEntry) fs.Entry {
	if de.Type == snapshot.EntryTypeDirectory {
		return newStoredDir(d.rep, de, path.Join(d.path, de.Name), d.digests)
	}

	return snapshotfs.EntryFromDirEntry(d.rep, de)
}
