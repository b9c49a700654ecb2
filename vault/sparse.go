package vault

import (
	"bytes"
)

// sparseFile is what a sparseWriter writes to: an *os.File, or the bare
// descriptor of a file being restored (restoredFile).
type sparseFile interface {
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
}

// holeBlock is the granularity at which a restore leaves holes: the block
// size of ext4, XFS, Btrfs and tmpfs. Zeros that do not fill an aligned
// block are written as they are.
const holeBlock = 4096

var zeroBlock [holeBlock]byte

// sparseWriter writes a new, empty file, leaving every aligned block of
// zeros unwritten, so that a sparse file (a disk image, a database with
// preallocated space) comes back taking the space its data takes, not its
// full length. A block never written reads as zeros, so the content is
// the same whatever sizes it arrives in. Finish writes the last partial
// block and sets the file's length, since trailing zeros are never
// written.
type sparseWriter struct {
	f sparseFile
	// base is where the next block starts; pending holds the first
	// npending bytes of it, when they came without the rest.
	base     int64
	pending  [holeBlock]byte
	npending int
	// end is where the data written so far ends.
	end int64
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	n := len(p)

	if w.npending > 0 {
		c := copy(w.pending[w.npending:], p)
		w.npending += c
		p = p[c:]

		if w.npending < holeBlock {
			return n, nil
		}

		if err := w.blocks(w.pending[:]); err != nil {
			return 0, err
		}

		w.npending = 0
	}

	whole := len(p) / holeBlock * holeBlock
	if err := w.blocks(p[:whole]); err != nil {
		return 0, err
	}

	w.npending = copy(w.pending[:], p[whole:])

	return n, nil
}

// writeZeros writes n zero bytes, as Write would, without being handed
// them: whole blocks of them are left as a hole at once.
func (w *sparseWriter) writeZeros(n int64) error {
	if w.npending > 0 {
		k := min(n, int64(holeBlock-w.npending))
		if _, err := w.Write(zeroBlock[:k]); err != nil {
			return err
		}

		n -= k
	}

	// the pending block is now complete and written, or n is spent
	whole := n / holeBlock * holeBlock
	w.base += whole

	if _, err := w.Write(zeroBlock[:n-whole]); err != nil {
		return err
	}

	return nil
}

// blocks writes whole blocks at base, each run of data between blocks of
// zeros in one write.
func (w *sparseWriter) blocks(p []byte) error {
	start, end := 0, 0
	flush := func() error {
		if end > start {
			if _, err := w.f.WriteAt(p[start:end], w.base+int64(start)); err != nil {
				return err //nolint:wrapcheck
			}

			w.end = w.base + int64(end)
		}

		return nil
	}

	for ; end < len(p); end += holeBlock {
		if bytes.Equal(p[end:end+holeBlock], zeroBlock[:]) {
			if err := flush(); err != nil {
				return err
			}

			start = end + holeBlock
		}
	}

	if err := flush(); err != nil {
		return err
	}

	w.base += int64(len(p))

	return nil
}

// Finish writes what is left of the last block and gives the file its
// full length, holes at the end included.
func (w *sparseWriter) Finish() error {
	rest := w.pending[:w.npending]
	length := w.base + int64(len(rest))

	if !bytes.Equal(rest, zeroBlock[:len(rest)]) {
		if _, err := w.f.WriteAt(rest, w.base); err != nil {
			return err //nolint:wrapcheck
		}

		w.end = length
	}

	// Most files end in data: no call is needed for them.
	if w.end == length {
		return nil
	}

	return w.f.Truncate(length) //nolint:wrapcheck
}
