package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"
	"github.com/kopia/kopia/snapshot/snapshotfs"
	"github.com/kopia/kopia/snapshot/upload"
)

// CopyOptions describes one copy of a snapshot into another vault.
type CopyOptions struct {
	// Tags are stored on the new snapshot, as BackupOptions.Tags are.
	Tags        map[string]string
	Description string
	// Progress, when set, is called from time to time from one goroutine.
	Progress func(Progress)
}

// CopyResult describes a completed copy.
type CopyResult struct {
	SnapshotID   string
	Bytes, Files int64
	// HashedBytes is what was read from the source vault and hashed; the
	// rest was taken from an earlier copy of the same resource. Only the
	// contents the destination lacked were stored.
	HashedBytes int64
}

// CopyFrom copies snapshot snapshotID of vault src into v, as the stock
// `kopia snapshot migrate` does: the source snapshot's tree is read
// through kopia's snapshotfs and uploaded into v, keeping every entry's
// mode, owner and times, the snapshot's source and its start and end
// times. Files unchanged since an earlier snapshot of the resource in v
// are not read again, and only the contents v lacks are stored. It
// returns once the new snapshot is durable in v.
//
// A failed or cancelled copy leaves no snapshot in v.
func (v *Vault) CopyFrom(ctx context.Context, src *Vault, snapshotID string, opts CopyOptions) (CopyResult, error) {
	if err := v.writable("copy into"); err != nil {
		return CopyResult{}, err
	}

	res, err := v.copyFrom(ctx, src, snapshotID, opts)
	if err != nil {
		return CopyResult{}, fmt.Errorf("copy snapshot %s of vault %q into vault %q: %w", snapshotID, src.cfg.Name, v.cfg.Name, err)
	}

	return res, nil
}

func (v *Vault) copyFrom(ctx context.Context, src *Vault, snapshotID string, opts CopyOptions) (CopyResult, error) {
	if src == v || src.cfg.Storage == v.cfg.Storage {
		return CopyResult{}, errors.New("source and destination are the same vault; copy into another one")
	}

	for k := range opts.Tags {
		if k == "" {
			return CopyResult{}, errors.New("a tag has an empty name")
		}
	}

	releaseSrc, err := src.shared(ctx)
	if err != nil {
		return CopyResult{}, err
	}
	defer releaseSrc()

	release, err := v.shared(ctx)
	if err != nil {
		return CopyResult{}, err
	}
	defer release()

	// A copy reads every content of the snapshot from the source: each of
	// its packs whole once, from an S3 vault (see packCache).
	ctx, dropPacks := withPackCache(ctx, src.cfg.Tuning.PackCacheBytes)
	defer dropPacks()

	man, err := src.loadSnapshot(ctx, snapshotID)
	if err != nil {
		return CopyResult{}, err
	}

	if man.IncompleteReason != "" {
		return CopyResult{}, fmt.Errorf("snapshot is incomplete (%s) and cannot be copied; pick a complete one", man.IncompleteReason)
	}

	root := copyEntry(src.rep, man.RootEntry)
	if _, ok := root.(fs.Directory); !ok {
		return CopyResult{}, errors.New("snapshot is of a single file, not a folder; vigil copies only its own snapshots")
	}

	ctx, w, err := v.rep.NewWriter(ctx, repo.WriteSessionOptions{Purpose: "vigil copy of " + man.Source.UserName})
	if err != nil {
		return CopyResult{}, fmt.Errorf("start write session: %w", err)
	}
	// As in a backup: without a flush, closing abandons what was written,
	// which no snapshot references and the next full maintenance collects.
	defer w.Close(ctx) //nolint:errcheck

	previous, err := snapshot.FindPreviousManifests(ctx, w, man.Source, &man.StartTime)
	if err != nil {
		return CopyResult{}, fmt.Errorf("find earlier copies: %w", err)
	}

	policyTree, err := policy.TreeForSource(ctx, w, man.Source)
	if err != nil {
		return CopyResult{}, fmt.Errorf("read policy: %w", err)
	}

	progress := &uploadProgress{}
	if s := man.RootEntry.DirSummary; s != nil {
		progress.EstimatedDataSize(s.TotalFileCount, s.TotalFileSize)
	}

	u := upload.NewUploader(w)
	u.ParallelUploads = parallelism(v.cfg.Tuning.UploadParallelism, defaultUploadParallelism)
	u.FailFast = true
	u.EnableActions = false
	// The source backup applied its ignore rules already: a copy holds
	// exactly what the snapshot holds.
	u.DisableIgnoreRules = true
	u.Progress = progress

	stopCancel := context.AfterFunc(ctx, u.Cancel)
	defer stopCancel()

	stopReports := progress.report(opts.Progress)
	copied, err := u.Upload(ctx, root, policyTree, man.Source, previous...)

	stopReports()

	if ctxErr := ctx.Err(); ctxErr != nil {
		return CopyResult{}, fmt.Errorf("copy cancelled: %w", ctxErr)
	}

	if err != nil {
		if vaultSideFailed(err) {
			return CopyResult{}, v.full(err)
		}

		return CopyResult{}, fmt.Errorf("read the source snapshot: %w", err)
	}

	if err := uploadFailure(copied, man.Source.Path); err != nil {
		return CopyResult{}, err
	}

	// The copy is of the source's data at the source's time.
	uploaded := &snapshot.Manifest{StartTime: copied.StartTime}
	copied.StartTime, copied.EndTime = man.StartTime, man.EndTime
	copied.Description = opts.Description
	copied.Tags = make(map[string]string, len(opts.Tags))

	for k, val := range opts.Tags {
		copied.Tags[tagPrefix+k] = val
	}

	id, err := snapshot.SaveSnapshot(ctx, w, copied)
	if err != nil {
		if vaultSideFailed(err) {
			return CopyResult{}, v.full(err)
		}

		return CopyResult{}, fmt.Errorf("save snapshot manifest: %w", err)
	}

	// the checkpoints a long copy wrote, dated by the upload's own start
	if err := dropCheckpoints(ctx, w, man.Source, uploaded); err != nil {
		return CopyResult{}, err
	}

	if err := w.Flush(ctx); err != nil {
		if vaultSideFailed(err) {
			return CopyResult{}, v.full(err)
		}

		return CopyResult{}, fmt.Errorf("flush vault: %w", err)
	}

	res := CopyResult{SnapshotID: string(id), HashedBytes: progress.hashed.Load()}
	if s := copied.RootEntry.DirSummary; s != nil {
		res.Bytes, res.Files = s.TotalFileSize, s.TotalFileCount
	}

	return res, nil
}

// SnapshotsTagged returns the ids of the complete snapshots whose tag
// name has value, oldest first. A copy that was cut short after its
// snapshot was saved finds it again this way, instead of making another.
func (v *Vault) SnapshotsTagged(ctx context.Context, name, value string) ([]string, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}

	if err := v.rep.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("find snapshots tagged %s in vault %q: refresh: %w", name, v.cfg.Name, err)
	}

	entries, err := v.rep.FindManifests(ctx, map[string]string{"type": snapshot.ManifestType, tagPrefix + name: value})
	if err != nil {
		return nil, fmt.Errorf("find snapshots tagged %s in vault %q: %w", name, v.cfg.Name, err)
	}

	ids := make([]manifest.ID, 0, len(entries))
	for _, e := range entries {
		ids = append(ids, e.ID)
	}

	mans, err := snapshot.LoadSnapshots(ctx, v.rep, ids)
	if err != nil {
		return nil, fmt.Errorf("find snapshots tagged %s in vault %q: %w", name, v.cfg.Name, err)
	}

	slices.SortFunc(mans, func(a, b *snapshot.Manifest) int {
		if c := a.StartTime.ToTime().Compare(b.StartTime.ToTime()); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})

	var out []string

	for _, m := range mans {
		if m.IncompleteReason == "" && m.RootEntry != nil && m.Tags[tagPrefix+name] == value {
			out = append(out, string(m.ID))
		}
	}

	return out, nil
}

// copyDir is a folder of a snapshot being copied. kopia's snapshotfs
// shows a subfolder's time as the newest time inside it (its summary's),
// which suits a browsing view but would date every copied folder wrongly;
// copyDir reads each folder's own listing, so that every entry keeps the
// time it was backed up with.
type copyDir struct {
	fs.Directory

	rep     repo.Repository
	oid     object.ID
	modTime time.Time
}

// copyEntry is the entry de of a snapshot, as a copy reads it.
func copyEntry(rep repo.Repository, de *snapshot.DirEntry) fs.Entry {
	e := snapshotfs.EntryFromDirEntry(rep, de)
	if d, ok := e.(fs.Directory); ok {
		return &copyDir{Directory: d, rep: rep, oid: de.ObjectID, modTime: de.ModTime.ToTime()}
	}

	return e
}

func (d *copyDir) ModTime() time.Time { return d.modTime }

func (d *copyDir) SupportsMultipleIterations() bool { return true }

func (d *copyDir) entries(ctx context.Context) ([]fs.Entry, error) {
	r, err := d.rep.OpenObject(ctx, d.oid)
	if err != nil {
		return nil, fmt.Errorf("open folder %s: %w", d.Name(), err)
	}
	defer r.Close() //nolint:errcheck

	var m snapshot.DirManifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, fmt.Errorf("read folder %s: %w", d.Name(), err)
	}

	out := make([]fs.Entry, 0, len(m.Entries))
	for _, de := range m.Entries {
		out = append(out, copyEntry(d.rep, de))
	}

	return out, nil
}

func (d *copyDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	entries, err := d.entries(ctx)
	if err != nil {
		return nil, err
	}

	return fs.StaticIterator(entries, nil), nil
}

func (d *copyDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	entries, err := d.entries(ctx)
	if err != nil {
		return nil, err
	}

	for _, e := range entries {
		if e.Name() == name {
			return e, nil
		}
	}

	return nil, fs.ErrEntryNotFound
}
