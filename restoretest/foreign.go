package restoretest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/vault"
	"github.com/vigil-backup/vigil/vault/restic"
)

// ResticOpener opens the restic vaults of the configuration: foreign
// repositories that restic writes and vigil reads only through restic.
type ResticOpener interface {
	Restic(ctx context.Context, name string) (*restic.Repo, error)
}

// resticVault reports whether vault name is a restic repository.
func (t *Tester) resticVault(name string) bool {
	v, ok := t.cfg.Current().Vault(name)
	return ok && v.Kind == config.KindRestic
}

// restoreFromRestic restores rp, a snapshot of a restic vault, into the
// copy with restic. An instant copy mounts a Kopia vault; a restic
// snapshot is restored in full, and the job's log says so.
func (t *Tester) restoreFromRestic(ctx context.Context, job *vigil.RestoreJob, cp resource.Copy, rp vigil.RecoveryPoint, res config.Resource, mode string) (string, error) {
	fc, ok := cp.(resource.FileCopy)
	if !ok {
		return "", fmt.Errorf("a %s copy cannot be restored from restic vault %q: only folders and apps can", rp.ResourceType, rp.Vault)
	}
	if t.restic == nil {
		return "", fmt.Errorf("vault %q is a restic repository, and this build of the restore tester opens none", rp.Vault)
	}
	repo, err := t.restic.Restic(ctx, rp.Vault)
	if err != nil {
		return "", err
	}
	if mode == config.RestoreInstant {
		t.jobLog(ctx, job.ID, "restore: instant mounts a vigil or Kopia vault; the snapshot of restic vault %q is restored in full instead", rp.Vault)
	}
	if slices.ContainsFunc(res.Validate, func(v config.Validator) bool { return v.Checksum != nil }) {
		// The checksum validator compares the copy with restic's listing
		// of the snapshot, a restic run of its own: it runs while restic
		// restores, not after.
		id, root, _ := strings.Cut(rp.SnapshotID, ":")
		l := &pendingListing{done: make(chan struct{})}
		t.listings.Store(job.ID, l)
		go func() {
			defer close(l.done)
			l.listing, l.err = repo.Listing(ctx, id, root)
		}()
	}
	return fc.RestoreFiles(ctx, resticFiles{repo}, rp)
}

// pendingListing is a restic listing being read for a restore test's
// checksum validator.
type pendingListing struct {
	done    chan struct{}
	listing restic.Listing
	err     error
}

// compareWithRestic is the checksum validator of a restic recovery point:
// the restore ran with --verify, so restic has read back every file it
// wrote and checked its content against the snapshot; what is left to
// check is the copy's entries against restic's listing (restic.Compare).
// The whole copy is checked, whatever sample_percent says: it reads no
// content.
func (t *Tester) compareWithRestic(ctx context.Context, jobID string, rp vigil.RecoveryPoint, dir string) error {
	id, root, _ := strings.Cut(rp.SnapshotID, ":")
	var listing restic.Listing
	if p, ok := t.listings.LoadAndDelete(jobID); ok {
		l := p.(*pendingListing)
		select {
		case <-l.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if l.err != nil {
			return l.err
		}
		listing = l.listing
	} else {
		repo, err := t.restic.Restic(ctx, rp.Vault)
		if err != nil {
			return err
		}
		if listing, err = repo.Listing(ctx, id, root); err != nil {
			return err
		}
	}
	cmp, err := listing.Compare(dir)
	if err != nil {
		return fmt.Errorf("compare with recovery point %s: %w", rp.ID, err)
	}
	if len(cmp.Mismatches) > 0 {
		return fmt.Errorf("the restored files differ from recovery point %s (restic snapshot %s): %s", rp.ID, restic.ShortID(id), strings.Join(cmp.Mismatches, "; "))
	}
	t.jobLog(ctx, jobID, "checksum: %d files, %d folders, %d symlinks match restic snapshot %s's listing (types, sizes, modes, file times, link targets); "+
		"content of the %d files (%d bytes) read back and checked against the snapshot by restic restore --verify as it wrote them",
		cmp.Files, cmp.Dirs, cmp.Symlinks, restic.ShortID(id), cmp.Files, cmp.Bytes)
	return nil
}

// resticFiles restores a restic recovery point's folder: its SnapshotID
// is restic's own id:folder.
type resticFiles struct{ repo *restic.Repo }

func (r resticFiles) RestoreWith(ctx context.Context, snapshotID, target string, opts vault.RestoreOptions) (vault.RestoreResult, error) {
	id, dir, ok := strings.Cut(snapshotID, ":")
	if !ok {
		return vault.RestoreResult{}, fmt.Errorf("%q is not a restic snapshot id:folder: run vigil vault sync again", snapshotID)
	}
	// restic cannot hash files for vigil as it writes them; with checksum
	// validators it reads back what it wrote and checks it against the
	// snapshot instead (--verify).
	res, err := r.repo.Restore(ctx, id, dir, target, restic.RestoreOptions{Verify: opts.Digests})
	if err != nil {
		return vault.RestoreResult{}, err
	}
	return vault.RestoreResult{Files: res.Files, Bytes: res.Bytes}, nil
}
