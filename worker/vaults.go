package worker

import (
	"context"
	"strings"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/vault"
)

// Vaults lists the configured vaults with how many recovery points each
// holds. It does not open them: listing must work while a vault's storage
// is away.
func (e *Engine) Vaults(ctx context.Context) ([]vigil.VaultInfo, error) {
	var out []vigil.VaultInfo
	for _, v := range e.cfg.Vaults {
		rps, err := e.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{
			Vault:  v.Name,
			Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, vigil.VaultInfo{Name: v.Name, Storage: v.Storage, RecoveryPoints: len(rps)})
	}
	return out, nil
}

// VerifyVault checks a vault's recovery points: every tree readable, every
// content present, and readDataPercent of the file data read and decrypted.
func (e *Engine) VerifyVault(ctx context.Context, name string, readDataPercent float64) (vault.VerifyResult, error) {
	if readDataPercent < 0 || readDataPercent > 100 {
		return vault.VerifyResult{}, vigil.Invalidf("read-data-percent must be between 0 and 100")
	}
	v, err := e.Vault(ctx, name)
	if err != nil {
		return vault.VerifyResult{}, err
	}
	res, err := v.Verify(ctx, readDataPercent)
	if err != nil {
		return res, err
	}
	// The outcome is kept, for the console's "last verified".
	check := catalog.VaultCheck{Vault: name, CheckedAt: now(), ReadDataPercent: readDataPercent,
		Snapshots: res.Snapshots, Problems: int64(len(res.Errors))}
	if len(res.Errors) > 0 {
		check.Summary = strings.Join(res.Errors[:min(len(res.Errors), 5)], "\n")
	}
	if err := e.catalog.InsertVaultCheck(context.WithoutCancel(ctx), check); err != nil {
		e.logger.Warn("record vault check", "vault", name, "err", err)
	}
	return res, nil
}
