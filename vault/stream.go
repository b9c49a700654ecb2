package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// streamSourcePrefix begins the kopia source path of a streamed backup. A
// stream has no folder; the path only has to be stable per resource so that
// the stock kopia CLI lists its snapshots together.
const streamSourcePrefix = "/vigil-stream/"

// BackupStream stores what r yields, up to EOF, as the file name in a new
// snapshot that holds only that file, and returns once it is durable in the
// vault. It is how a database dump goes into a vault without a copy of the
// whole dump on disk first: the dump tool writes into a pipe and the vault
// reads from it.
//
// An error from r (the dump tool failed half-way) fails the backup and
// leaves no snapshot, as does cancelling ctx. Unchanged stretches of the
// stream are stored once, against earlier snapshots of any resource.
func (v *Vault) BackupStream(ctx context.Context, name string, r io.Reader, opts BackupOptions) (BackupResult, error) {
	if err := v.writable("back up into"); err != nil {
		return BackupResult{}, err
	}

	if err := validResourceName(opts.Resource); err != nil {
		return BackupResult{}, fmt.Errorf("back up %s to vault %q: %w", name, v.cfg.Name, err)
	}

	if err := checkEntryName(name); err != nil {
		return BackupResult{}, fmt.Errorf("back up to vault %q: %w", v.cfg.Name, err)
	}

	release, err := v.shared(ctx)
	if err != nil {
		return BackupResult{}, err
	}
	defer release()

	dir := newStreamDir(opts.Resource, name, r, time.Now())
	source := streamSourcePrefix + opts.Resource

	res, err := v.backup(ctx, dir, source, opts)
	if err != nil {
		return BackupResult{}, fmt.Errorf("back up %s of %s to vault %q: %w", name, opts.Resource, v.cfg.Name, err)
	}

	return res, nil
}

// OpenFile opens the file name at the top of snapshot snapshotID for
// reading, and returns it with its size. The vault stays in use (maintenance
// waits) until the reader is closed.
func (v *Vault) OpenFile(ctx context.Context, snapshotID, name string) (io.ReadCloser, int64, error) {
	rc, size, err := v.openFile(ctx, snapshotID, name)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s from snapshot %s of vault %q: %w", name, snapshotID, v.cfg.Name, err)
	}

	return rc, size, nil
}

func (v *Vault) openFile(ctx context.Context, snapshotID, name string) (io.ReadCloser, int64, error) {
	if err := checkEntryName(name); err != nil {
		return nil, 0, err
	}

	release, err := v.shared(ctx)
	if err != nil {
		return nil, 0, err
	}

	ok := false
	defer func() {
		if !ok {
			release()
		}
	}()

	man, err := v.loadSnapshot(ctx, snapshotID)
	if err != nil {
		return nil, 0, err
	}

	if man.IncompleteReason != "" {
		return nil, 0, fmt.Errorf("snapshot is incomplete (%s) and cannot be restored; pick a complete one", man.IncompleteReason)
	}

	root, err := snapshotfs.SnapshotRoot(v.rep, man)
	if err != nil {
		return nil, 0, fmt.Errorf("open snapshot root: %w", err)
	}

	dir, isDir := root.(fs.Directory)
	if !isDir {
		return nil, 0, errors.New("snapshot is of a single file, not a folder")
	}

	entry, err := dir.Child(ctx, name)
	if errors.Is(err, fs.ErrEntryNotFound) {
		return nil, 0, fmt.Errorf("the snapshot has no file %s: it is not a backup of this kind of resource", name)
	}

	if err != nil {
		return nil, 0, fmt.Errorf("find %s: %w", name, err)
	}

	f, isFile := entry.(fs.File)
	if !isFile {
		return nil, 0, fmt.Errorf("%s in the snapshot is not a file", name)
	}

	r, err := f.Open(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", name, err)
	}

	ok = true

	return &releasingReader{Reader: r, close: func() error {
		defer release()
		return r.Close() //nolint:wrapcheck
	}}, f.Size(), nil
}

// releasingReader releases the vault when the reader is closed.
type releasingReader struct {
	io.Reader

	close func() error
	done  bool
}

func (r *releasingReader) Close() error {
	if r.done {
		return nil
	}

	r.done = true

	return r.close()
}

// checkEntryName refuses a file name that is not one plain name.
func checkEntryName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("file name %q is not one plain name", name)
	}

	return nil
}

// Modes of a stream snapshot's file and folder: a dump holds a whole
// database, so only its owner may read it once restored.
const (
	streamFileMode os.FileMode = 0o600
	streamDirMode  os.FileMode = 0o700
)

// newStreamDir is the folder, named resource, that a stream snapshot
// holds: one file, name, whose content is r. Both carry modes and times
// as if vigil had written the dump into a private folder of its own at t,
// so that the stock `kopia snapshot restore` makes a 0600 file in a 0700
// folder dated t. (kopia's virtual entries are 0777 and their folder has
// the zero time, which kopia shows as 1901.)
func newStreamDir(resource, name string, r io.Reader, t time.Time) fs.Directory {
	owner := fs.OwnerInfo{UserID: uint32(os.Getuid()), GroupID: uint32(os.Getgid())}
	file := &streamFile{
		streamEntry: streamEntry{name: name, mode: streamFileMode, modTime: t, owner: owner},
		reader:      io.NopCloser(r),
	}

	return &streamDir{
		streamEntry: streamEntry{name: resource, mode: streamDirMode | os.ModeDir, modTime: t, owner: owner},
		file:        file,
	}
}

// streamEntry is the metadata of a stream snapshot's file or folder.
type streamEntry struct {
	name    string
	mode    os.FileMode
	modTime time.Time
	owner   fs.OwnerInfo
}

func (e *streamEntry) Name() string                { return e.name }
func (e *streamEntry) IsDir() bool                 { return e.mode.IsDir() }
func (e *streamEntry) Mode() os.FileMode           { return e.mode }
func (e *streamEntry) ModTime() time.Time          { return e.modTime }
func (e *streamEntry) Size() int64                 { return 0 } // a stream's size is known once read
func (e *streamEntry) Sys() any                    { return nil }
func (e *streamEntry) Owner() fs.OwnerInfo         { return e.owner }
func (e *streamEntry) Device() fs.DeviceInfo       { return fs.DeviceInfo{} }
func (e *streamEntry) LocalFilesystemPath() string { return "" }
func (e *streamEntry) Close()                      {}

// streamFile is the stream, read once.
type streamFile struct {
	streamEntry

	mu     sync.Mutex
	reader io.ReadCloser
}

func (f *streamFile) GetReader(context.Context) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	if f.reader == nil {
		return nil, errors.New("the stream was read already")
	}

	r := f.reader
	f.reader = nil

	return r, nil
}

// streamDir holds the stream's file and nothing else.
type streamDir struct {
	streamEntry

	file fs.Entry
}

func (d *streamDir) Child(_ context.Context, name string) (fs.Entry, error) {
	if name == d.file.Name() {
		return d.file, nil
	}

	return nil, fs.ErrEntryNotFound
}

func (d *streamDir) Iterate(context.Context) (fs.DirectoryIterator, error) {
	return fs.StaticIterator([]fs.Entry{d.file}, nil), nil
}

func (d *streamDir) SupportsMultipleIterations() bool { return true }

var (
	_ fs.StreamingFile = (*streamFile)(nil)
	_ fs.Directory     = (*streamDir)(nil)
)
