package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
)

// Snapshot describes one complete snapshot in a vault.
type Snapshot struct {
	ID       string
	Resource string // the kopia source's user name
	Source   string // the folder that was backed up
	Host     string // the kopia source's host name
	// Tags are the tags given to Backup; tags set with the stock CLI's
	// `snapshot create --tags` show up here too.
	Tags               map[string]string
	StartTime, EndTime time.Time
	Bytes, Files       int64
}

// Snapshots lists every complete snapshot in the vault, oldest first,
// including those written by other kopia clients. Checkpoints of backups
// still running or interrupted are left out.
func (v *Vault) Snapshots(ctx context.Context) ([]Snapshot, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}

	// pick up snapshots written since the vault was opened, by this
	// process's other sessions or by another client
	if err := v.rep.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("list snapshots of vault %q: refresh: %w", v.cfg.Name, err)
	}

	ids, err := snapshot.ListSnapshotManifests(ctx, v.rep, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of vault %q: %w", v.cfg.Name, err)
	}

	mans, err := snapshot.LoadSnapshots(ctx, v.rep, ids)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of vault %q: %w", v.cfg.Name, err)
	}

	list := make([]Snapshot, 0, len(mans))

	for _, m := range mans {
		if m.IncompleteReason != "" || m.RootEntry == nil {
			continue
		}

		s := Snapshot{
			ID:        string(m.ID),
			Resource:  m.Source.UserName,
			Source:    m.Source.Path,
			Host:      m.Source.Host,
			Tags:      map[string]string{},
			StartTime: m.StartTime.ToTime().UTC(),
			EndTime:   m.EndTime.ToTime().UTC(),
		}

		for k, val := range m.Tags {
			if name, ok := strings.CutPrefix(k, tagPrefix); ok {
				s.Tags[name] = val
			}
		}

		if sum := m.RootEntry.DirSummary; sum != nil {
			s.Bytes, s.Files = sum.TotalFileSize, sum.TotalFileCount
		}

		list = append(list, s)
	}

	slices.SortFunc(list, func(a, b Snapshot) int {
		if c := a.StartTime.Compare(b.StartTime); c != 0 {
			return c
		}

		return strings.Compare(a.ID, b.ID)
	})

	return list, nil
}

// DeleteSnapshot removes a snapshot's manifest. Its data stays in the vault
// until Maintain collects it. Deleting a snapshot that does not exist is not
// an error; an id that names some other kind of kopia manifest is.
func (v *Vault) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	if err := v.writable("delete snapshots from"); err != nil {
		return err
	}

	if snapshotID == "" {
		return fmt.Errorf("delete snapshot from vault %q: no snapshot id given", v.cfg.Name)
	}

	// see snapshots written by other processes, so that one of theirs is
	// not taken for missing
	if err := v.rep.Refresh(ctx); err != nil {
		return fmt.Errorf("delete snapshot %s from vault %q: refresh: %w", snapshotID, v.cfg.Name, err)
	}

	err := repo.WriteSession(ctx, v.rep, repo.WriteSessionOptions{Purpose: "vigil delete snapshot"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		_, err := snapshot.LoadSnapshot(ctx, w, manifest.ID(snapshotID))
		if errors.Is(err, snapshot.ErrSnapshotNotFound) {
			return nil
		}

		if err != nil {
			return err //nolint:wrapcheck
		}

		return w.DeleteManifest(ctx, manifest.ID(snapshotID)) //nolint:wrapcheck
	})
	if err != nil {
		return fmt.Errorf("delete snapshot %s from vault %q: %w", snapshotID, v.cfg.Name, err)
	}

	return nil
}
