package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/vault"
)

// Vaults lists the configured vaults with how many recovery points each
// holds. It does not open them: listing must work while a vault's storage
// is away.
func (e *Engine) Vaults(ctx context.Context) ([]vigil.VaultInfo, error) {
	var out []vigil.VaultInfo
	for _, v := range e.cfg.Current().Vaults {
		n, err := e.catalog.CountRecoveryPoints(ctx, catalog.RecoveryPointFilter{
			Vault:  v.Name,
			Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, vigil.VaultInfo{Name: v.Name, Kind: v.Kind, Storage: v.Where(), RecoveryPoints: n})
	}
	return out, nil
}

// VerifyVault checks a vault against its index, and readDataPercent of the
// file data read and decrypted, then compares the catalog with what it
// found: every AVAILABLE recovery point's snapshot must be there and whole.
// Those that are not become DAMAGED, each with an event; the result's
// Errors then name recovery points and resources rather than snapshots.
// A DAMAGED point whose snapshot is found whole again (its storage was
// away, say) is AVAILABLE again, unless a repair removed part of it.
//
// With repair_on_damage set on the vault, damage found is repaired at once
// (see RepairVault), and the error says so.
func (e *Engine) VerifyVault(ctx context.Context, name string, readDataPercent float64) (vault.VerifyResult, error) {
	cfg, _ := e.cfg.Current().Vault(name)
	return e.verifyVault(ctx, name, readDataPercent, cfg.RepairOnDamage)
}

func (e *Engine) verifyVault(ctx context.Context, name string, readDataPercent float64, repair bool) (vault.VerifyResult, error) {
	if readDataPercent < 0 || readDataPercent > 100 {
		return vault.VerifyResult{}, vigil.Invalidf("read-data-percent must be between 0 and 100")
	}
	if vc, _ := e.cfg.Current().Vault(name); vc.Kind == config.KindRestic {
		return e.verifyRestic(ctx, name, readDataPercent)
	}
	v, err := e.Vault(ctx, name)
	if err != nil {
		return vault.VerifyResult{}, err
	}
	// Points completed after the vault's snapshots were listed would look
	// missing; only those completed before verify began are compared.
	began := now()
	res, err := v.Verify(ctx, readDataPercent)
	if err != nil && !errors.Is(err, vault.ErrCorrupt) {
		return res, err
	}
	problems, err := e.compareCatalog(ctx, name, began, &res)
	if err != nil {
		return res, err
	}
	// The outcome is kept, for the console's "last verified".
	check := catalog.VaultCheck{Vault: name, CheckedAt: now(), ReadDataPercent: readDataPercent,
		Snapshots: res.Snapshots, Problems: int64(len(res.Errors))}
	check.Summary = strings.Join(append([]string{res.Summary()}, res.Errors[:min(len(res.Errors), 5)]...), "\n")
	advice := fmt.Sprintf("run `vigil vault repair %s`, then back up the affected resources again (into another vault if its storage is failing)", name)
	if problems > 0 && repair {
		rep, err := e.repairVault(ctx, v, name)
		if err != nil {
			advice = fmt.Sprintf("repair_on_damage could not repair it (%v): run `vigil vault repair %s` when the cause is fixed, then back up the affected resources again", err, name)
		} else {
			advice = fmt.Sprintf("repaired at once (repair_on_damage): %d damaged contents dropped from the index, %d recovery points changed; back up the affected resources again",
				rep.DamagedContents, len(rep.Snapshots))
		}
		check.Summary += "\n" + advice
	}
	if err := e.catalog.InsertVaultCheck(context.WithoutCancel(ctx), check); err != nil {
		e.logger.Warn("record vault check", "vault", name, "err", err)
	}
	if problems > 0 {
		res.Advice = advice
		e.logger.Warn("vault verify found damage", "vault", name, "problems", len(res.Errors), "first", res.Errors[0])
		return res, fmt.Errorf("verify vault %q: %d problem(s), first: %s: %w; %s",
			name, len(res.Errors), res.Errors[0], vault.ErrCorrupt, advice)
	}
	res.Advice = ""
	return res, nil
}

// compareCatalog rewrites res.Errors by recovery point, marks the points
// found damaged or missing DAMAGED, and returns how many problems there are.
func (e *Engine) compareCatalog(ctx context.Context, vaultName string, began time.Time, res *vault.VerifyResult) (int, error) {
	rps, err := e.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{
		Vault: vaultName, Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable, vigil.RecoveryPointDamaged}})
	if err != nil {
		return 0, err
	}
	errs := slices.Clone(res.PackProblems)
	known := map[string]bool{}
	for i := range rps {
		rp := &rps[i]
		known[rp.SnapshotID] = true
		// A point completed after verify began may have been too late for
		// its listing of snapshots: it is not missing, only not checked.
		late := rp.CompletedAt == nil || !rp.CompletedAt.Before(began)
		found := slices.Contains(res.SnapshotIDs, rp.SnapshotID)
		label := fmt.Sprintf("%s (%s %q)", rp.ID, rp.ResourceType, rp.Resource)
		var reason string
		switch d, damaged := res.Damaged[rp.SnapshotID]; {
		case !found && (late || rp.Status == vigil.RecoveryPointDamaged):
			// Too late, or known and recorded already: nothing in the
			// vault can be repaired, so it is not reported on every verify.
			continue
		case !found:
			reason = fmt.Sprintf("its snapshot %s is missing from vault %q (was the vault's folder rolled back or replaced?)", rp.SnapshotID, vaultName)
			errs = append(errs, label+": "+reason)
		case damaged:
			for _, p := range d.Problems {
				errs = append(errs, label+": "+p)
			}
			reason = fmt.Sprintf("%d damaged entries in vault %q, first: %s", len(d.Problems), vaultName, d.Problems[0])
		}
		if err := e.markDamaged(ctx, rp, reason, slices.Contains(res.Repaired, rp.SnapshotID)); err != nil {
			return 0, err
		}
	}
	// Damage in snapshots the catalog does not know (written by the stock
	// kopia CLI, or by a catalog that was lost) is listed too.
	for _, id := range slices.Sorted(maps.Keys(res.Damaged)) {
		if known[id] {
			continue
		}
		d := res.Damaged[id]
		for _, p := range d.Problems {
			errs = append(errs, d.Label(id)+" (not in the catalog): "+p)
		}
	}
	// Problems with no snapshot of their own (a manifest that cannot be read).
	errs = append(errs, res.Unattributed...)
	res.Errors = errs
	return len(errs), nil
}

// markDamaged records what verify found about rp: reason "" means its
// snapshot is there and whole.
func (e *Engine) markDamaged(ctx context.Context, rp *vigil.RecoveryPoint, reason string, repaired bool) error {
	switch {
	case reason == "" && rp.Status == vigil.RecoveryPointDamaged && !repaired:
		rp.Status, rp.StatusMessage = vigil.RecoveryPointAvailable, ""
		if err := e.catalog.UpdateRecoveryPoint(ctx, rp); err != nil {
			return fmt.Errorf("mark recovery point %s available again: %w", rp.ID, err)
		}
		e.jobLog(ctx, rp.JobID(), "vault verify found recovery point %s whole again in vault %q: it is AVAILABLE", rp.ID, rp.Vault)
		return nil
	case reason == "" || rp.Status == vigil.RecoveryPointDamaged:
		return nil
	}
	return e.damaged(ctx, rp, reason)
}

// damaged marks rp DAMAGED for reason and raises RECOVERY_POINT_DAMAGED.
func (e *Engine) damaged(ctx context.Context, rp *vigil.RecoveryPoint, reason string) error {
	rp.Status, rp.StatusMessage = vigil.RecoveryPointDamaged, reason
	err := e.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRecoveryPoint(ctx, rp) },
		vigil.Event{
			Type: vigil.EventRecoveryPointDamaged, Resource: rp.Resource, JobID: rp.JobID(), RecoveryPointID: rp.ID,
			Subject: fmt.Sprintf("Recovery point %s of %s is damaged", rp.ID, rp.Resource),
			Message: fmt.Sprintf("Recovery point %s of %s %q in vault %q is damaged: %s.\nRestore tests and restores no longer pick it. Run `vigil vault repair %s`, then back up %s again.",
				rp.ID, rp.ResourceType, rp.Resource, rp.Vault, reason, rp.Vault, rp.Resource),
		}.WithData(rp))
	if err != nil {
		return fmt.Errorf("mark recovery point %s damaged: %w", rp.ID, err)
	}
	e.jobLog(ctx, rp.JobID(), "recovery point %s is DAMAGED: %s", rp.ID, reason)
	return nil
}

// RepairVault repairs a vault (see vault.Repair) and brings the catalog up
// to date: each recovery point whose snapshot was rewritten without its
// damaged entries, or deleted, is DAMAGED, saying what was lost, and points
// at its rewritten snapshot. Then it verifies the vault, which also marks
// the points whose snapshots are missing.
func (e *Engine) RepairVault(ctx context.Context, name string) (vault.RepairResult, error) {
	v, err := e.Vault(ctx, name)
	if err != nil {
		return vault.RepairResult{}, err
	}
	res, err := e.repairVault(ctx, v, name)
	if err != nil {
		return res, err
	}
	if _, err := e.verifyVault(ctx, name, 0, false); err != nil && !errors.Is(err, vault.ErrCorrupt) {
		return res, err
	}
	return res, nil
}

// repairVault repairs v and records in the catalog what it changed.
func (e *Engine) repairVault(ctx context.Context, v *vault.Vault, name string) (vault.RepairResult, error) {
	res, err := v.Repair(ctx)
	if err != nil {
		return res, err
	}
	rps, err := e.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{Vault: name})
	if err != nil {
		return res, err
	}
	for _, s := range res.Snapshots {
		i := slices.IndexFunc(rps, func(rp vigil.RecoveryPoint) bool { return rp.SnapshotID == s.OldID })
		if i < 0 {
			continue // a snapshot the catalog does not know
		}
		rp := &rps[i]
		reason := fmt.Sprintf("vault repair removed %d damaged entries (first: %s); the rest can still be restored", len(s.Removed), s.Removed[0])
		if s.NewID == "" {
			reason = "vault repair deleted its snapshot: its root folder was damaged, so nothing is left to restore"
		} else {
			rp.SnapshotID = s.NewID
		}
		if rp.Status == vigil.RecoveryPointDamaged {
			rp.StatusMessage = reason
			if err := e.catalog.UpdateRecoveryPoint(ctx, rp); err != nil {
				return res, fmt.Errorf("record repair of recovery point %s: %w", rp.ID, err)
			}
			e.jobLog(ctx, rp.JobID(), "recovery point %s: %s", rp.ID, reason)
			continue
		}
		if err := e.damaged(ctx, rp, reason); err != nil {
			return res, err
		}
	}
	return res, nil
}
