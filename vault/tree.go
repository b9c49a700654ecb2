package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// Tree opens snapshot snapshotID as a tree of Kopia's file system
// entries, which read their listings and contents from the vault only
// when they are read (a mount serves them so). The snapshot must be
// complete and of a folder. Each read of the tree must be made under
// Hold.
func (v *Vault) Tree(ctx context.Context, snapshotID string) (fs.Directory, error) {
	release, err := v.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	man, err := v.loadSnapshot(ctx, snapshotID)
	if err != nil {
		return nil, err
	}
	if man.IncompleteReason != "" {
		return nil, fmt.Errorf("snapshot %s is incomplete (%s) and cannot be mounted; pick a complete one", snapshotID, man.IncompleteReason)
	}
	root, err := snapshotfs.SnapshotRoot(v.rep, man)
	if err != nil {
		return nil, fmt.Errorf("open snapshot %s of vault %q: %w", snapshotID, v.cfg.Name, err)
	}
	dir, ok := root.(fs.Directory)
	if !ok {
		return nil, errors.New("snapshot is of a single file, not a folder; restore it with the kopia CLI")
	}
	return &timedDir{Directory: dir, rep: v.rep, mtime: dir.ModTime()}, nil
}

// timedDir is a folder of a snapshot that reports the modification time
// its folders had, as a restore sets them: Kopia's own entries show a
// subfolder's newest modification time of anything inside it instead.
type timedDir struct {
	fs.Directory
	rep   repo.Repository
	mtime time.Time

	mu    sync.Mutex
	times map[string]time.Time // of the subfolders, nil until read
}

func (d *timedDir) ModTime() time.Time { return d.mtime }

func (d *timedDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	e, err := d.Directory.Child(ctx, name)
	if err != nil {
		return nil, err //nolint:wrapcheck
	}
	return d.timed(ctx, e)
}

func (d *timedDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	var entries []fs.Entry
	err := fs.IterateEntries(ctx, d.Directory, func(ctx context.Context, e fs.Entry) error {
		e, err := d.timed(ctx, e)
		entries = append(entries, e)
		return err
	})
	if err != nil {
		return nil, err //nolint:wrapcheck
	}
	return fs.StaticIterator(entries, nil), nil
}

// timed is e, a subfolder with its own modification time.
func (d *timedDir) timed(ctx context.Context, e fs.Entry) (fs.Entry, error) {
	sub, ok := e.(fs.Directory)
	if !ok {
		return e, nil
	}
	times, err := d.subfolderTimes(ctx)
	if err != nil {
		return nil, err
	}
	mtime, ok := times[e.Name()]
	if !ok {
		mtime = e.ModTime()
	}
	return &timedDir{Directory: sub, rep: d.rep, mtime: mtime}, nil
}

// subfolderTimes reads the folder's listing as stored, once.
func (d *timedDir) subfolderTimes(ctx context.Context) (map[string]time.Time, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.times != nil {
		return d.times, nil
	}
	h, ok := d.Directory.(object.HasObjectID)
	if !ok {
		return map[string]time.Time{}, nil
	}
	r, err := d.rep.OpenObject(ctx, h.ObjectID())
	if err != nil {
		return nil, fmt.Errorf("read folder listing of %q: %w", d.Name(), err)
	}
	defer r.Close() //nolint:errcheck
	var listing snapshot.DirManifest
	if err := json.NewDecoder(r).Decode(&listing); err != nil {
		return nil, fmt.Errorf("read folder listing of %q: %w", d.Name(), err)
	}
	times := map[string]time.Time{}
	for _, de := range listing.Entries {
		if de.Type == snapshot.EntryTypeDirectory {
			times[de.Name] = de.ModTime.ToTime()
		}
	}
	d.times = times
	return times, nil
}

// Hold holds the vault for one read of a Tree: maintenance, which waits
// for every reader, does not run under it. Release it with the returned
// function.
func (v *Vault) Hold(ctx context.Context) (func(), error) { return v.shared(ctx) }

// Logf writes a line to the log that ctx carries (WithStorageLog), if
// any: a job's log, for what goes wrong in a mount's reads.
func Logf(ctx context.Context, format string, args ...any) {
	storageLog(ctx, fmt.Sprintf(format, args...))
}
