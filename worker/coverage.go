package worker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/coverage"
	"github.com/vigil-backup/vigil/internal/units"
	"github.com/vigil-backup/vigil/vault"
)

// RollingVerifyArgs runs one night of a vault's rolling verification (the
// vault's verify: in the config).
type RollingVerifyArgs struct {
	Vault string `json:"vault"`
}

func (RollingVerifyArgs) Kind() string { return "vigil.rolling-verify" }

// rollingVerifyBy is what the catalog says read a pack back.
const rollingVerifyBy = "rolling verification"

// NightResult is what one night of rolling verification read and found,
// and the vault's coverage after it.
type NightResult struct {
	Checks []vault.PackCheck
	// Budget is the night's: max_bytes_per_day and what the night before
	// left unread (coverage.Policy.Tonight); Bytes is what it read.
	Budget   int64
	Bytes    int64
	Coverage coverage.Report
	// Damaged lists the packs that did not read back sound, with the first
	// problem of each.
	Damaged []string
}

// rollingVerify is the scheduled night, at the clock's time.
func (e *Engine) rollingVerify(ctx context.Context, args RollingVerifyArgs) error {
	if v, ok := e.cfg.Current().Vault(args.Vault); !ok || v.Verify == nil {
		return river.JobCancel(fmt.Errorf("vault %q has no rolling verification configured any more", args.Vault))
	}
	_, err := e.RollingVerify(ctx, args.Vault, now())
	return err
}

// RollingVerify runs one night of vault name's rolling verification at at:
// it reads back the packs least recently checked (coverage.Pick) within
// the night's max_bytes_per_day, records each read in the catalog, and
// measures the coverage within read_back_within. Damage is returned as an
// error wrapping vault.ErrCorrupt naming the packs, after everything is
// recorded.
func (e *Engine) RollingVerify(ctx context.Context, name string, at time.Time) (NightResult, error) {
	cfg, ok := e.cfg.Current().Vault(name)
	if !ok || cfg.Verify == nil {
		return NightResult{}, fmt.Errorf("vault %q has no verify: section in the config: add read_back_within, max_bytes_per_day and schedule to it", name)
	}
	v, err := e.Vault(ctx, name)
	if err != nil {
		return NightResult{}, err
	}
	stored, err := v.Packs(ctx)
	if err != nil {
		return NightResult{}, err
	}
	reads, err := e.catalog.PackReads(ctx, name)
	if err != nil {
		return NightResult{}, err
	}

	packs := coveragePacks(stored, reads)
	keep := make(map[string]bool, len(stored))
	for _, p := range stored {
		keep[p.ID] = true
	}

	var res NightResult
	policy := coverage.Policy{Within: time.Duration(cfg.Verify.ReadBackWithin), BytesPerDay: int64(cfg.Verify.MaxBytesPerDay)}
	res.Budget = policy.Tonight(leftUnread(reads, at, policy.BytesPerDay))
	picked := coverage.Pick(packs, at, res.Budget)
	ids := make([]string, len(picked))
	for i, p := range picked {
		ids[i] = p.ID
	}

	res.Checks, err = v.VerifyPacks(ctx, ids)
	if err != nil {
		return res, err
	}

	length := map[string]int64{}
	for _, p := range picked {
		length[p.ID] = p.Length
	}
	records := make([]catalog.PackRead, 0, len(res.Checks))
	for _, c := range res.Checks {
		pr := catalog.PackRead{Pack: c.ID, Length: length[c.ID], ReadAt: at, ReadBy: rollingVerifyBy}
		if len(c.Problems) > 0 {
			pr.Damage = c.Problems[0]
			res.Damaged = append(res.Damaged, fmt.Sprintf("pack %s: %s", c.ID, c.Problems[0]))
		}
		res.Bytes += c.Bytes
		records = append(records, pr)
	}
	// what was read is kept even when the night is cut short after it
	wctx := context.WithoutCancel(ctx)
	if err := e.catalog.RecordPackReads(wctx, name, records); err != nil {
		return res, err
	}
	var gone []string
	for pack := range reads {
		if !keep[pack] {
			gone = append(gone, pack)
		}
	}
	if err := e.catalog.ForgetPackReads(wctx, name, gone); err != nil {
		return res, err
	}

	for i := range packs {
		if _, ok := length[packs[i].ID]; ok {
			packs[i].Read = at
		}
	}
	res.Coverage = coverage.Measure(packs, at, policy.Within)
	e.logger.Info("rolling verification", "vault", name, "packs_read", len(res.Checks), "bytes_read", res.Bytes,
		"coverage_percent", fmt.Sprintf("%.1f", res.Coverage.Percent()), "unverified_bytes", res.Coverage.UnverifiedBytes,
		"gap_bytes", res.Coverage.GapBytes)

	var events []vigil.Event
	if len(res.Damaged) > 0 {
		events = append(events, vigil.Event{Type: vigil.EventVaultDamaged,
			Subject: fmt.Sprintf("Vault %s is damaged: %s", name, units.Plural(len(res.Damaged), "pack")),
			Message: fmt.Sprintf("The rolling verification of vault %q read back %s that did not read back sound:\n%s\nRun `vigil vault verify %s --read-data-percent 100` to see which recovery points it harms, then `vigil vault repair %s`, and back them up again.",
				name, units.Plural(len(res.Damaged), "pack"), strings.Join(res.Damaged, "\n"), name, name)})
	}
	if gap := res.Coverage.GapBytes; gap > 0 {
		days := policy.Within.Hours() / 24
		events = append(events, vigil.Event{Type: vigil.EventVaultCoverageGap,
			Subject: fmt.Sprintf("Vault %s: %s not read back in %g days", name, units.Bytes(gap), days),
			Message: fmt.Sprintf("Vault %q holds %s stored more than %g days ago that has not been read back and checked in the last %g days (read_back_within), of %s in all. Each night reads at most %s (max_bytes_per_day): raise it to at least %s a day, or widen read_back_within, so that every byte is read back in time.",
				name, units.Bytes(gap), days, days, units.Bytes(res.Coverage.Bytes), units.Bytes(policy.BytesPerDay), units.Bytes(int64(float64(res.Coverage.Bytes)/max(days, 1))+1))})
	}
	m := coverageMeasure(name, at, policy.Within, res.Coverage)
	for _, r := range reads {
		if _, tonight := length[r.Pack]; r.Damage != "" && !tonight && keep[r.Pack] {
			m.DamagedPacks++
		}
	}
	m.DamagedPacks += int64(len(res.Damaged))
	if err := e.Record(wctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.RecordCoverage(ctx, m) }, events...); err != nil {
		return res, err
	}

	if len(res.Damaged) > 0 {
		e.logger.Warn("rolling verification found damage", "vault", name, "packs", len(res.Damaged), "first", res.Damaged[0])
		return res, fmt.Errorf("rolling verification of vault %q: %d damaged pack(s), first: %s: %w; run `vigil vault verify %s --read-data-percent 100` to see which recovery points it harms, then `vigil vault repair %s`",
			name, len(res.Damaged), res.Damaged[0], vault.ErrCorrupt, name, name)
	}
	return res, nil
}

// defaultCoverageWindow is the window a vault without rolling
// verification is measured in.
const defaultCoverageWindow = 30 * 24 * time.Hour

// VaultCoverage reports how much of vault name was read back within its
// rolling verification's window, from the catalog's record of reads and
// the packs the vault's index names now.
func (e *Engine) VaultCoverage(ctx context.Context, name string) (vigil.VaultCoverage, error) {
	cfg, ok := e.cfg.Current().Vault(name)
	if !ok {
		return vigil.VaultCoverage{}, &vigil.UnknownNameError{Kind: "vault", Name: name, Known: e.cfg.Current().VaultNames()}
	}
	window := defaultCoverageWindow
	if cfg.Verify != nil {
		window = time.Duration(cfg.Verify.ReadBackWithin)
	}
	v, err := e.Vault(ctx, name)
	if err != nil {
		return vigil.VaultCoverage{}, err
	}
	stored, err := v.Packs(ctx)
	if err != nil {
		return vigil.VaultCoverage{}, err
	}
	reads, err := e.catalog.PackReads(ctx, name)
	if err != nil {
		return vigil.VaultCoverage{}, err
	}
	out := vigil.VaultCoverage{Vault: name, WindowSeconds: window.Seconds(), Damaged: []string{}}
	packs := coveragePacks(stored, reads)
	for _, p := range stored {
		r, read := reads[p.ID]
		switch {
		case !read:
			out.NeverRead++
		case r.Damage != "":
			out.Damaged = append(out.Damaged, fmt.Sprintf("pack %s: %s (read %s by %s)", p.ID, r.Damage, r.ReadAt.UTC().Format(time.RFC3339), r.ReadBy))
		}
	}
	at := now()
	r := coverage.Measure(packs, at, window)
	out.Packs, out.PacksRead = r.Packs, r.PacksRead
	out.Bytes, out.BytesRead, out.UnverifiedBytes, out.GapBytes = r.Bytes, r.BytesRead, r.UnverifiedBytes, r.GapBytes
	out.Percent = r.Percent()
	if !r.OldestUnverified.IsZero() {
		out.OldestUnverifiedAt = &r.OldestUnverified
	}
	for _, p := range packs {
		if !p.Read.IsZero() && (out.OldestReadAt == nil || p.Read.Before(*out.OldestReadAt)) {
			out.OldestReadAt = &p.Read
		}
	}
	return out, nil
}

// leftUnread is what the last night, if it ran in the two days before at,
// left of its budget: the night's budget less the packs it read, which
// carry its reads' time. Packs a restore test read since count as the
// night's no more, which errs towards a smaller budget.
func leftUnread(reads map[string]catalog.PackRead, at time.Time, perDay int64) int64 {
	var last time.Time
	for _, r := range reads {
		if r.ReadBy == rollingVerifyBy && r.ReadAt.Before(at) && r.ReadAt.After(last) {
			last = r.ReadAt
		}
	}
	if last.IsZero() || at.Sub(last) > 48*time.Hour {
		return 0
	}
	var read int64
	for _, r := range reads {
		if r.ReadBy == rollingVerifyBy && r.ReadAt.Equal(last) {
			read += r.Length
		}
	}
	return max(perDay-read, 0)
}

// coverageMeasure is r as the catalog keeps it.
func coverageMeasure(name string, at time.Time, window time.Duration, r coverage.Report) catalog.CoverageMeasure {
	m := catalog.CoverageMeasure{Vault: name, MeasuredAt: at, Window: window,
		Bytes: r.Bytes, BytesRead: r.BytesRead, UnverifiedBytes: r.UnverifiedBytes, GapBytes: r.GapBytes}
	if !r.OldestUnverified.IsZero() {
		m.OldestUnverified = &r.OldestUnverified
	}
	return m
}

// coveragePacks pairs each stored pack with its latest read, if any.
func coveragePacks(stored []vault.Pack, reads map[string]catalog.PackRead) []coverage.Pack {
	packs := make([]coverage.Pack, len(stored))
	for i, p := range stored {
		packs[i] = coverage.Pack{ID: p.ID, Length: p.Length, Read: reads[p.ID].ReadAt, Written: p.Written}
	}
	return packs
}
