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

		requireNoError(t, c.ForgetPackReads(ctx, "offsite", map[string]bool{"p2": true}))
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
