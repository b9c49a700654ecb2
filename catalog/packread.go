package catalog

import (
	"context"
	"fmt"
	"time"
)

// PackRead is the latest read-back of one pack of a vault: when, by what,
// and the first problem found ("" when it was sound).
type PackRead struct {
	Pack   string    `json:"pack"`
	Length int64     `json:"length"`
	ReadAt time.Time `json:"read_at"`
	ReadBy string    `json:"read_by"`
	Damage string    `json:"damage,omitempty"`
}

// RecordPackReads records reads of vault's packs, each replacing the
// pack's earlier one. An older read than the one recorded is ignored, so
// that a slow job finishing late cannot make a pack look less recently
// checked than it is.
func (r records) RecordPackReads(ctx context.Context, vault string, reads []PackRead) error {
	for _, pr := range reads {
		_, err := r.db.exec(ctx, `INSERT INTO vigil_pack_read (vault, pack, length, read_at, read_by, damage)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (vault, pack) DO UPDATE SET
				length = excluded.length, read_at = excluded.read_at, read_by = excluded.read_by, damage = excluded.damage
			WHERE vigil_pack_read.read_at <= excluded.read_at`,
			vault, pr.Pack, pr.Length, micros(pr.ReadAt), pr.ReadBy, pr.Damage)
		if err != nil {
			return fmt.Errorf("record reads of vault %s: %w", vault, err)
		}
	}
	return nil
}

// PackReads returns the latest read of each of vault's packs ever read
// back, by pack id.
func (r records) PackReads(ctx context.Context, vault string) (map[string]PackRead, error) {
	rows, err := r.db.query(ctx, `SELECT pack, length, read_at, read_by, damage FROM vigil_pack_read WHERE vault = ?`, vault)
	if err != nil {
		return nil, fmt.Errorf("read coverage of vault %s: %w", vault, err)
	}
	defer rows.Close()
	out := map[string]PackRead{}
	for rows.Next() {
		var (
			pr PackRead
			at int64
		)
		if err := rows.Scan(&pr.Pack, &pr.Length, &at, &pr.ReadBy, &pr.Damage); err != nil {
			return nil, fmt.Errorf("read coverage of vault %s: %w", vault, err)
		}
		pr.ReadAt = fromMicros(at)
		out[pr.Pack] = pr
	}
	return out, rows.Err()
}

// ForgetPackReads drops vault's records of packs not in keep: packs that
// maintenance removed from storage, whose reads no longer mean anything.
func (r records) ForgetPackReads(ctx context.Context, vault string, keep map[string]bool) error {
	reads, err := r.PackReads(ctx, vault)
	if err != nil {
		return err
	}
	for pack := range reads {
		if keep[pack] {
			continue
		}
		if _, err := r.db.exec(ctx, `DELETE FROM vigil_pack_read WHERE vault = ? AND pack = ?`, vault, pack); err != nil {
			return fmt.Errorf("forget read of pack %s of vault %s: %w", pack, vault, err)
		}
	}
	return nil
}
