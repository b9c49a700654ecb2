package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
)

// durableStorageType names vigil's flavour of kopia's filesystem storage in
// the private connection config. The blobs, their names and the folder layout
// are kopia's own, so the stock CLI opens the folder as a plain "filesystem"
// repository.
//
// Kopia's filesystem storage writes each blob to a temporary file and renames
// it into place, but never fsyncs: after a power cut, an index blob could
// survive while the pack it points to did not, or survive empty. vigil
// promises that a listed recovery point is durable, so each blob is fsynced
// before it is renamed into place and its folder is fsynced after. Kopia
// writes packs before the indexes that reference them, and the snapshot
// manifest last, so a blob is never durable before the blobs it depends on.
const durableStorageType = "vigil-filesystem"

// Kopia's own defaults for the filesystem storage: only the vault's owner may
// read the encrypted blobs.
const (
	blobFileMode os.FileMode = 0o600
	blobDirMode  os.FileMode = 0o700
)

var registerOnce sync.Once

// registerDurableStorage adds the storage type to kopia's registry, which
// repo.Open consults to turn the connection config into storage.
func registerDurableStorage() {
	registerOnce.Do(func() {
		blob.AddSupportedStorage(durableStorageType, filesystem.Options{}, newDurableStorage)
	})
}

// shardedPaths is implemented by kopia's filesystem storage: it maps a blob
// ID to its folder and file name.
type shardedPaths interface {
	GetShardedPathAndFilePath(ctx context.Context, blobID blob.ID) (shardPath, filePath string, err error)
}

type durableStorage struct {
	blob.Storage

	paths shardedPaths
	opts  filesystem.Options
}

func newDurableStorage(ctx context.Context, opts *filesystem.Options, isCreate bool) (blob.Storage, error) {
	st, err := filesystem.New(ctx, opts, isCreate)
	if err != nil {
		return nil, fmt.Errorf("open folder storage: %w", err)
	}

	paths, ok := st.(shardedPaths)
	if !ok {
		st.Close(ctx) //nolint:errcheck
		return nil, fmt.Errorf("open folder storage %s: kopia's filesystem storage no longer exposes blob paths", opts.Path)
	}

	return &durableStorage{Storage: st, paths: paths, opts: *opts}, nil
}

func (s *durableStorage) ConnectionInfo() blob.ConnectionInfo {
	opts := s.opts

	return blob.ConnectionInfo{Type: durableStorageType, Config: &opts}
}

// GetBlob reads a range of a blob through the restore's open pack files
// when ctx has them (see withPackFiles), and the usual way otherwise.
func (s *durableStorage) GetBlob(ctx context.Context, id blob.ID, offset, length int64, output blob.OutputBuffer) error {
	if packFilesFrom(ctx) != nil {
		if _, path, err := s.paths.GetShardedPathAndFilePath(ctx, id); err == nil && getBlobRange(ctx, path, offset, length, output) {
			return nil
		}
	}

	return s.Storage.GetBlob(ctx, id, offset, length, output) //nolint:wrapcheck
}

// PutBlob writes the blob durably: temporary file, fsync, rename, fsync of
// the folder. Options it does not support go to kopia's implementation,
// which rejects them with the proper error.
func (s *durableStorage) PutBlob(ctx context.Context, id blob.ID, data blob.Bytes, opts blob.PutOptions) error {
	if opts.HasRetentionOptions() || opts.DoNotRecreate {
		return s.Storage.PutBlob(ctx, id, data, opts) //nolint:wrapcheck
	}

	dir, path, err := s.paths.GetShardedPathAndFilePath(ctx, id)
	if err != nil {
		return fmt.Errorf("put blob %s: %w", id, err)
	}

	if err := s.writeFile(dir, path, data); err != nil {
		return fmt.Errorf("put blob %s: %w", id, err)
	}

	if t := opts.SetModTime; !t.IsZero() {
		if err := os.Chtimes(path, t, t); err != nil {
			return fmt.Errorf("put blob %s: set time: %w", id, err)
		}
	}

	if opts.GetModTime != nil {
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("put blob %s: %w", id, err)
		}

		*opts.GetModTime = fi.ModTime()
	}

	return nil
}

func (s *durableStorage) writeFile(dir, path string, data blob.Bytes) error {
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fmt.Errorf("read random bytes: %w", err)
	}

	// kopia lists only names ending in ".f", so it never sees this file;
	// the name matches what kopia itself uses for its temporary files.
	tmp := path + ".tmp." + hex.EncodeToString(suffix[:])

	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, blobFileMode)
	if errors.Is(err, os.ErrNotExist) {
		if err = s.mkdirAll(dir); err != nil {
			return err
		}

		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, blobFileMode)
	}

	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}

	_, err = data.WriteTo(f)
	if err == nil {
		err = f.Sync()
	}

	if cerr := f.Close(); err == nil {
		err = cerr
	}

	if err == nil {
		err = os.Rename(tmp, path)
	}

	if err != nil {
		os.Remove(tmp) //nolint:errcheck
		return fmt.Errorf("write %s: %w", path, err)
	}

	return syncDir(dir)
}

// mkdirAll creates dir and any missing parents below the storage root, and
// fsyncs the parent of each folder it creates so the new folder's name is
// durable too.
func (s *durableStorage) mkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}

	parent := filepath.Dir(dir)
	if parent != dir && within(parent, s.opts.Path) {
		if err := s.mkdirAll(parent); err != nil {
			return err
		}
	}

	if err := os.Mkdir(dir, blobDirMode); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create folder: %w", err)
	}

	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}

	err = d.Sync()

	if cerr := d.Close(); err == nil {
		err = cerr
	}

	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}

	return nil
}
