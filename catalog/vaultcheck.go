package catalog

import (
	"context"
	"fmt"
	"time"
)

// VaultCheck is the outcome of one verification of a vault.
type VaultCheck struct {
	Vault           string    `json:"vault"`
	CheckedAt       time.Time `json:"checked_at"`
	ReadDataPercent float64   `json:"read_data_percent"`
	Snapshots       int64     `json:"snapshots"`
	Problems        int64     `json:"problems"`
	// Summary lists the first problems, one per line.
	Summary string `json:"summary"`
}

// InsertVaultCheck records a verification's outcome.
func (r records) InsertVaultCheck(ctx context.Context, c VaultCheck) error {
	_, err := r.db.exec(ctx, `INSERT INTO vigil_vault_check (vault, checked_at, read_data_percent, snapshots, problems, summary)
		VALUES (?, ?, ?, ?, ?, ?)`, c.Vault, micros(c.CheckedAt), c.ReadDataPercent, c.Snapshots, c.Problems, c.Summary)
	if err != nil {
		return fmt.Errorf("record check of vault %s: %w", c.Vault, err)
	}
	return nil
}

// LastVaultChecks returns each vault's latest check, by vault name.
func (r records) LastVaultChecks(ctx context.Context) (map[string]VaultCheck, error) {
	rows, err := r.db.query(ctx, `SELECT c.vault, c.checked_at, c.read_data_percent, c.snapshots, c.problems, c.summary
		FROM vigil_vault_check c
		WHERE c.id = (SELECT MAX(x.id) FROM vigil_vault_check x WHERE x.vault = c.vault)`)
	if err != nil {
		return nil, fmt.Errorf("read vault checks: %w", err)
	}
	defer rows.Close()
	out := map[string]VaultCheck{}
	for rows.Next() {
		var c VaultCheck
		var at int64
		if err := rows.Scan(&c.Vault, &at, &c.ReadDataPercent, &c.Snapshots, &c.Problems, &c.Summary); err != nil {
			return nil, fmt.Errorf("read vault checks: %w", err)
		}
		c.CheckedAt = fromMicros(at)
		out[c.Vault] = c
	}
	return out, rows.Err()
}
