package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/vault"
	"github.com/vigil-backup/vigil/vault/restic"
)

// SyncArgs lists a foreign vault's snapshots into the catalog as recovery
// points (the vault's sync: schedule).
type SyncArgs struct {
	Vault string `json:"vault"`
}

func (SyncArgs) Kind() string { return "vigil.vault-sync" }

// syncJob is the scheduled sync.
func (e *Engine) syncJob(ctx context.Context, args SyncArgs) error {
	if v, ok := e.cfg.Current().Vault(args.Vault); !ok || !v.Foreign() {
		return river.JobCancel(fmt.Errorf("vault %q is no longer a foreign vault in the config", args.Vault))
	}
	_, err := e.SyncVault(ctx, args.Vault)
	return err
}

// foreignSnapshot is one snapshot of a foreign vault, as its tool lists
// it, with what a restore of it needs (SnapshotID).
type foreignSnapshot struct {
	vigil.ForeignSnapshot
	// snapshotID is what a restore of it takes (a recovery point's
	// SnapshotID): Kopia's manifest id, restic's id:folder.
	snapshotID   string
	start, end   time.Time
	bytes, files int64
	// paths are what the snapshot backed up; a resource matches one.
	paths []string
}

// SyncVault lists foreign vault name's snapshots into the catalog: each
// snapshot whose source matches a resource's (its path, and host and
// tags when the resource names them) becomes an AVAILABLE recovery point
// of that resource, once; a point whose snapshot the other tool has
// removed (restic forget, kopia snapshot delete) becomes EXPIRED, with an
// event. Nothing is written to the vault. The newest new point of each
// resource is tested at once by the plans with on_backup_completed, as a
// backup's would be.
func (e *Engine) SyncVault(ctx context.Context, name string) (vigil.VaultSync, error) {
	cfg := e.cfg.Current()
	vc, ok := cfg.Vault(name)
	if !ok {
		return vigil.VaultSync{}, &vigil.UnknownNameError{Kind: "vault", Name: name, Known: cfg.VaultNames()}
	}
	if !vc.Foreign() {
		return vigil.VaultSync{}, vigil.Invalidf("vault %q is vigil's own: its recovery points are listed as its backups complete; sync is for vaults of kind restic or kopia", name)
	}
	// One sync of a vault at a time in this process; across processes,
	// a point's id is made from its snapshot, so a second insert of it
	// fails instead of listing it twice.
	unlock := e.syncLocks.lock(name)
	defer unlock()

	snaps, err := e.foreignSnapshots(ctx, vc)
	if err != nil {
		return vigil.VaultSync{}, err
	}
	res := vigil.VaultSync{Vault: name, Snapshots: len(snaps), SyncedAt: now()}
	claimed := map[string]bool{}
	for _, r := range cfg.Resources {
		if r.Source == nil || r.Source.Vault != name {
			continue
		}
		added, gone, skipped, err := e.syncResource(ctx, vc, r, snaps, claimed)
		res.Added += added
		res.Gone += gone
		res.Skipped = append(res.Skipped, skipped...)
		if err != nil {
			return res, err
		}
	}
	unmatched := map[string]int{}
	for _, s := range snaps {
		if !claimed[s.ID] {
			unmatched[strings.Join(s.paths, ", ")]++
		}
	}
	for _, p := range slices.Sorted(maps.Keys(unmatched)) {
		res.Unmatched = append(res.Unmatched, fmt.Sprintf("%d of %s", unmatched[p], p))
	}
	e.logger.Info("synced foreign vault", "vault", name, "snapshots", res.Snapshots, "added", res.Added, "gone", res.Gone, "unmatched", res.Unmatched, "skipped", res.Skipped)
	return res, nil
}

// syncResource lists r's snapshots among snaps, marking in claimed those
// it takes, and returns how many points it added and found gone, and the
// matching snapshots it could not list, each with why.
func (e *Engine) syncResource(ctx context.Context, vc config.Vault, r config.Resource, snaps []foreignSnapshot, claimed map[string]bool) (added, gone int, skipped []string, err error) {
	known, err := e.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{Vault: vc.Name, Resource: r.Name})
	if err != nil {
		return 0, 0, nil, err
	}
	have := map[string]bool{}
	for _, rp := range known {
		if rp.Foreign != nil {
			have[rp.Foreign.ID] = true
		}
	}
	var fresh []vigil.RecoveryPoint
	listed := map[string]bool{}
	for _, s := range snaps {
		if !slices.ContainsFunc(s.paths, func(p string) bool { return r.Source.Matches(p, s.Host, s.Tags) }) {
			continue
		}
		claimed[s.ID], listed[s.ID] = true, true
		if have[s.ID] {
			continue
		}
		fs := s.ForeignSnapshot
		fs.Path = r.Source.Path
		if vc.Kind == config.KindRestic {
			// restic restores id:folder, the folder that holds the path
			// inside the snapshot; finding it reads the snapshot's listing,
			// once per snapshot.
			root, err := e.resticRoot(ctx, vc.Name, s)
			if ctx.Err() != nil {
				return added, gone, skipped, ctx.Err()
			}
			if err != nil {
				// one snapshot vigil cannot test (of several paths, say)
				// holds up none of the others
				skipped = append(skipped, err.Error())
				continue
			}
			s.snapshotID = s.ID + ":" + root
		}
		end := s.end
		fresh = append(fresh, vigil.RecoveryPoint{
			ID: foreignPointID(vc.Name, r.Name, s.ID), Vault: vc.Name, Resource: r.Name, ResourceType: r.Type,
			Status: vigil.RecoveryPointAvailable, SizeBytes: s.bytes, Files: s.files, SnapshotID: s.snapshotID,
			CreatedAt: s.start.UTC().Truncate(time.Microsecond), CompletedAt: ptr(end.UTC().Truncate(time.Microsecond)), Foreign: &fs,
		})
	}
	for i := range fresh {
		rp := &fresh[i]
		newest := i == len(fresh)-1
		err := e.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error {
			if err := tx.InsertRecoveryPoint(ctx, rp); err != nil {
				return err
			}
			if newest {
				return e.tests.QueueOnBackup(ctx, tx, rp)
			}
			return nil
		})
		if err != nil {
			return added, gone, skipped, fmt.Errorf("list snapshot %s of vault %q as a recovery point of %s: %w", rp.Foreign.ID, vc.Name, r.Name, err)
		}
		added++
	}
	for _, rp := range known {
		if rp.Foreign == nil || listed[rp.Foreign.ID] || (rp.Status != vigil.RecoveryPointAvailable && rp.Status != vigil.RecoveryPointDamaged) {
			continue
		}
		rp.Status = vigil.RecoveryPointExpired
		rp.StatusMessage = fmt.Sprintf("the %s repository no longer has snapshot %s: the tool that writes it removed it (its own retention, or by hand); vigil deleted nothing", vc.Kind, rp.Foreign.ID)
		err := e.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRecoveryPoint(ctx, &rp) },
			vigil.Event{
				Type: vigil.EventRecoveryPointExpired, Resource: rp.Resource, RecoveryPointID: rp.ID,
				Subject: fmt.Sprintf("Recovery point %s of %s expired", rp.ID, rp.Resource),
				Message: fmt.Sprintf("Recovery point %s of %s %q (backed up %s) is gone from foreign vault %q: %s.",
					rp.ID, rp.ResourceType, rp.Resource, rp.CreatedAt.Format(time.RFC3339), rp.Vault, rp.StatusMessage),
			}.WithData(rp))
		if err != nil {
			return added, gone, skipped, fmt.Errorf("mark recovery point %s expired: %w", rp.ID, err)
		}
		gone++
	}
	return added, gone, skipped, nil
}

// foreignPointID is the id of the recovery point of snapshot of resource
// in vault: the same on every node and every sync, so that a snapshot is
// listed once even when two processes sync at the same time.
func foreignPointID(vault, resource, snapshot string) string {
	sum := sha256.Sum256([]byte(vault + "\x00" + resource + "\x00" + snapshot))
	return vigil.PrefixRecoveryPoint + "-" + hex.EncodeToString(sum[:8])
}

// foreignSnapshots lists vc's snapshots with its tool.
func (e *Engine) foreignSnapshots(ctx context.Context, vc config.Vault) ([]foreignSnapshot, error) {
	var out []foreignSnapshot
	if vc.Kind == config.KindRestic {
		repo, err := e.Restic(ctx, vc.Name)
		if err != nil {
			return nil, err
		}
		snaps, err := repo.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range snaps {
			start, end := s.Time, s.Time
			if s.Summary != nil {
				start, end = s.Summary.BackupStart, s.Summary.BackupEnd
			}
			out = append(out, foreignSnapshot{
				ForeignSnapshot: vigil.ForeignSnapshot{Tool: config.KindRestic, ID: s.ID, Host: s.Hostname, Username: s.Username, Tags: s.Tags},
				start:           start, end: end, bytes: s.Bytes(), files: s.Files(), paths: s.Paths,
			})
		}
		return out, nil
	}
	v, err := e.Vault(ctx, vc.Name)
	if err != nil {
		return nil, err
	}
	snaps, err := v.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		var tags []string
		for k, val := range s.Tags {
			tags = append(tags, k+":"+val)
		}
		slices.Sort(tags)
		out = append(out, foreignSnapshot{
			ForeignSnapshot: vigil.ForeignSnapshot{Tool: config.KindKopia, ID: s.ID, Host: s.Host, Username: s.Resource, Tags: tags},
			snapshotID:      s.ID, start: s.StartTime, end: s.EndTime, bytes: s.Bytes, files: s.Files, paths: []string{s.Source},
		})
	}
	return out, nil
}

// resticRoot is the folder inside restic snapshot s that holds its path.
func (e *Engine) resticRoot(ctx context.Context, vault string, s foreignSnapshot) (string, error) {
	repo, err := e.Restic(ctx, vault)
	if err != nil {
		return "", err
	}
	return repo.Root(ctx, restic.Snapshot{ID: s.ID, ShortID: restic.ShortID(s.ID), Paths: s.paths})
}

// Restic returns restic vault name, opened: the restic program runs and
// the repository opens with the password. It stays open for the life of
// the engine, as Kopia vaults do.
func (e *Engine) Restic(ctx context.Context, name string) (*restic.Repo, error) {
	e.vaultsMu.Lock()
	defer e.vaultsMu.Unlock()
	if r, ok := e.restics[name]; ok {
		return r, nil
	}
	vc, ok := e.cfg.Current().Vault(name)
	if !ok {
		return nil, &vigil.UnknownNameError{Kind: "vault", Name: name, Known: e.cfg.Current().VaultNames()}
	}
	if vc.Kind != config.KindRestic {
		return nil, fmt.Errorf("vault %q is not a restic repository", name)
	}
	// restic's cache of the repository's metadata lives with vigil's own
	// caches, never in the repository.
	r, err := restic.Open(ctx, resticConfig(vc, filepath.Join(e.cfg.Current().DataDir, "cache", "restic-"+vc.Name)))
	if err != nil {
		return nil, fmt.Errorf("vault %q: %w", name, err)
	}
	e.restics[name] = r
	return r, nil
}

// verifyRestic runs restic check on restic vault name, reading back
// readDataPercent of its packs (--read-data-subset), and keeps the
// outcome as a Kopia vault's verify is kept. Damage is an error wrapping
// vault.ErrCorrupt, with restic's own words.
func (e *Engine) verifyRestic(ctx context.Context, name string, readDataPercent float64) (vault.VerifyResult, error) {
	repo, err := e.Restic(ctx, name)
	if err != nil {
		return vault.VerifyResult{}, err
	}
	subset := ""
	if readDataPercent > 0 {
		subset = fmt.Sprintf("%g%%", readDataPercent)
	}
	res := vault.VerifyResult{ReadDataPercent: readDataPercent}
	checkErr := repo.Check(ctx, subset)
	if checkErr != nil && ctx.Err() != nil {
		return res, checkErr
	}
	summary := fmt.Sprintf("restic check of the repository's structure, with %g%% of its packs read back: no damage found", readDataPercent)
	if checkErr != nil {
		res.Errors = []string{checkErr.Error()}
		res.Advice = fmt.Sprintf("restic found damage in vault %q, which restic writes: repair it with restic (restic repair index, restic repair snapshots), then back up again with restic", name)
		summary = fmt.Sprintf("restic check with %g%% of the packs read back: damage found", readDataPercent)
	}
	check := catalog.VaultCheck{Vault: name, CheckedAt: now(), ReadDataPercent: readDataPercent, Problems: int64(len(res.Errors)),
		Summary: strings.Join(append([]string{summary}, res.Errors...), "\n")}
	res.ByTool = summary
	if err := e.catalog.InsertVaultCheck(context.WithoutCancel(ctx), check); err != nil {
		return res, err
	}
	if checkErr != nil {
		return res, fmt.Errorf("vault %q: %w: %v", name, vault.ErrCorrupt, checkErr)
	}
	return res, nil
}

// openVault opens v as the start-up checks do: a restic vault with
// restic, any other as a Kopia vault.
func (e *Engine) openVault(ctx context.Context, v config.Vault) error {
	var err error
	if v.Kind == config.KindRestic {
		_, err = e.Restic(ctx, v.Name)
	} else {
		_, err = e.Vault(ctx, v.Name)
	}
	return err
}

// resticConfig is how the restic package opens a configured restic vault.
func resticConfig(vc config.Vault, cacheDir string) restic.Config {
	rc := restic.Config{Repository: vc.Repository, Password: vc.Password, Binary: vc.ResticPath, CacheDir: cacheDir}
	if vc.AccessKey != "" {
		rc.Env = []string{"AWS_ACCESS_KEY_ID=" + vc.AccessKey, "AWS_SECRET_ACCESS_KEY=" + vc.SecretKey}
	}
	return rc
}

// errResticVault is returned where a restic vault is asked for as a Kopia
// one: what vigil does with a restic repository, it does through restic.
var errResticVault = errors.New("a restic repository, which vigil reads only through restic: it can be synced, restore-tested and verified (vigil vault verify), nothing else")

// locks is a mutex per name.
type locks struct {
	mu    sync.Mutex
	names map[string]*sync.Mutex
}

func (l *locks) lock(name string) (unlock func()) {
	l.mu.Lock()
	if l.names == nil {
		l.names = map[string]*sync.Mutex{}
	}
	m, ok := l.names[name]
	if !ok {
		m = new(sync.Mutex)
		l.names[name] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}
