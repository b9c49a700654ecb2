package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// VerifyResult reports what Verify checked and what it found wrong.
type VerifyResult struct {
	Snapshots int64
	// Files and Dirs count distinct objects: a file that is identical in
	// several snapshots is checked once.
	Files, Dirs int64
	// FilesRead and BytesRead count the files whose contents were read back
	// and decrypted.
	FilesRead, BytesRead int64
	// Errors lists the problems found, each naming the snapshot and path.
	Errors []string
}

// maxVerifyErrors bounds the problems Verify collects; past that, the vault
// is badly damaged and more detail does not help.
const maxVerifyErrors = 1000

// Verify checks that every complete snapshot's directory tree is readable
// from storage, that every content it references is indexed and its pack
// blob exists, and reads back and decrypts readDataPercent (0 to 100) percent
// of the files, chosen at random.
//
// Problems are collected, not fatal: when any is found, the result lists them
// and the error wraps ErrCorrupt. Other errors (the vault cannot be opened,
// ctx is cancelled) are returned as they are.
func (v *Vault) Verify(ctx context.Context, readDataPercent float64) (VerifyResult, error) {
	if readDataPercent < 0 || readDataPercent > 100 {
		return VerifyResult{}, fmt.Errorf("verify vault %q: percentage of data to read must be between 0 and 100, not %v", v.cfg.Name, readDataPercent)
	}

	release, err := v.shared(ctx)
	if err != nil {
		return VerifyResult{}, err
	}
	defer release()

	rep, err := v.openReadOnly(ctx)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify vault %q: %w", v.cfg.Name, err)
	}
	defer rep.Close(ctx) //nolint:errcheck

	res, err := verify(ctx, rep, readDataPercent)
	if err != nil {
		return res, fmt.Errorf("verify vault %q: %w", v.cfg.Name, err)
	}

	if ctxErr := ctx.Err(); ctxErr != nil {
		return res, fmt.Errorf("verify vault %q: cancelled: %w", v.cfg.Name, ctxErr)
	}

	if n := len(res.Errors); n > 0 {
		return res, fmt.Errorf("verify vault %q: %d problem(s), first: %s: %w; back up the affected resources again, into another vault if the storage is failing", v.cfg.Name, n, res.Errors[0], ErrCorrupt)
	}

	return res, nil
}

// openReadOnly opens a second, read-only connection to the vault, so that
// verifying can never write to it, and so that it reads the vault's current
// indexes rather than what this process has loaded.
func (v *Vault) openReadOnly(ctx context.Context) (repo.DirectRepository, error) {
	configFile, err := writeConnectionConfig(v.cfg, verifyConfigFileName, true)
	if err != nil {
		return nil, err
	}

	r, err := repo.Open(ctx, configFile, v.cfg.Password, v.repoOptions())
	if err != nil {
		return nil, fmt.Errorf("open vault read-only: %w", err)
	}

	dr, ok := r.(repo.DirectRepository)
	if !ok {
		r.Close(ctx) //nolint:errcheck
		return nil, errors.New("open vault read-only: not a direct repository")
	}

	return dr, nil
}

func verify(ctx context.Context, rep repo.DirectRepository, readDataPercent float64) (VerifyResult, error) {
	var res VerifyResult

	blobs, err := blob.ReadBlobMap(ctx, rep.BlobReader())
	if err != nil {
		return res, fmt.Errorf("list blobs: %w", err)
	}

	ids, err := snapshot.ListSnapshotManifests(ctx, rep, nil, nil)
	if err != nil {
		return res, fmt.Errorf("list snapshots: %w", err)
	}

	var files, dirs, filesRead, bytesRead atomic.Int64

	checkObject := func(ctx context.Context, e fs.Entry, oid object.ID) error {
		_, isFile := e.(fs.File)

		switch e := e.(type) {
		case fs.Directory:
			dirs.Add(1)

			// Reading the listing here, rather than leaving it to the
			// walker, gets the path into the error. The walker reuses it.
			iter, err := e.Iterate(ctx)
			if err != nil {
				return fmt.Errorf("read folder listing: %w", err)
			}

			iter.Close()
		case fs.File:
			files.Add(1)
		}

		contentIDs, err := rep.VerifyObject(ctx, oid)
		if err != nil {
			return fmt.Errorf("object %v: %w", oid, err)
		}

		for _, cid := range contentIDs {
			info, err := rep.ContentInfo(ctx, cid)
			if err != nil {
				return fmt.Errorf("content %v: %w", cid, err)
			}

			if _, ok := blobs[info.PackBlobID]; !ok {
				return fmt.Errorf("content %v is in blob %v, which is missing from storage", cid, info.PackBlobID)
			}
		}

		if !isFile || rand.Float64()*100 >= readDataPercent {
			return nil
		}

		r, err := rep.OpenObject(ctx, oid)
		if err != nil {
			return fmt.Errorf("open object %v: %w", oid, err)
		}
		defer r.Close() //nolint:errcheck

		n, err := io.Copy(io.Discard, r)
		if err != nil {
			return fmt.Errorf("read object %v: %w", oid, err)
		}

		filesRead.Add(1)
		bytesRead.Add(n)

		return nil
	}

	tw, err := snapshotfs.NewTreeWalker(ctx, snapshotfs.TreeWalkerOptions{
		EntryCallback: func(ctx context.Context, e fs.Entry, oid object.ID, entryPath string) error {
			if err := checkObject(ctx, e, oid); err != nil {
				// the walker keeps the error but not the path
				return fmt.Errorf("%s: %w", entryPath, err)
			}

			return nil
		},
		MaxErrors: maxVerifyErrors,
	})
	if err != nil {
		return res, fmt.Errorf("start tree walk: %w", err)
	}
	defer tw.Close(ctx)

	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}

		man, err := snapshot.LoadSnapshot(ctx, rep, id)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("snapshot %s: cannot load its manifest: %v", id, err))
			continue
		}

		if man.IncompleteReason != "" {
			continue
		}

		res.Snapshots++

		root, err := snapshotfs.SnapshotRoot(rep, man)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("snapshot %s: %v", id, err))
			continue
		}

		// errors are collected by the walker and read below
		tw.Process(ctx, root, fmt.Sprintf("snapshot %s (%s)", id, man.Source)) //nolint:errcheck
	}

	walkErrs, numErrs := tw.GetErrors()
	for _, err := range walkErrs {
		res.Errors = append(res.Errors, err.Error())
	}

	if numErrs > len(walkErrs) {
		res.Errors = append(res.Errors, fmt.Sprintf("and %d more problems, not listed", numErrs-len(walkErrs)))
	}

	res.Files, res.Dirs = files.Load(), dirs.Load()
	res.FilesRead, res.BytesRead = filesRead.Load(), bytesRead.Load()

	return res, nil
}
