package coverage_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/coverage"
	"github.com/vigil-backup/vigil/internal/testsvc"
	"github.com/vigil-backup/vigil/vault"
)

const mb = 1_000_000

var start = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

// TestPick covers the night's choice on its own: never-read packs first,
// then the oldest, nothing read in the last day, the budget kept and a
// pack larger than the budget still read when its turn comes.
func TestPick(t *testing.T) {
	now := start
	packs := []coverage.Pack{
		{ID: "p-old", Length: 10 * mb, Read: now.Add(-20 * 24 * time.Hour)},
		{ID: "p-never", Length: 10 * mb},
		{ID: "p-restore-tested", Length: 10 * mb, Read: now.Add(-2 * time.Hour)},
		{ID: "p-older", Length: 10 * mb, Read: now.Add(-25 * 24 * time.Hour)},
		{ID: "p-recent", Length: 10 * mb, Read: now.Add(-3 * 24 * time.Hour)},
	}

	got := ids(coverage.Pick(packs, now, 30*mb))
	if got != "p-never p-older p-old" {
		t.Errorf("picked %q, want the never-read pack, then the oldest two, within 30 MB", got)
	}

	// the pack a restore test read two hours ago is not read again, even
	// with budget to spare
	got = ids(coverage.Pick(packs, now, 1000*mb))
	if strings.Contains(got, "p-restore-tested") {
		t.Errorf("picked %q: read again what was read two hours ago", got)
	}

	huge := []coverage.Pack{{ID: "p-huge", Length: 80 * mb}, {ID: "p-small", Length: mb, Read: now.Add(-48 * time.Hour)}}
	if got := ids(coverage.Pick(huge, now, 50*mb)); got != "p-huge" {
		t.Errorf("picked %q, want the 80 MB pack alone when it comes first with a 50 MB budget", got)
	}

	p := coverage.Policy{Within: 30 * 24 * time.Hour, BytesPerDay: 50 * mb}
	if b := p.Tonight(10 * mb); b != 60*mb {
		t.Errorf("budget with 10 MB left over: %d, want 60 MB", b)
	}

	if b := p.Tonight(500 * mb); b != 100*mb {
		t.Errorf("budget with 500 MB left over: %d, want at most two nights' (100 MB)", b)
	}
}

// TestMeasure reports bytes, percent and the oldest read.
func TestMeasure(t *testing.T) {
	now := start
	packs := []coverage.Pack{
		{ID: "a", Length: 30 * mb, Read: now.Add(-24 * time.Hour)},
		{ID: "b", Length: 10 * mb, Read: now.Add(-40 * 24 * time.Hour)},
		{ID: "c", Length: 60 * mb, Read: now.Add(-5 * 24 * time.Hour)},
	}

	r := coverage.Measure(packs, now, 30*24*time.Hour)
	if r.Bytes != 100*mb || r.BytesRead != 90*mb || r.UnverifiedBytes != 10*mb || r.Percent() != 90 || r.PacksRead != 2 {
		t.Errorf("report %+v (%v%%), want 90 of 100 MB read within the window", r, r.Percent())
	}

	if !r.Oldest.Equal(packs[1].Read) || r.OldestNever {
		t.Errorf("oldest read %v (never: %v), want %v", r.Oldest, r.OldestNever, packs[1].Read)
	}

	// b, read 40 days ago, is behind; a pack written yesterday and never
	// read is unverified but not yet behind
	if r.GapBytes != 10*mb || !r.OldestUnverified.Equal(packs[1].Read) {
		t.Errorf("gap %d since %v, want b's 10 MB since its read", r.GapBytes, r.OldestUnverified)
	}
	fresh := coverage.Measure(append(packs, coverage.Pack{ID: "e", Length: 5 * mb, Written: now.Add(-24 * time.Hour)}), now, 30*24*time.Hour)
	if fresh.GapBytes != 10*mb || fresh.UnverifiedBytes != 15*mb {
		t.Errorf("with a pack written yesterday: gap %d, unverified %d; want 10 MB and 15 MB", fresh.GapBytes, fresh.UnverifiedBytes)
	}

	r = coverage.Measure(append(packs, coverage.Pack{ID: "d", Length: mb}), now, 30*24*time.Hour)
	if !r.OldestNever || !r.Oldest.IsZero() {
		t.Errorf("with a pack never read: %+v, want OldestNever", r)
	}
}

// TestRollingVerification runs nights of rolling verification with a
// clock the test moves, on a real vault of about 200 MB and a budget of
// 50 MB a night: every byte is read back and found sound by the fourth
// night and not before, no night reads more than its budget allows, and
// a pack damaged before the first night is found on the night its turn
// comes.
func TestRollingVerification(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	source := filepath.Join(dir, "data")
	must(t, os.MkdirAll(source, 0o755))

	// 188 MB of random bytes: stored as they are, so the vault is about
	// 190 MB in packs of up to 20 MiB
	rng := rand.NewChaCha8([32]byte{1})
	for i := range 18 {
		f, err := os.Create(filepath.Join(source, fmt.Sprintf("part-%02d.bin", i)))
		must(t, err)
		_, err = io.CopyN(f, rng, 10<<20)
		must(t, err)
		must(t, f.Close())
	}

	v, err := vault.Open(ctx, vault.Config{Name: "nightly", Storage: filepath.Join(dir, "vault"), Password: "coverage", CacheDir: filepath.Join(dir, "cache")})
	must(t, err)
	defer v.Close(ctx)

	_, err = v.Backup(ctx, source, vault.BackupOptions{Resource: "data"})
	must(t, err)

	stored, err := v.Packs(ctx)
	must(t, err)

	var total int64
	for _, p := range stored {
		total += p.Length
	}

	t.Logf("vault: %d packs, %.1f MB", len(stored), float64(total)/mb)

	if total > 200*mb || total < 180*mb {
		t.Fatalf("vault holds %.1f MB in packs, want about 200 MB (at most 200 for 4 nights of 50 MB)", float64(total)/mb)
	}

	policy := coverage.Policy{Within: 30 * 24 * time.Hour, BytesPerDay: 50 * mb}

	// nights runs rolling verification from start, one night a day, until
	// every pack is read and sound or 10 nights pass; it returns the night
	// each pack was found damaged and the night coverage reached 100%.
	nights := func(t *testing.T) (readOn, damagedOn map[string]int, fullOn int) {
		t.Helper()

		read := map[string]time.Time{}
		readOn, damagedOn = map[string]int{}, map[string]int{}

		var carried int64

		for night := 1; night <= 10; night++ {
			now := start.Add(time.Duration(night-1) * 24 * time.Hour)
			packs := make([]coverage.Pack, len(stored))

			for i, p := range stored {
				packs[i] = coverage.Pack{ID: p.ID, Length: p.Length, Read: read[p.ID]}
			}

			budget := policy.Tonight(carried)
			picked := coverage.Pick(packs, now, budget)

			ids := make([]string, len(picked))
			for i, p := range picked {
				ids[i] = p.ID
			}

			checks, err := v.VerifyPacks(ctx, ids)
			must(t, err)

			var bytes int64
			for _, c := range checks {
				bytes += c.Bytes
				readOn[c.ID] = night

				// a damaged pack was read back too: what it holds is
				// reported, and it is not read again each night
				if _, seen := damagedOn[c.ID]; len(c.Problems) > 0 && !seen {
					damagedOn[c.ID] = night
				}

				read[c.ID] = now
			}

			if bytes > budget {
				t.Errorf("night %d read %.1f MB with a budget of %.1f MB", night, float64(bytes)/mb, float64(budget)/mb)
			}

			carried = budget - bytes

			for i, p := range stored {
				packs[i] = coverage.Pack{ID: p.ID, Length: p.Length, Read: read[p.ID]}
			}

			r := coverage.Measure(packs, now, policy.Within)
			t.Logf("night %d: read %d packs, %.1f MB; coverage %.1f%%", night, len(checks), float64(bytes)/mb, r.Percent())

			if r.Percent() == 100 {
				return readOn, damagedOn, night
			}
		}

		return readOn, damagedOn, 0
	}

	var schedule map[string]int

	t.Run("sound", func(t *testing.T) {
		readOn, damaged, full := nights(t)
		schedule = readOn

		if len(damaged) != 0 {
			t.Fatalf("damage found in a sound vault: %v", damaged)
		}

		if full != 4 {
			t.Fatalf("coverage reached 100%% on night %d, want night 4 (200 MB at 50 MB a night)", full)
		}
	})

	t.Run("damaged", func(t *testing.T) {
		// a pack whose turn came on the third night of the sound run
		var victim string
		for id, night := range schedule {
			if night == 3 && (victim == "" || id < victim) {
				victim = id
			}
		}

		if victim == "" {
			t.Fatalf("no pack was read on the third night: %v", schedule)
		}

		testsvc.DamagePack(t, filepath.Join(dir, "vault"), victim)

		_, damaged, _ := nights(t)

		night, ok := damaged[victim]
		if !ok {
			t.Fatalf("damaged pack %s was never found: %v", victim, damaged)
		}

		if night != 3 {
			t.Errorf("damaged pack %s found on night %d, want 3, when its turn came", victim, night)
		}

		if len(damaged) != 1 {
			t.Errorf("damage reported in %v, want only %s", damaged, victim)
		}
	})
}

func ids(packs []coverage.Pack) string {
	s := make([]string, len(packs))
	for i, p := range packs {
		s[i] = p.ID
	}

	return strings.Join(s, " ")
}

func must(t *testing.T, err error) {
	t.Helper()

	if err != nil {
		t.Fatal(err)
	}
}
