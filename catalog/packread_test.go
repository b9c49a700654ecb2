package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/catalog"
)

// TestPackReads: a pack's latest read replaces the one before, an older
// one does not, vaults are apart, and packs gone from storage are
// forgotten.
func TestPackReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		night := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

		requireNoError(t, c.RecordPackReads(ctx, "offsite", []catalog.PackRead{
			{Pack: "p1", Length: 20 << 20, ReadAt: night, ReadBy: "rolling verification"},
			{Pack: "p2", Length: 10 << 20, ReadAt: night, ReadBy: "rolling verification", Damage: "content c1 at offset 0: invalid checksum"},
		}))
		requireNoError(t, c.RecordPackReads(ctx, "local", []catalog.PackRead{
			{Pack: "p1", Length: 1, ReadAt: night, ReadBy: "verify"},
		}))
		// a restore test reads p1 the next day; a slow job reports a read
		// of p2 from before the night's
		requireNoError(t, c.RecordPackReads(ctx, "offsite", []catalog.PackRead{
			{Pack: "p1", Length: 20 << 20, ReadAt: night.Add(24 * time.Hour), ReadBy: "restore test rt-1"},
			{Pack: "p2", Length: 10 << 20, ReadAt: night.Add(-time.Hour), ReadBy: "verify"},
		}))

		reads, err := c.PackReads(ctx, "offsite")
		requireNoError(t, err)
		if len(reads) != 2 {
			t.Fatalf("%d reads of offsite, want 2: %v", len(reads), reads)
		}
		if p1 := reads["p1"]; !p1.ReadAt.Equal(night.Add(24*time.Hour)) || p1.ReadBy != "restore test rt-1" || p1.Damage != "" {
			t.Errorf("p1: %+v, want the restore test's read", p1)
		}
		if p2 := reads["p2"]; !p2.ReadAt.Equal(night) || p2.Damage == "" || p2.Length != 10<<20 {
			t.Errorf("p2: %+v, want the night's read with its damage kept", p2)
		}

		local, err := c.PackReads(ctx, "local")
		requireNoError(t, err)
		if len(local) != 1 || local["p1"].ReadBy != "verify" {
			t.Errorf("local's reads %v, want its own", local)
		}

		requireNoError(t, c.ForgetPackReads(ctx, "offsite", []string{"p1"}))
		reads, err = c.PackReads(ctx, "offsite")
		requireNoError(t, err)
		if _, ok := reads["p1"]; ok || len(reads) != 1 {
			t.Errorf("after forgetting p1: %v", reads)
		}
		if local, _ := c.PackReads(ctx, "local"); len(local) != 1 {
			t.Errorf("forgetting offsite's packs touched local's: %v", local)
		}
	})
}

// TestCoverageMeasures: a vault's latest measure is the one the metrics
// read, with or without an oldest unverified time, and its history keeps
// every one.
func TestCoverageMeasures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		night := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
		since := night.Add(-40 * 24 * time.Hour)
		requireNoError(t, c.RecordCoverage(ctx, catalog.CoverageMeasure{Vault: "offsite", MeasuredAt: night, Window: 30 * 24 * time.Hour,
			Bytes: 100, BytesRead: 60, UnverifiedBytes: 40, GapBytes: 10, DamagedPacks: 2, OldestUnverified: &since}))
		requireNoError(t, c.RecordCoverage(ctx, catalog.CoverageMeasure{Vault: "local", MeasuredAt: night, Window: time.Hour, Bytes: 5, BytesRead: 5}))
		got, err := c.Coverages(ctx)
		requireNoError(t, err)
		if o := got["offsite"]; o.GapBytes != 10 || o.DamagedPacks != 2 || o.OldestUnverified == nil || !o.OldestUnverified.Equal(since) || o.Window != 30*24*time.Hour || !o.MeasuredAt.Equal(night) {
			t.Errorf("offsite: %+v", o)
		}
		if l := got["local"]; l.OldestUnverified != nil || l.BytesRead != 5 {
			t.Errorf("local: %+v", l)
		}
		requireNoError(t, c.RecordCoverage(ctx, catalog.CoverageMeasure{Vault: "offsite", MeasuredAt: night.Add(24 * time.Hour), Window: 30 * 24 * time.Hour, Bytes: 100, BytesRead: 100}))
		got, _ = c.Coverages(ctx)
		if o := got["offsite"]; o.OldestUnverified != nil || o.BytesRead != 100 || len(got) != 2 {
			t.Errorf("after the next night: %+v (%d vaults)", o, len(got))
		}
		history, err := c.CoverageHistory(ctx, "offsite", 10)
		requireNoError(t, err)
		if len(history) != 2 || history[0].BytesRead != 60 || history[1].BytesRead != 100 {
			t.Errorf("offsite's history: %+v, want both nights, oldest first", history)
		}
		if last, _ := c.CoverageHistory(ctx, "offsite", 1); len(last) != 1 || last[0].BytesRead != 100 {
			t.Errorf("offsite's last measure: %+v", last)
		}
	})
}
