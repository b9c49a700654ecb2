package vault

import (
	"context"
	"os"
	"sync"

	"github.com/kopia/kopia/repo/blob"
)

// packFiles keeps the pack files a restore reads open, so that reading one
// content is one pread rather than kopia's open, seek, read and close (and,
// in Go, four fcntl and an epoll_ctl call for each open). A restore of many
// small files reads one content per file, so this halves its system calls.
//
// It lives in the restore's context and is closed when the restore ends: a
// blob deleted or replaced meanwhile (by maintenance in another process) is
// seen by the next restore, and verify, which must see what the folder
// holds, never reads through it. Blobs are immutable under their names, so
// an open handle reads the same bytes as a fresh open would.
type packFiles struct {
	mu sync.Mutex
	// +checklocks:mu
	open map[string]*os.File
	// +checklocks:mu
	closed bool
}

// maxOpenPacks bounds the handles: kopia's packs hold about 20 MB each,
// and a restore reads them mostly in order.
const maxOpenPacks = 32

type packFilesKey struct{}

// withPackFiles returns a context whose reads from folder vaults keep their
// pack files open, and the function that closes them.
func withPackFiles(ctx context.Context) (context.Context, func()) {
	p := &packFiles{open: map[string]*os.File{}}

	return context.WithValue(ctx, packFilesKey{}, p), p.closeAll
}

func packFilesFrom(ctx context.Context) *packFiles {
	p, _ := ctx.Value(packFilesKey{}).(*packFiles)
	return p
}

// file returns path opened for reading, or false when the cache is closed.
func (p *packFiles) file(path string) (*os.File, bool, error) {
	p.mu.Lock()
	f, ok := p.open[path]
	closed := p.closed
	p.mu.Unlock()

	if closed {
		return nil, false, nil
	}

	if ok {
		return f, true, nil
	}

	f, err := os.Open(path)
	if err != nil {
		return nil, false, err //nolint:wrapcheck
	}

	p.mu.Lock()
	defer p.mu.Unlock()

	if p.closed {
		f.Close() //nolint:errcheck
		return nil, false, nil
	}

	if other, ok := p.open[path]; ok {
		// another reader opened it meanwhile
		f.Close() //nolint:errcheck
		return other, true, nil
	}

	if len(p.open) >= maxOpenPacks {
		// Drop any one. A read still using it finishes first: os.File
		// closes the descriptor only once its last read returns, and
		// later reads fail, which makes them read the usual way.
		for k, old := range p.open {
			delete(p.open, k)
			old.Close() //nolint:errcheck

			break
		}
	}

	p.open[path] = f

	return f, true, nil
}

func (p *packFiles) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()

	p.closed = true

	for k, f := range p.open {
		f.Close() //nolint:errcheck
		delete(p.open, k)
	}
}

// getBlobRange reads length bytes at offset of the blob in path through the
// restore's open pack files. It reports false when it did not read, and the
// caller then reads the usual way, which also turns a missing blob into
// kopia's error for it.
func getBlobRange(ctx context.Context, path string, offset, length int64, output blob.OutputBuffer) bool {
	p := packFilesFrom(ctx)
	if p == nil || length < 0 {
		return false
	}

	f, ok, err := p.file(path)
	if err != nil || !ok {
		return false
	}

	buf := copyBuffers.Get().(*[]byte) //nolint:forcetypeassert
	defer copyBuffers.Put(buf)

	output.Reset()

	for done := int64(0); done < length; {
		chunk := (*buf)[:min(int64(len(*buf)), length-done)]

		// A short read means a damaged blob, or a handle dropped under
		// this read; the usual path reports the one and retries the other.
		if _, err := f.ReadAt(chunk, offset+done); err != nil {
			return false
		}

		if _, err := output.Write(chunk); err != nil {
			return false
		}

		done += int64(len(chunk))
	}

	return true
}
