package worker

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/testsvc"
	"github.com/vigil-backup/vigil/vault"
)

// TestRollingVerify runs nights of a vault's rolling verification through
// the engine, with the test's clock: each night stays within its budget,
// what a restore test read in the last day is not read again, every read
// is kept in the catalog, the vault is read back whole within the nights
// its size takes, and a damaged pack fails its night with ErrCorrupt and
// its damage recorded.
func TestRollingVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	schedule, err := cron.ParseStandard("0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	const budget = 25_000_000
	cfg := &config.Config{DataDir: dir, Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)},
		Vaults: []config.Vault{{Name: "v", Storage: filepath.Join(dir, "vault"), Password: "correct horse",
			Verify: &config.VaultVerify{ReadBackWithin: config.Duration(30 * 24 * time.Hour), MaxBytesPerDay: budget, Schedule: "0 3 * * *", Cron: schedule}}}}
	e, cat := newTestEngine(t, cfg)

	// 60 MB of random bytes: three or four packs
	src := filepath.Join(dir, "data")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{7})
	for _, name := range []string{"a.bin", "b.bin", "c.bin"} {
		f, err := os.Create(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(f, rng, 20_000_000); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	v, err := e.Vault(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Backup(ctx, src, vault.BackupOptions{Resource: "data"}); err != nil {
		t.Fatal(err)
	}
	stored, err := v.Packs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	var largest vault.Pack
	for _, p := range stored {
		total += p.Length
		if p.Length > largest.Length {
			largest = p
		}
	}

	night := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	// a restore test read the largest pack an hour before the first night
	if err := cat.RecordPackReads(ctx, "v", []catalog.PackRead{{Pack: largest.ID, Length: largest.Length, ReadAt: night.Add(-time.Hour), ReadBy: "restore test rt-1"}}); err != nil {
		t.Fatal(err)
	}

	full := 0
	for n := 1; n <= 10 && full == 0; n++ {
		res, err := e.RollingVerify(ctx, "v", night)
		if err != nil {
			t.Fatalf("night %d: %v", n, err)
		}
		if res.Budget < budget || res.Budget > 2*budget {
			t.Errorf("night %d had a budget of %d, want %d and at most one night's more", n, res.Budget, budget)
		}
		if res.Bytes > res.Budget && len(res.Checks) > 1 {
			t.Errorf("night %d read %d bytes in %d packs, over its budget of %d", n, res.Bytes, len(res.Checks), res.Budget)
		}
		for _, c := range res.Checks {
			if n == 1 && c.ID == largest.ID {
				t.Errorf("night 1 read pack %s again, which a restore test read an hour before", c.ID)
			}
		}
		if res.Coverage.Percent() == 100 {
			full = n
		}
		night = night.Add(24 * time.Hour)
	}
	// the nights average out at the budget: no more nights than the
	// vault's size takes (less, as a restore test read one pack)
	if full == 0 || full > int((total+budget-1)/budget) {
		t.Fatalf("%d bytes in %d packs read back whole on night %d (0: not in 10), want within %d nights of %d bytes",
			total, len(stored), full, (total+budget-1)/budget, budget)
	}
	t.Logf("%d packs, %d bytes: all read back within %d nights of %d bytes", len(stored), total, full, budget)

	reads, err := cat.PackReads(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stored {
		r, ok := reads[p.ID]
		if !ok || r.Damage != "" {
			t.Errorf("pack %s: read %+v, want a sound read recorded", p.ID, r)
		}
	}

	// the pack read longest ago comes first on the next night: damage it
	var oldest catalog.PackRead
	for _, r := range reads {
		if oldest.Pack == "" || r.ReadAt.Before(oldest.ReadAt) || (r.ReadAt.Equal(oldest.ReadAt) && r.Pack < oldest.Pack) {
			oldest = r
		}
	}
	testsvc.DamagePack(t, filepath.Join(dir, "vault"), oldest.Pack)
	night = oldest.ReadAt.Add(30 * 24 * time.Hour)
	_, err = e.RollingVerify(ctx, "v", night)
	if !errors.Is(err, vault.ErrCorrupt) || !strings.Contains(err.Error(), oldest.Pack) {
		t.Fatalf("night with pack %s damaged: %v, want ErrCorrupt naming it", oldest.Pack, err)
	}
	reads, _ = cat.PackReads(ctx, "v")
	if r := reads[oldest.Pack]; r.Damage == "" || !r.ReadAt.Equal(night) {
		t.Errorf("damaged pack's read %+v, want that night's, with its damage", r)
	}
	page, err := e.ListEvents(ctx, vigil.EventQuery{Types: []vigil.EventType{vigil.EventVaultDamaged}})
	if err != nil || len(page.Events) != 1 || !strings.Contains(page.Events[0].Message, oldest.Pack) || !strings.Contains(page.Events[0].Message, "vigil vault repair v") {
		t.Errorf("VAULT_DAMAGED events: %+v (%v), want one naming pack %s", page.Events, err, oldest.Pack)
	}

	// With a budget of one pack a night, sixty days on, most of the vault
	// has gone unread for longer than the window: a gap, an event, and
	// the figures the metrics show.
	cfg.Vaults[0].Verify.MaxBytesPerDay = 1
	night = night.Add(60 * 24 * time.Hour)
	res, err := e.RollingVerify(ctx, "v", night)
	if err != nil && !errors.Is(err, vault.ErrCorrupt) {
		t.Fatal(err)
	}
	if len(res.Checks) != 1 || res.Coverage.GapBytes == 0 || res.Coverage.GapBytes != res.Coverage.UnverifiedBytes {
		t.Fatalf("a night of one pack, sixty days on: %d packs read, coverage %+v; want one pack read and the rest a gap", len(res.Checks), res.Coverage)
	}
	page, err = e.ListEvents(ctx, vigil.EventQuery{Types: []vigil.EventType{vigil.EventVaultCoverageGap}})
	if err != nil || len(page.Events) != 1 || !strings.Contains(page.Events[0].Message, "max_bytes_per_day") {
		t.Errorf("VAULT_COVERAGE_GAP events: %+v (%v), want one saying to raise max_bytes_per_day", page.Events, err)
	}
	measures, err := cat.Coverages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := measures["v"]
	if m.GapBytes != res.Coverage.GapBytes || m.UnverifiedBytes != res.Coverage.UnverifiedBytes || m.OldestUnverified == nil || !m.MeasuredAt.Equal(night) {
		t.Errorf("the catalog's measure %+v, want the night's %+v", m, res.Coverage)
	}
}

// TestLeftUnread: the night before left its budget less what it read;
// other reads and older nights leave nothing over.
func TestLeftUnread(t *testing.T) {
	at := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	night := at.Add(-24 * time.Hour)
	reads := map[string]catalog.PackRead{
		"p1": {Pack: "p1", Length: 20, ReadAt: night, ReadBy: rollingVerifyBy},
		"p2": {Pack: "p2", Length: 10, ReadAt: night, ReadBy: rollingVerifyBy},
		"p3": {Pack: "p3", Length: 40, ReadAt: night.Add(-24 * time.Hour), ReadBy: rollingVerifyBy},
		"p4": {Pack: "p4", Length: 15, ReadAt: at.Add(-time.Hour), ReadBy: "restore test rt-1"},
	}
	if got := leftUnread(reads, at, 50); got != 20 {
		t.Errorf("left unread %d, want 50 - 30 read last night = 20", got)
	}
	if got := leftUnread(reads, at.Add(72*time.Hour), 50); got != 0 {
		t.Errorf("left unread three days later: %d, want 0", got)
	}
	if got := leftUnread(map[string]catalog.PackRead{"p4": reads["p4"]}, at, 50); got != 0 {
		t.Errorf("left unread with no night before: %d, want 0", got)
	}
}
