package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/semaphore"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/object"
)

// Kopia reads a file of several chunks one chunk after another, on the
// goroutine that writes it: it reads the chunk's pack range, decrypts and
// decompresses it, copies it into a new buffer, and only then can the
// writer go on. A restore of one large file used one core, and copied each
// chunk four times before writing it (bench/README.md, "Large files in
// parallel"). A chunked file is instead read ahead: its chunks are fetched
// by several goroutines at once, each straight from the content manager,
// and handed to the file's one writer in order, which writes each from the
// buffer the vault returned. The writer still sees the content as one
// stream, so holes and digests come out as before.
//
// Only how chunks are fetched changes: each is read with GetContent, which
// decrypts and authenticates it as kopia's own reader does, and its length
// is checked against the file's index as kopia's reader checks it.

// chunkFetches bounds the chunks being fetched at once, by all the files of
// all restores of the process: fetching is CPU work (AES-GCM, zstd), so
// more than the cores would only queue.
var chunkFetches = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// chunksAhead is how many chunks of one file may be fetched, or waiting to
// be written, beyond the one being written.
var chunksAhead = min(max(2, runtime.GOMAXPROCS(0)), 8)

// chunkBudget bounds the bytes of chunks fetched and not yet written, over
// all files being restored: 8 files restore at once, each with up to
// chunksAhead chunks of up to 8 MiB (kopia's largest) in flight, and this
// keeps the total down to a few dozen chunks. A file takes its budget chunk
// by chunk, in order, so the next chunk its writer waits for always has
// its share or is first in line for it: files cannot starve one another.
var (
	chunkBudgetBytes = max(64<<20, int64(runtime.GOMAXPROCS(0))*16<<20)
	chunkBudget      = semaphore.NewWeighted(chunkBudgetBytes)
)

// maxChunkBytes is the largest chunk read ahead; kopia's splitters make
// none larger than 8 MiB, and a file with a larger one is read as before.
const maxChunkBytes = 64 << 20

// chunkedContent is a file's content as the chunks of its index.
type chunkedContent struct {
	o        *confinedOutput
	contents content.Reader
	chunks   []object.IndirectObjectEntry
}

// chunkedFile returns e's content as chunks to read ahead, or nil for a file
// to read as one stream: one stored as a single chunk (most files), or
// stored in a way the read-ahead does not handle (compressed at the object
// level, as older repositories did; an index that is not one run of chunks),
// which kopia's own reader does handle.
func (o *confinedOutput) chunkedFile(ctx context.Context, e fs.File) (*chunkedContent, error) {
	h, ok := e.(object.HasObjectID)
	if !ok {
		return nil, nil
	}

	indexID, ok := h.ObjectID().IndexObjectID()
	if !ok {
		return nil, nil
	}

	dr, ok := o.rep.(repo.DirectRepository)
	if !ok {
		return nil, nil
	}

	chunks, err := loadChunkIndex(ctx, o.rep, indexID)
	if err != nil {
		return nil, err
	}

	var next int64

	for _, c := range chunks {
		if _, compressed, ok := c.Object.ContentID(); !ok || compressed || c.Start != next || c.Length <= 0 || c.Length > maxChunkBytes {
			return nil, nil
		}

		next += c.Length
	}

	if len(chunks) < 2 {
		return nil, nil
	}

	return &chunkedContent{o: o, contents: dr.ContentReader(), chunks: chunks}, nil
}

// loadChunkIndex reads the index object of a chunked object, as kopia's
// object.LoadIndexObject does (the index may itself be chunked).
func loadChunkIndex(ctx context.Context, rep repo.Repository, indexID object.ID) ([]object.IndirectObjectEntry, error) {
	r, err := rep.OpenObject(ctx, indexID)
	if err != nil {
		return nil, fmt.Errorf("read chunk index: %w", err)
	}
	defer r.Close() //nolint:errcheck

	var index struct {
		Entries []object.IndirectObjectEntry `json:"entries"`
	}

	if err := json.NewDecoder(r).Decode(&index); err != nil {
		return nil, fmt.Errorf("read chunk index: %w", err)
	}

	return index.Entries, nil
}

// reader returns the content as an io.Reader whose WriteTo reads the chunks
// ahead in parallel and writes them in order; p is the file's path, for its
// digest.
func (c *chunkedContent) reader(ctx context.Context, p string) *chunkReader {
	r := &chunkReader{c: c, ctx: ctx}
	if c.o.digests != nil {
		r.digestPath, r.hash = p, xxhash.New()
	}

	return r
}

// chunkReader is the content of a chunked file. Its WriteTo, which io.Copy
// uses, writes it all; Read is there for io.Reader, and reads the chunks one
// by one.
type chunkReader struct {
	c   *chunkedContent
	ctx context.Context //nolint:containedctx // an io.Reader's reads need one

	// hash is the digest being taken (RestoreOptions.Digests), as
	// Digests.reader takes it: xxHash64 of the content in order, kept for
	// digestPath once the whole content is written.
	hash       *xxhash.Digest
	digestPath string
	written    int64

	next    int    // Read's next chunk
	pending []byte // what Read has left of the chunk before it
}

// wrote accounts for chunk b, written; the digest is kept after the last.
func (r *chunkReader) wrote(b []byte) {
	r.written += int64(len(b))

	if r.hash == nil {
		return
	}

	r.hash.Write(b) //nolint:errcheck // never fails

	if r.written == r.c.size() {
		r.c.o.digests.add(r.digestPath, writtenDigest{size: r.written, sum: r.hash.Sum64()})
	}
}

func (c *chunkedContent) size() int64 {
	last := c.chunks[len(c.chunks)-1]

	return last.Start + last.Length
}

// Read implements io.Reader, a chunk at a time.
func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if r.next == len(r.c.chunks) {
			return 0, io.EOF
		}

		b, err := r.c.fetch(r.ctx, r.next)
		if err != nil {
			return 0, err
		}

		r.next++
		r.pending = b
	}

	n := copy(p, r.pending)
	r.wrote(r.pending[:n])
	r.pending = r.pending[n:]

	return n, nil
}

// fetchedChunk is one chunk on its way to the writer; data and err are set
// before done is closed. held is the budget it took, set before its fetch
// starts.
type fetchedChunk struct {
	done chan struct{}
	data []byte
	err  error
	held int64
	// zeros is set, with no data, for a chunk whose content this file
	// has already shown to be all zeros.
	zeros bool
}

// WriteTo implements io.WriterTo: it writes the chunks to w in order, each
// fetched ahead by the pipeline. It returns once every goroutine it started
// has ended, whether it succeeds or not.
func (r *chunkReader) WriteTo(w io.Writer) (int64, error) {
	if r.next > 0 || len(r.pending) > 0 {
		return 0, errors.New("write chunked file: WriteTo after Read")
	}

	ctx, cancel := context.WithCancel(r.ctx)

	var (
		wg     sync.WaitGroup
		heldMu sync.Mutex
		held   int64 // budget taken and not yet given back
	)

	take := func(n int64) {
		heldMu.Lock()
		held += n
		heldMu.Unlock()
	}

	giveBack := func(n int64) {
		heldMu.Lock()
		held -= n
		heldMu.Unlock()
		chunkBudget.Release(n)
	}

	// ahead carries the chunks in file order; its capacity is the window.
	ahead := make(chan *fetchedChunk, chunksAhead)

	// A sparse file (a disk image, a preallocated database) is mostly
	// chunks of zeros, all one content. Once it has been read, and found
	// to be zeros, the file's later chunks of it are written as holes
	// without being decrypted and decompressed again: the same content id
	// is the same plaintext.
	var zeroContents sync.Map // content.ID → struct{}

	wg.Go(func() {
		defer close(ahead)

		for i := range r.c.chunks {
			fc := &fetchedChunk{done: make(chan struct{})}

			select {
			case ahead <- fc:
			case <-ctx.Done():
				return
			}

			if cid, _, _ := r.c.chunks[i].Object.ContentID(); isStored(&zeroContents, cid) {
				fc.zeros = true
				close(fc.done)

				continue
			}

			n := min(r.c.chunks[i].Length, chunkBudgetBytes)
			if err := chunkBudget.Acquire(ctx, n); err != nil {
				fc.err = err
				close(fc.done)

				return
			}

			take(n)
			fc.held = n

			select {
			case chunkFetches <- struct{}{}:
			case <-ctx.Done():
				fc.err = ctx.Err()
				close(fc.done)

				return
			}

			wg.Go(func() {
				defer func() { <-chunkFetches }()

				fc.data, fc.err = r.c.fetch(ctx, i)
				if fc.err == nil && allZeros(fc.data) {
					cid, _, _ := r.c.chunks[i].Object.ContentID()
					zeroContents.Store(cid, struct{}{})
				}

				close(fc.done)
			})
		}
	})

	defer func() {
		cancel()
		wg.Wait()

		for range ahead { //nolint:revive // drains what was never written
		}

		heldMu.Lock()
		left := held
		heldMu.Unlock()

		if left > 0 {
			chunkBudget.Release(left)
		}
	}()

	for i := range r.c.chunks {
		// a chunk fetched already is not written once the restore stops
		if ctx.Err() != nil {
			return r.written, context.Cause(ctx) //nolint:wrapcheck
		}

		var fc *fetchedChunk

		select {
		case fc = <-ahead:
		case <-ctx.Done():
		}

		if fc == nil {
			return r.written, context.Cause(ctx) //nolint:wrapcheck
		}

		select {
		case <-fc.done:
		case <-ctx.Done():
			return r.written, context.Cause(ctx) //nolint:wrapcheck
		}

		if fc.err != nil {
			return r.written, fc.err
		}

		if fc.zeros {
			if err := r.writeZeros(w, r.c.chunks[i].Length); err != nil {
				return r.written, err
			}

			continue
		}

		if _, err := w.Write(fc.data); err != nil {
			return r.written, err //nolint:wrapcheck
		}

		r.wrote(fc.data)
		fc.data = nil
		giveBack(fc.held)
	}

	r.next = len(r.c.chunks)

	return r.written, nil
}

// fetch reads chunk i: one content, decrypted, authenticated and
// decompressed by the content manager, into a buffer of its own.
func (c *chunkedContent) fetch(ctx context.Context, i int) ([]byte, error) {
	ch := c.chunks[i]
	cid, _, _ := ch.Object.ContentID()

	b, err := c.contents.GetContent(ctx, cid)
	if err != nil {
		return nil, fmt.Errorf("read bytes %d to %d: %w", ch.Start, ch.Start+ch.Length, err)
	}

	if int64(len(b)) != ch.Length {
		return nil, fmt.Errorf("read bytes %d to %d: the vault's chunk holds %d bytes, its index says %d; check the vault (vigil vault verify)", ch.Start, ch.Start+ch.Length, len(b), ch.Length)
	}

	return b, nil
}

// zeroWriter is a writer that can be told of n zero bytes without being
// handed them: the restore's sparseWriter, which leaves them as a hole.
type zeroWriter interface {
	writeZeros(n int64) error
}

func (c *countingWriter) writeZeros(n int64) error {
	zw, ok := c.w.(zeroWriter)
	if !ok {
		return writeZerosTo(c.w, n)
	}

	if err := zw.writeZeros(n); err != nil {
		return err
	}

	c.n.Add(n)

	return nil
}

// writeZerosTo writes n zero bytes to w.
func writeZerosTo(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, holeBlock)
		if _, err := w.Write(zeroBlock[:k]); err != nil {
			return err //nolint:wrapcheck
		}

		n -= k
	}

	return nil
}

// writeZeros writes a chunk of n zeros to w, and takes it into the digest.
func (r *chunkReader) writeZeros(w io.Writer, n int64) error {
	var err error
	if zw, ok := w.(zeroWriter); ok {
		err = zw.writeZeros(n)
	} else {
		err = writeZerosTo(w, n)
	}

	if err != nil {
		return err //nolint:wrapcheck
	}

	for left := n; left > 0; {
		k := min(left, holeBlock)
		r.wrote(zeroBlock[:k])
		left -= k
	}

	return nil
}

// allZeros says whether b holds only zeros.
func allZeros(b []byte) bool {
	for len(b) >= holeBlock {
		if !bytes.Equal(b[:holeBlock], zeroBlock[:]) {
			return false
		}

		b = b[holeBlock:]
	}

	return bytes.Equal(b, zeroBlock[:len(b)])
}

func isStored(m *sync.Map, key any) bool {
	_, ok := m.Load(key)

	return ok
}
