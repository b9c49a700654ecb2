package vault

import (
	"context"
	"errors"
	"os"
	"path"
	"sync"

	"github.com/kopia/kopia/fs"
)

// maxSkippedListed bounds the skipped entries a backup names one by one;
// past it, only the counts grow.
const maxSkippedListed = 100

// Skipped counts the entries of a backed-up folder that a snapshot cannot
// hold, which the backup left out: named pipes (FIFOs), sockets and device
// files. A restore cannot bring them back; the program that made them
// makes them again when it starts.
type Skipped struct {
	Total int64
	// ByKind counts them by kind: "named pipe", "socket", "device",
	// "character device", "other".
	ByKind map[string]int64
	// Entries names the first maxSkippedListed of them, in the order the
	// backup met them.
	Entries []SkippedEntry
}

// SkippedEntry is one entry a backup left out.
type SkippedEntry struct {
	// Path is relative to the backed-up folder, with forward slashes.
	Path string
	Kind string
}

// skippedKind names the kind of a file kopia does not store.
func skippedKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "other"
}

// skipRecorder notes the entries kopia's uploader leaves out: it skips
// entries of unknown types without a word (its IgnoreUnknownTypes policy,
// on by default), and vigil must say what a recovery point lacks.
type skipRecorder struct {
	mu      sync.Mutex
	skipped Skipped
	// seen holds the paths counted: a folder is read more than once
	// when kopia first walks the tree to estimate its size.
	seen map[string]bool

	// excluded, when set, leaves out what its rules exclude before the
	// uploader sees it.
	excluded *excludeRecorder
}

func (r *skipRecorder) add(p string, mode os.FileMode) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.seen[p] {
		return
	}

	if r.seen == nil {
		r.seen = map[string]bool{}
	}

	r.seen[p] = true

	kind := skippedKind(mode)
	if r.skipped.ByKind == nil {
		r.skipped.ByKind = map[string]int64{}
	}

	r.skipped.Total++
	r.skipped.ByKind[kind]++

	if len(r.skipped.Entries) < maxSkippedListed {
		r.skipped.Entries = append(r.skipped.Entries, SkippedEntry{Path: p, Kind: kind})
	}
}

func (r *skipRecorder) result() Skipped {
	r.mu.Lock()
	defer r.mu.Unlock()

	return r.skipped
}

// dir wraps d, the folder at rel below the source, so that what the
// uploader reads of it and below it passes the recorder.
func (r *skipRecorder) dir(d fs.Directory, rel string) fs.Directory {
	return &recordingDir{Directory: d, rel: rel, r: r}
}

// entry passes e on, wrapping a folder and noting an entry of a type
// kopia does not store.
func (r *skipRecorder) entry(e fs.Entry, parent string) fs.Entry {
	switch e := e.(type) {
	case fs.Directory:
		return r.dir(e, path.Join(parent, e.Name()))
	case fs.ErrorEntry:
		if errors.Is(e.ErrorInfo(), fs.ErrUnknown) {
			r.add(path.Join(parent, e.Name()), e.Mode())
		}
	}

	return e
}

type recordingDir struct {
	fs.Directory

	rel string
	r   *skipRecorder
}

func (d *recordingDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	e, err := d.Directory.Child(ctx, name)
	if err != nil {
		return nil, err //nolint:wrapcheck
	}

	if d.r.excluded.excludes(ctx, d.Directory, d.rel, e) {
		return nil, fs.ErrEntryNotFound
	}

	if sub, ok := e.(fs.Directory); ok {
		return d.r.dir(sub, path.Join(d.rel, name)), nil
	}

	return e, nil
}

func (d *recordingDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	it, err := d.Directory.Iterate(ctx)
	if err != nil {
		return nil, err //nolint:wrapcheck
	}

	return &recordingIterator{DirectoryIterator: it, dir: d}, nil
}

type recordingIterator struct {
	fs.DirectoryIterator

	dir *recordingDir
}

func (it *recordingIterator) Next(ctx context.Context) (fs.Entry, error) {
	for {
		e, err := it.DirectoryIterator.Next(ctx)
		if e == nil {
			return nil, err //nolint:wrapcheck
		}

		if err == nil && it.dir.r.excluded.excludes(ctx, it.dir.Directory, it.dir.rel, e) {
			continue
		}

		return it.dir.r.entry(e, it.dir.rel), err //nolint:wrapcheck
	}
}
