package vault

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo/compression"
)

// TestLeanZstdIsKopiasFormat checks that the compressors vigil puts in the
// place of kopia's zstd ones write what kopia's own read, under the same
// header, with frames any zstd decoder takes and a window of leanZstdWindow.
func TestLeanZstdIsKopiasFormat(t *testing.T) {
	registerLeanZstd()

	// compressible but not trivial: words from a small vocabulary
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"backup ", "restore ", "vault ", "kopia ", "vigil ", "chunk ", "pack ", "index "}

	var input bytes.Buffer
	for input.Len() < 3<<20 {
		input.WriteString(words[rng.IntN(len(words))])
	}

	for _, name := range []compression.Name{"zstd-fastest", "zstd", "zstd-better-compression"} {
		t.Run(string(name), func(t *testing.T) {
			c := compression.ByName[name]

			lean, ok := c.(*leanZstd)
			if !ok {
				t.Fatalf("compression.ByName[%q] is %T, want *leanZstd", name, c)
			}

			if compression.ByHeaderID[lean.HeaderID()] != c {
				t.Fatalf("header id %x does not lead to the lean compressor", lean.HeaderID())
			}

			var out bytes.Buffer
			if err := c.Compress(&out, bytes.NewReader(input.Bytes())); err != nil {
				t.Fatal(err)
			}

			if out.Len() >= input.Len()/2 {
				t.Errorf("compressed %d bytes to %d: not compressing", input.Len(), out.Len())
			}

			// kopia's own decompressor, by the header it finds
			var back bytes.Buffer
			if err := compression.DecompressByHeader(&back, bytes.NewReader(out.Bytes())); err != nil {
				t.Fatalf("kopia cannot read it: %v", err)
			}

			if !bytes.Equal(back.Bytes(), input.Bytes()) {
				t.Fatal("kopia reads back other bytes")
			}

			// and the frame itself is plain zstd with the lean window
			frame := out.Bytes()[len(lean.header):]

			var h zstd.Header
			if err := h.Decode(frame); err != nil {
				t.Fatalf("not a zstd frame: %v", err)
			}

			if h.WindowSize > leanZstdWindow {
				t.Errorf("window %d, want at most %d", h.WindowSize, leanZstdWindow)
			}

			dec, err := zstd.NewReader(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()

			plain, err := dec.DecodeAll(frame, nil)
			if err != nil || !bytes.Equal(plain, input.Bytes()) {
				t.Fatalf("a stock zstd decoder reads it as %d bytes, %v", len(plain), err)
			}
		})
	}
}
