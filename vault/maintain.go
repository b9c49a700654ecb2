package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/content/indexblob"
	"github.com/kopia/kopia/repo/maintenance"
	"github.com/kopia/kopia/snapshot/snapshotgc"
	"github.com/kopia/kopia/snapshot/snapshotmaintenance"
)

// Maintain runs kopia maintenance on the vault: quick maintenance compacts
// indexes and small metadata packs; full maintenance also collects the data
// of deleted snapshots and deletes the blobs nothing references any more.
//
// How soon that space comes back depends on Config.SoleWriter:
//
//   - SoleWriter: kopia's "none" safety, and the space of snapshots deleted
//     before the call is given back by the call. That is safe only if
//     nothing writes to the vault meanwhile, so Maintain first waits for this
//     process's backups, restores and verifies to finish and holds new ones
//     back until it is done; other processes must not write to the vault.
//   - otherwise: kopia's "full" safety, the stock CLI's default, which is
//     safe while other clients back up into the vault. Unreferenced contents
//     must be at least a day old to be collected and their blobs go in later
//     runs, so space comes back after full runs on two or more days.
//
// vigil writes the vault with one kopia client identity (vigil@vigil), which
// owns maintenance, so any vigil process may run it; kopia's lock against
// concurrent maintenance is a local file in CacheDir, so with several workers
// the caller must make sure only one maintains a vault at a time.
func (v *Vault) Maintain(ctx context.Context, full bool) error {
	if err := v.writable("maintain"); err != nil {
		return err
	}

	mode := maintenance.ModeQuick
	if full {
		mode = maintenance.ModeFull
	}

	safety := maintenance.SafetyFull

	if v.cfg.SoleWriter {
		safety = maintenance.SafetyNone

		if err := v.activity.Acquire(ctx, activityUnits); err != nil {
			return fmt.Errorf("maintain vault %q: wait for backups and restores to finish: %w", v.cfg.Name, err)
		}
		defer v.activity.Release(activityUnits)
	}

	err := repo.DirectWriteSession(ctx, v.rep, repo.WriteSessionOptions{Purpose: "vigil maintenance"}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
		if full && v.cfg.SoleWriter {
			return maintenance.RunExclusive(ctx, w, mode, false, func(ctx context.Context, rp maintenance.RunParameters) error {
				return reclaimNow(ctx, w, rp)
			})
		}

		return snapshotmaintenance.Run(ctx, w, mode, false, safety) //nolint:wrapcheck
	})

	var notOwned maintenance.NotOwnedError
	if errors.As(err, &notOwned) {
		return fmt.Errorf("maintain vault %q: maintenance is owned by %s, not vigil; let vigil own it with `kopia maintenance set --owner=%s` (connected to the vault as that user), or leave maintenance to %s", v.cfg.Name, notOwned.Owner, v.rep.ClientOptions().UsernameAtHost(), notOwned.Owner)
	}

	if err != nil {
		return fmt.Errorf("maintain vault %q: %w", v.cfg.Name, err)
	}

	return nil
}

// reclaimNow is full maintenance for a vault nobody else writes to.
//
// Kopia's full maintenance, even with "none" safety, does not give space
// back in one run: it marks unreferenced contents deleted, then rewrites
// short packs, deleted contents included, and only then drops deleted
// contents that were marked before the current second. The deleted data is
// copied into a new pack and outlives the run. Here the deleted contents are
// dropped from the index first, as soon as their marks are in the past, so
// the rewrite that follows copies only live data and every pack that held
// only deleted data is left unreferenced and deleted.
func reclaimNow(ctx context.Context, w repo.DirectRepositoryWriter, rp maintenance.RunParameters) error {
	safety := maintenance.SafetyNone

	// Contents are stamped to the second, and collection spares those not
	// older than its start: a backup finished in the same second as the
	// start (a quick machine, expiry right after a backup) would keep its
	// unreferenced contents for a run. Collecting from the next whole
	// second counts everything written before this call as older; nothing
	// writes meanwhile (the vault's activity is held).
	gcStart := time.Now().Truncate(time.Second).Add(time.Second)
	if err := sleepUntil(ctx, gcStart); err != nil {
		return err
	}

	if err := snapshotgc.Run(ctx, w, true, safety, gcStart); err != nil {
		return fmt.Errorf("collect unreferenced contents: %w", err)
	}

	watermark, err := deletionWatermark(ctx, w)
	if err != nil {
		return err
	}

	if !watermark.IsZero() {
		// Kopia refuses nothing here, but a watermark in the future would
		// drop contents deleted after this moment; wait until it is past.
		if err := sleepUntil(ctx, watermark); err != nil {
			return err
		}

		err := w.ContentManager().CompactIndexes(ctx, indexblob.CompactOptions{
			AllIndexes:                       true,
			DropDeletedBefore:                watermark,
			DisableEventualConsistencySafety: safety.DisableEventualConsistencySafety,
		})
		if err != nil {
			return fmt.Errorf("drop deleted contents: %w", err)
		}
	}

	return maintenance.Run(ctx, rp, safety) //nolint:wrapcheck
}

// deletionWatermark returns the time just after the newest deletion mark,
// or zero when no content is marked deleted. Marks are in whole seconds.
func deletionWatermark(ctx context.Context, w repo.DirectRepositoryWriter) (time.Time, error) {
	var newest int64

	err := w.ContentReader().IterateContents(ctx, content.IterateOptions{IncludeDeleted: true}, func(ci content.Info) error {
		if ci.Deleted && ci.TimestampSeconds > newest {
			newest = ci.TimestampSeconds
		}

		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("find deleted contents: %w", err)
	}

	if newest == 0 {
		return time.Time{}, nil
	}

	return time.Unix(newest+1, 0), nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()

	select {
	case <-ctx.Done():
		return ctx.Err() //nolint:wrapcheck
	case <-timer.C:
		return nil
	}
}
