package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/restore"
)

// RestoreResult describes a completed restore.
type RestoreResult struct {
	Bytes, Files, Dirs, Symlinks int64
	// Digests are the files' digests, taken as they were written, when
	// RestoreOptions.Digests asked for them; nil otherwise.
	Digests *Digests
}

// Restore writes snapshot snapshotID into target, which must not exist or be
// an empty folder. It restores contents, modes, modification times and
// symbolic links (as links), and owners when running as root.
//
// Whatever the snapshot holds, nothing is written outside target: every
// entry name must be a plain name (no "/", "..", or empty name), and every
// file operation goes through an os.Root opened on target, which refuses to
// follow a symbolic link out of it.
//
// progress, when set, is called from time to time from a single goroutine.
// A failed or cancelled restore leaves a partial tree in target.
func (v *Vault) Restore(ctx context.Context, snapshotID, target string, progress func(Progress)) (RestoreResult, error) {
	return v.RestorePath(ctx, snapshotID, "", target, progress)
}

// RestorePath is Restore of only the file or folder at p in the snapshot
// (all of it when p is the root, ""): it is written at the same path below
// target, inside the folders on the way, which get their recorded modes
// and times but hold nothing else. A bad or missing p is a *PathError,
// found before anything is written.
func (v *Vault) RestorePath(ctx context.Context, snapshotID, p, target string, progress func(Progress)) (RestoreResult, error) {
	return v.restoreWith(ctx, snapshotID, p, target, RestoreOptions{Progress: progress})
}

func (v *Vault) restoreWith(ctx context.Context, snapshotID, p, target string, opts RestoreOptions) (RestoreResult, error) {
	res, err := v.restore(ctx, snapshotID, p, target, opts)
	if err != nil {
		what := ""
		if p != "" {
			what = fmt.Sprintf("%q of ", p)
		}
		return RestoreResult{}, fmt.Errorf("restore %ssnapshot %s of vault %q into %s: %w%s", what, snapshotID, v.cfg.Name, target, err, storageAdvice(err))
	}

	return res, nil
}

func (v *Vault) restore(ctx context.Context, snapshotID, p, target string, opts RestoreOptions) (RestoreResult, error) {
	progress := opts.Progress

	if target == "" {
		return RestoreResult{}, errors.New("no target folder given")
	}

	names, err := SplitPath(p)
	if err != nil {
		return RestoreResult{}, err
	}

	release, err := v.shared(ctx)
	if err != nil {
		return RestoreResult{}, err
	}
	defer release()

	// From an S3 vault, each pack the restore reads from is fetched whole
	// once rather than file by file (see packCache).
	ctx, dropPacks := withPackCache(ctx, v.cfg.Tuning.PackCacheBytes)
	defer dropPacks()

	man, err := v.loadSnapshot(ctx, snapshotID)
	if err != nil {
		return RestoreResult{}, err
	}

	if man.IncompleteReason != "" {
		return RestoreResult{}, fmt.Errorf("snapshot is incomplete (%s) and cannot be restored; pick a complete one", man.IncompleteReason)
	}

	var digests *Digests
	if opts.Digests {
		digests = newDigests(snapshotID)
	}

	// The restore walks the snapshot's folders as stored (storedDir):
	// each listing is read once, and kept with the digests when it takes
	// them.
	root, err := storedRoot(v.rep, man, digests)
	if err != nil {
		return RestoreResult{}, err
	}

	var rootEntry fs.Directory = root

	var total Progress
	if s := man.RootEntry.DirSummary; s != nil {
		total.TotalBytes, total.TotalFiles = s.TotalFileSize, s.TotalFileCount
	}

	if len(names) > 0 {
		if rootEntry, total, err = pathTree(ctx, v.rep, man, names); err != nil {
			return RestoreResult{}, err
		}
	}

	if err := prepareTarget(target); err != nil {
		return RestoreResult{}, err
	}

	out, err := newConfinedOutput(v.rep, rootEntry, target, v.cfg.Tuning.SyncRestoredFiles)
	if err != nil {
		return RestoreResult{}, err
	}
	defer out.closeAll()

	out.digests = digests

	stopReports := reportEvery(progress, func() Progress {
		p := total
		p.Bytes, p.Files = out.bytes.Load(), out.files.Load()

		return p
	})

	// kopia's restore stops starting new entries when this channel closes,
	// and then returns without an error; ctx is checked afterwards.
	cancel := make(chan struct{})
	stopCancel := context.AfterFunc(ctx, func() { close(cancel) })

	// Contents are read through pack files kept open for the restore.
	readCtx, closePacks := withPackFiles(ctx)
	defer closePacks()

	stats, err := restore.Entry(readCtx, v.rep, out, rootEntry, restore.Options{
		Parallel: parallelism(v.cfg.Tuning.RestoreParallelism, defaultRestoreParallelism),
		// Without this, kopia restores only the top level and leaves
		// placeholders for the rest.
		RestoreDirEntryAtDepth: math.MaxInt32,
		Cancel:                 cancel,
	})

	stopCancel()
	stopReports()

	if ctxErr := ctx.Err(); ctxErr != nil {
		return RestoreResult{}, fmt.Errorf("restore cancelled, %s holds a partial tree: %w", target, ctxErr)
	}

	if err != nil {
		return RestoreResult{}, err //nolint:wrapcheck
	}

	return RestoreResult{
		Bytes:    stats.RestoredTotalFileSize,
		Files:    int64(stats.RestoredFileCount),
		Dirs:     int64(stats.RestoredDirCount),
		Symlinks: int64(stats.RestoredSymlinkCount),
		Digests:  out.digests,
	}, nil
}

func (v *Vault) loadSnapshot(ctx context.Context, snapshotID string) (*snapshot.Manifest, error) {
	if snapshotID == "" {
		return nil, errors.New("no snapshot id given")
	}

	man, err := snapshot.LoadSnapshot(ctx, v.rep, manifest.ID(snapshotID))
	if errors.Is(err, snapshot.ErrSnapshotNotFound) {
		// it may have been written by another process since the vault was
		// opened
		if rerr := v.rep.Refresh(ctx); rerr != nil {
			return nil, fmt.Errorf("refresh vault: %w", rerr)
		}

		man, err = snapshot.LoadSnapshot(ctx, v.rep, manifest.ID(snapshotID))
	}

	if errors.Is(err, snapshot.ErrSnapshotNotFound) {
		return nil, fmt.Errorf("snapshot %s is not in vault %q; list its snapshots to find the right id", snapshotID, v.cfg.Name)
	}

	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", snapshotID, err)
	}

	if man.RootEntry == nil {
		return nil, fmt.Errorf("snapshot %s has no root entry", snapshotID)
	}

	return man, nil
}

// prepareTarget makes sure target is a new or empty folder before anything
// is written.
func prepareTarget(target string) error {
	fi, err := os.Lstat(target)

	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(target, 0o700); err != nil {
			return fmt.Errorf("create target folder: %w", err)
		}

		return nil
	case err != nil:
		return fmt.Errorf("check target folder: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("target %s exists and is not a folder; restore into a new or empty folder", target)
	}

	f, err := os.Open(target)
	if err != nil {
		return fmt.Errorf("check target folder: %w", err)
	}
	defer f.Close() //nolint:errcheck

	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("check target folder: %w", err)
	}

	if len(names) > 0 {
		return fmt.Errorf("target folder %s is not empty; restore into a new or empty folder so nothing in it is overwritten", target)
	}

	return nil
}
