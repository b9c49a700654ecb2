package catalog

import (
	"context"
	"fmt"
	"slices"
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

// ForgetPackReads drops vault's records of packs: packs that maintenance
// removed from storage, whose reads no longer mean anything.
func (r records) ForgetPackReads(ctx context.Context, vault string, packs []string) error {
	for _, pack := range packs {
		if _, err := r.db.exec(ctx, `DELETE FROM vigil_pack_read WHERE vault = ? AND pack = ?`, vault, pack); err != nil {
			return fmt.Errorf("forget read of pack %s of vault %s: %w", pack, vault, err)
		}
	}
	return nil
}

// CoverageMeasure is a vault's coverage as measured at MeasuredAt.
type CoverageMeasure struct {
	Vault      string
	MeasuredAt time.Time
	Window     time.Duration
	// Bytes stored, read back within the window, not, and not while
	// older than the window (the gap).
	Bytes, BytesRead, UnverifiedBytes, GapBytes int64
	// DamagedPacks counts the packs whose latest read found damage.
	DamagedPacks int64
	// OldestUnverified is nil when every pack was read within the window.
	OldestUnverified *time.Time
}

// RecordCoverage adds m to vault m.Vault's coverage history.
func (r records) RecordCoverage(ctx context.Context, m CoverageMeasure) error {
	var oldest *int64
	if m.OldestUnverified != nil {
		v := micros(*m.OldestUnverified)
		oldest = &v
	}
	_, err := r.db.exec(ctx, `INSERT INTO vigil_vault_coverage (vault, measured_at, window_seconds, bytes, bytes_read, unverified_bytes, gap_bytes, damaged_packs, oldest_unverified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.Vault, micros(m.MeasuredAt), int64(m.Window.Seconds()), m.Bytes, m.BytesRead, m.UnverifiedBytes, m.GapBytes, m.DamagedPacks, oldest)
	if err != nil {
		return fmt.Errorf("record coverage of vault %s: %w", m.Vault, err)
	}
	return nil
}

const coverageColumns = `c.vault, c.measured_at, c.window_seconds, c.bytes, c.bytes_read, c.unverified_bytes, c.gap_bytes, c.damaged_packs, c.oldest_unverified_at`

// Coverages returns every vault's latest coverage measure, by vault name.
func (r records) Coverages(ctx context.Context) (map[string]CoverageMeasure, error) {
	ms, err := r.coverages(ctx, `SELECT `+coverageColumns+` FROM vigil_vault_coverage c
		WHERE c.id = (SELECT MAX(x.id) FROM vigil_vault_coverage x WHERE x.vault = c.vault)`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]CoverageMeasure, len(ms))
	for _, m := range ms {
		out[m.Vault] = m
	}
	return out, nil
}

// CoverageHistory returns vault's last n coverage measures, oldest first.
func (r records) CoverageHistory(ctx context.Context, vault string, n int) ([]CoverageMeasure, error) {
	ms, err := r.coverages(ctx, `SELECT `+coverageColumns+` FROM vigil_vault_coverage c
		WHERE c.vault = ? ORDER BY c.id DESC LIMIT ?`, vault, n)
	if err != nil {
		return nil, err
	}
	slices.Reverse(ms)
	return ms, nil
}

func (r records) coverages(ctx context.Context, query string, args ...any) ([]CoverageMeasure, error) {
	rows, err := r.db.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read vaults' coverage: %w", err)
	}
	defer rows.Close()
	var out []CoverageMeasure
	for rows.Next() {
		var (
			m          CoverageMeasure
			at, window int64
			oldest     *int64
		)
		if err := rows.Scan(&m.Vault, &at, &window, &m.Bytes, &m.BytesRead, &m.UnverifiedBytes, &m.GapBytes, &m.DamagedPacks, &oldest); err != nil {
			return nil, fmt.Errorf("read vaults' coverage: %w", err)
		}
		m.MeasuredAt, m.Window = fromMicros(at), time.Duration(window)*time.Second
		if oldest != nil {
			t := fromMicros(*oldest)
			m.OldestUnverified = &t
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
