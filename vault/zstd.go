package vault

import (
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo/compression"
)

// kopia's zstd compressors keep a pool of streaming encoders made with the
// library's defaults: one encoding goroutine per core and, at the fastest
// level, 8 MiB of history per goroutine. A backup compresses one chunk per
// call from several uploads at once, so the pool grows to one encoder per
// upload and held about 40 MiB of history while backing up the Go tree, the
// largest single part of the backup's memory.
//
// leanZstd compresses the same way with encoders that keep only the
// history their window needs (the library's low-memory mode) and a 1 MiB
// window. They keep one goroutine per core: with one, a single large file
// compressed on one core and backed up 5-10% slower. Its output is
// ordinary zstd under kopia's own header, so any kopia (and vigil before
// this change) reads it; what differs is memory, not the format.
// bench/README.md has the measurements.
type leanZstd struct {
	name   compression.Name
	id     compression.HeaderID
	header []byte
	pool   sync.Pool
	// reads is kopia's own compressor for the same header: decompression
	// is not changed.
	reads compression.Compressor
}

// leanZstdWindow is how far back a match may reach. The reference zstd
// uses 512 KiB at its level 1 (window log 19); kopia's default at its
// fastest level is 4 MiB, which doubles as 8 MiB of history per encoder.
// On the Go tree 1 MiB made the vault no larger (bench/README.md).
const leanZstdWindow = 1 << 20

var useLeanZstd sync.Once

// registerLeanZstd puts leanZstd in the place of kopia's zstd compressors,
// under the same names and header ids, before any vault compresses.
func registerLeanZstd() {
	useLeanZstd.Do(func() {
		for name, level := range map[compression.Name]zstd.EncoderLevel{
			"zstd-fastest":            zstd.SpeedFastest,
			"zstd":                    zstd.SpeedDefault,
			"zstd-better-compression": zstd.SpeedBetterCompression,
		} {
			stock := compression.ByName[name]
			if stock == nil {
				// kopia renamed or dropped it: keep whatever it has
				continue
			}

			c := &leanZstd{name: name, id: stock.HeaderID(), reads: stock}
			c.header = headerBytes(c.id)
			c.pool.New = func() any {
				w, err := zstd.NewWriter(nil,
					zstd.WithEncoderLevel(level),
					zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
					zstd.WithLowerEncoderMem(true),
					zstd.WithWindowSize(leanZstdWindow))
				if err != nil {
					panic(fmt.Sprintf("zstd encoder for %s: %v", name, err))
				}

				return w
			}

			compression.ByName[name] = c
			compression.ByHeaderID[c.id] = c
		}
	})
}

// headerBytes is kopia's compression header: the id, big-endian.
func headerBytes(id compression.HeaderID) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(id))
}

func (c *leanZstd) HeaderID() compression.HeaderID { return c.id }

// Compress writes kopia's header and a zstd stream of input, as kopia's
// own zstd compressor does.
func (c *leanZstd) Compress(output io.Writer, input io.Reader) error {
	if _, err := output.Write(c.header); err != nil {
		return fmt.Errorf("write compression header: %w", err)
	}

	w := c.pool.Get().(*zstd.Encoder) //nolint:forcetypeassert
	defer c.pool.Put(w)

	w.Reset(output)

	if _, err := io.Copy(w, input); err != nil {
		return fmt.Errorf("compress: %w", err)
	}

	if err := w.Close(); err != nil {
		return fmt.Errorf("compress: %w", err)
	}

	return nil
}

// Decompress is kopia's own.
func (c *leanZstd) Decompress(output io.Writer, input io.Reader, withHeader bool) error {
	return c.reads.Decompress(output, input, withHeader) //nolint:wrapcheck
}
