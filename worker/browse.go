package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/restoretest"
	"github.com/vigil-backup/vigil/vault"
)

// Files lists the entry at path p of a recovery point and, for a folder,
// what it holds (vault.Vault.Files). A bad or missing path is a
// *vault.PathError.
func (e *Engine) Files(ctx context.Context, rpID, p string, recursive bool) (vigil.RecoveryPoint, vault.Entry, []vault.Entry, error) {
	rp, err := restoretest.Restorable(ctx, e.catalog, rpID)
	if err != nil {
		return rp, vault.Entry{}, nil, err
	}
	at, list, err := e.files(ctx, rp, p, recursive)
	return rp, at, list, err
}

func (e *Engine) files(ctx context.Context, rp vigil.RecoveryPoint, p string, recursive bool) (vault.Entry, []vault.Entry, error) {
	v, err := e.Vault(ctx, rp.Vault)
	if err != nil {
		return vault.Entry{}, nil, err
	}
	at, list, err := v.Files(ctx, rp.SnapshotID, p, recursive)
	if err != nil {
		return vault.Entry{}, nil, inRecoveryPoint(rp, err)
	}
	return at, list, nil
}

// OpenFile opens the file at path p of a recovery point for reading
// (vault.Vault.OpenPath); the caller closes it.
func (e *Engine) OpenFile(ctx context.Context, rpID, p string) (io.ReadCloser, vault.Entry, error) {
	rp, err := restoretest.Restorable(ctx, e.catalog, rpID)
	if err != nil {
		return nil, vault.Entry{}, err
	}
	v, err := e.Vault(ctx, rp.Vault)
	if err != nil {
		return nil, vault.Entry{}, err
	}
	rc, entry, err := v.OpenPath(ctx, rp.SnapshotID, p)
	if err != nil {
		return nil, vault.Entry{}, inRecoveryPoint(rp, err)
	}
	return rc, entry, nil
}

// DiffRecoveryPoints lists what changed from recovery point a to b, two
// backups of one resource in one vault (vault.Vault.Diff).
func (e *Engine) DiffRecoveryPoints(ctx context.Context, a, b string) ([]vault.Change, error) {
	ra, err := restoretest.Restorable(ctx, e.catalog, a)
	if err != nil {
		return nil, err
	}
	rb, err := restoretest.Restorable(ctx, e.catalog, b)
	if err != nil {
		return nil, err
	}
	if ra.Resource != rb.Resource {
		return nil, vigil.Invalidf("recovery point %s is of resource %q and %s of %q: compare two recovery points of one resource (vigil recovery-points list --resource %s)",
			a, ra.Resource, b, rb.Resource, ra.Resource)
	}
	if ra.Vault != rb.Vault {
		// Each vault hashes contents with its own secret, so the stored
		// objects of two vaults cannot be compared.
		return nil, vigil.Invalidf("recovery point %s is in vault %q and %s in %q: compare two recovery points of one vault (a copy job puts one into the other's vault)",
			a, ra.Vault, b, rb.Vault)
	}
	v, err := e.Vault(ctx, ra.Vault)
	if err != nil {
		return nil, err
	}
	return v.Diff(ctx, ra.SnapshotID, rb.SnapshotID)
}

// inRecoveryPoint names the recovery point in err; a missing path also
// says where to look for what it holds.
func inRecoveryPoint(rp vigil.RecoveryPoint, err error) error {
	var pe *vault.PathError
	if !errors.As(err, &pe) {
		return fmt.Errorf("recovery point %s: %w", rp.ID, err)
	}
	out := *pe
	out.Msg = fmt.Sprintf("recovery point %s: %s", rp.ID, pe.Msg)
	if pe.Missing {
		out.Msg += fmt.Sprintf("; see what is there with 'vigil recovery-points ls %s %s'", rp.ID, pe.Folder)
		if pe.Folder == "" {
			out.Msg = strings.TrimSuffix(out.Msg, " '") + "'"
		}
	}
	return &out
}
