package vault

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// contentCheck compares the contents of the files handed to it, workers at
// a time, while more are handed over: with every file compared, the walk
// of the listings and the reading of the files overlap.
type contentCheck struct {
	c     *comparison
	g     *errgroup.Group
	gctx  context.Context //nolint:containedctx // the workers' context
	queue chan numberedFile
	next  int // the number of the next file handed over

	compared, bytes, digested, vaultBytes atomic.Int64

	mu sync.Mutex
	// +checklocks:mu
	found []foundDiff
}

type numberedFile struct {
	i int
	f fileToCompare
}

// foundDiff is the difference found in the i-th file handed over.
type foundDiff struct {
	i    int
	diff string
}

// contentQueue bounds the files waiting to be compared; the walk waits
// when it is full. Each keeps its folder open (restoredDir) until it is
// compared, so this bounds the folders open too, well below the process's
// limit on open files, whatever the shape of the tree.
const contentQueue = 512

func (c *comparison) startContents(ctx context.Context, workers int) *contentCheck {
	g, gctx := errgroup.WithContext(ctx)
	cc := &contentCheck{c: c, g: g, gctx: gctx, queue: make(chan numberedFile, contentQueue)}

	for range workers {
		g.Go(func() error {
			for nf := range cc.queue {
				if err := gctx.Err(); err != nil {
					nf.f.dir.release()
					return err //nolint:wrapcheck
				}

				if err := cc.compare(nf); err != nil {
					return err
				}
			}

			return nil
		})
	}

	return cc
}

// add hands f over to be compared; false when comparing failed or ctx
// ended, and no more are taken. f's folder is retained until it is.
func (cc *contentCheck) add(f fileToCompare) bool {
	if f.dir != nil {
		f.dir.retain()
	}

	select {
	case cc.queue <- numberedFile{i: cc.next, f: f}:
		cc.next++
		return true
	case <-cc.gctx.Done():
		f.dir.release()
		return false
	}
}

// wait waits until every file handed over is compared, or comparing has
// failed. No file may be added after it.
func (cc *contentCheck) wait() error {
	close(cc.queue)
	err := cc.g.Wait()

	// the files left when comparing failed
	for nf := range cc.queue {
		nf.f.dir.release()
	}

	return err //nolint:wrapcheck
}

func (cc *contentCheck) compare(nf numberedFile) error {
	defer nf.f.dir.release()

	var (
		n    int64
		diff string
		err  error
	)

	// A digest of another length is not of this file.
	d, fromDigest := cc.c.digests.of(nf.f.path)
	fromDigest = fromDigest && d.size == nf.f.size

	if fromDigest {
		n, diff, err = cc.c.compareDigest(cc.gctx, nf.f, d)
	} else {
		n, diff, err = cc.c.compareFile(cc.gctx, nf.f)
	}

	if err != nil {
		return err
	}

	cc.compared.Add(1)
	cc.bytes.Add(n)

	if fromDigest {
		cc.digested.Add(1)
	} else {
		cc.vaultBytes.Add(n)
	}

	if diff != "" {
		cc.mu.Lock()
		cc.found = append(cc.found, foundDiff{i: nf.i, diff: diff})
		cc.mu.Unlock()
	}

	return nil
}
