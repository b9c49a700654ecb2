package database

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vigil-backup/vigil"
)

// pipeSize is the kernel buffer of the pipes between a dump tool and the
// vault. Dump tools write in small pieces (pg_dump: 4 KiB); with Linux's
// default 64 KiB pipe, tool and reader take turns thousands of times a
// second. A larger pipe lets each run ahead of the other.
const pipeSize = 1 << 20

// bigPipe returns an OS pipe with a pipeSize buffer where the kernel
// allows it (the default stays otherwise: only speed depends on it).
func bigPipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	if sc, err := w.SyscallConn(); err == nil {
		// Through SyscallConn, not Fd, which would switch the file to
		// blocking mode.
		_ = sc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
	return r, w, nil
}

// DumpStream is a dump being made, read as a stream. Read returns io.EOF
// only once the dump has succeeded; a dump that fails makes Read return
// its error instead, so that a reader never takes a partial dump for a
// whole one.
type DumpStream struct {
	r      *os.File
	cancel context.CancelCauseFunc
	done   chan dumpResult

	mu       sync.Mutex
	res      dumpResult
	finished bool // res is in
	ended    bool // Read reached the end of the stream
}

type dumpResult struct {
	info *vigil.DatabaseInfo
	err  error
}

// ErrStreamAbandoned is the cause a dump is stopped with when its stream
// is closed before its end.
var ErrStreamAbandoned = errors.New("the dump's reader stopped reading")

// StartDump starts a consistent dump of src (see Dump) and returns it as a
// stream. The dump tool writes straight into an OS pipe that the stream
// reads. Finish must be called.
func StartDump(ctx context.Context, src Source) (*DumpStream, error) {
	r, w, err := bigPipe()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	d := &DumpStream{r: r, cancel: cancel, done: make(chan dumpResult, 1)}
	go func() {
		info, err := Dump(ctx, src, w)
		// The tool has exited: closing the last write end makes the
		// reader see the end of the stream, after the outcome is known.
		w.Close()
		d.done <- dumpResult{info, err}
	}()
	return d, nil
}

// Read reads the dump.
func (d *DumpStream) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, io.EOF) {
		d.mu.Lock()
		d.ended = true
		d.mu.Unlock()
		if res := d.wait(); res.err != nil {
			return n, res.err
		}
	}
	return n, err
}

func (d *DumpStream) wait() dumpResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.finished {
		d.res = <-d.done
		d.finished = true
	}
	return d.res
}

// Finish ends the dump and returns what it recorded. A dump whose stream
// was not read to its end is stopped first, and Finish then reports
// abandoned as true: its error is then the consequence of the reader's
// failure, not a cause.
func (d *DumpStream) Finish() (info *vigil.DatabaseInfo, abandoned bool, err error) {
	d.mu.Lock()
	abandoned = !d.ended
	d.mu.Unlock()
	if abandoned {
		d.cancel(ErrStreamAbandoned)
		// A tool blocked on a full pipe gets EPIPE and exits.
		d.r.Close()
	}
	res := d.wait()
	d.r.Close()
	d.cancel(nil)
	return res.info, abandoned, res.err
}

// feed returns what a tool reads as its standard input: r itself when it
// is a file, else a pipeSize pipe that a goroutine fills from r. wait
// returns the copy's error once the tool has exited (which closes the
// read end).
func feed(r io.Reader) (stdin *os.File, wait func() error, err error) {
	if f, ok := r.(*os.File); ok {
		return f, func() error { return nil }, nil
	}
	pr, pw, err := bigPipe()
	if err != nil {
		return nil, nil, err
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(pw, r, make([]byte, pipeSize))
		pw.Close()
		copied <- err
	}()
	return pr, func() error {
		pr.Close() // a copy still running gets EPIPE
		err := <-copied
		if errors.Is(err, unix.EPIPE) || errors.Is(err, os.ErrClosed) {
			return nil // the tool stopped reading: its own status tells why
		}
		return err
	}, nil
}
