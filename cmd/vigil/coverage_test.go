package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

// TestRollingVerificationEndToEnd: a vault backed up by a server without
// rolling verification has never been read back (vault coverage says so);
// a restore test of its recovery point counts the packs it read whole. A
// second backup's new pack is then damaged while the server is down, and
// a server with verify: running every second reads back what the restore
// test did not, finds the damaged pack, and vault coverage shows every
// byte read and names the damage, exiting 1.
func TestRollingVerificationEndToEnd(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	e.serve()
	e.backup("docs")

	var cov vigil.VaultCoverage
	e.mustJSON(&cov, "vault", "coverage", "lab-vault")
	if cov.Packs == 0 || cov.PacksRead != 0 || cov.NeverRead != cov.Packs || cov.Percent != 0 || cov.UnverifiedBytes != cov.Bytes || cov.WindowSeconds != 30*86400 {
		t.Fatalf("coverage before any read-back: %+v, want every pack never read, in a 30-day window", cov)
	}
	var test vigil.RestoreJob
	e.mustJSON(&test, "restore-test", "start", "--resource", "docs", "--wait")
	if test.ValidationStatus != vigil.ValidationSuccessful {
		t.Fatalf("restore test: %+v", test)
	}
	tested := testsvc.DataPacks(t, e.path("vaults/lab-vault"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.mustJSON(&cov, "vault", "coverage", "lab-vault")
		if cov.PacksRead >= len(tested) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("coverage after a restore test: %+v, want its %d data packs read", cov, len(tested))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cov.NeverRead != cov.Packs-cov.PacksRead || cov.OldestReadAt == nil {
		t.Errorf("coverage after a restore test: %+v", cov)
	}

	// a second backup writes a pack no restore test has read
	if err := os.WriteFile(e.path("docs/later.txt"), []byte(strings.Repeat("written after the restore test\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.backup("docs")
	e.stop()

	var packs []string
	for _, p := range testsvc.DataPacks(t, e.path("vaults/lab-vault")) {
		if !slices.Contains(tested, p) {
			packs = append(packs, p)
		}
	}
	if len(packs) != 1 {
		t.Fatalf("the second backup wrote data packs %v, want one", packs)
	}
	testsvc.DamagePack(t, e.path("vaults/lab-vault"), packs[0])

	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	withVerify := strings.Replace(string(cfg), "    password_env: VIGIL_VAULT_PASSWORD\n",
		"    password_env: VIGIL_VAULT_PASSWORD\n    verify: {read_back_within: 7d, max_bytes_per_day: 1GiB, schedule: '@every 1s'}\n", 1)
	if err := os.WriteFile(e.config, []byte(withVerify), 0o600); err != nil {
		t.Fatal(err)
	}
	e.serve()

	deadline = time.Now().Add(time.Minute)
	for {
		r := e.run("vault", "coverage", "lab-vault", "--json")
		cov = vigil.VaultCoverage{}
		if err := json.Unmarshal([]byte(r.stdout), &cov); err != nil {
			t.Fatalf("vault coverage --json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		if cov.Percent == 100 {
			if r.code != 1 || len(cov.Damaged) != 1 || !strings.Contains(cov.Damaged[0], packs[0]) || !strings.Contains(r.stderr, "vigil vault repair lab-vault") {
				t.Fatalf("coverage after the nights: exit %d, %+v\nstderr: %s", r.code, cov, r.stderr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the vault was not read back within a minute of nights every second: %+v\nserver log:\n%s", cov, e.serverLog)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if cov.WindowSeconds != 7*86400 || cov.NeverRead != 0 || cov.OldestReadAt == nil {
		t.Errorf("coverage %+v, want a 7-day window, nothing never read, an oldest read", cov)
	}

	out := e.run("vault", "coverage", "lab-vault")
	if !strings.Contains(out.stdout, "read back and checked in the last 7 days (100.0%)") || !strings.Contains(out.stdout, "damaged: pack "+packs[0]) {
		t.Errorf("vault coverage:\n%s", out.stdout)
	}
	if !strings.Contains(e.serverLog.String(), "rolling verification found damage") {
		t.Errorf("the server log does not report the damage:\n%s", e.serverLog)
	}
	var page struct{ Events []vigil.Event }
	e.mustJSON(&page, "events", "list", "--type", "VAULT_DAMAGED")
	if len(page.Events) == 0 || !strings.Contains(page.Events[0].Message, packs[0]) {
		t.Errorf("VAULT_DAMAGED events: %+v, want one naming pack %s", page.Events, packs[0])
	}

	// the console's vaults page shows it, with its chart
	ctx := browser(t)
	base := signIn(t, ctx, e)
	var row string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/vaults"),
		chromedp.WaitVisible(`#vault-lab-vault svg.coverage`, chromedp.ByQuery),
		chromedp.Text(`#vault-lab-vault td.coverage`, &row, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("the console's vaults page: %v", err)
	}
	if !strings.Contains(row, "1 pack damaged") || !strings.Contains(row, "100.0% read back") || !strings.Contains(row, "in the last 7 days") {
		t.Errorf("the console's coverage of lab-vault: %q", row)
	}
	screenshot(t, ctx, "vaults-coverage")

	// the metrics show the last measure: nothing unverified
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	_, families := e.scrape(strings.TrimSpace(string(token)))
	labels := map[string]string{"vault": "lab-vault"}
	if u := value(metricValue(t, families, "vigil_vault_unverified_bytes", labels)); u != 0 {
		t.Errorf("vigil_vault_unverified_bytes %v, want 0", u)
	}
	if o := value(metricValue(t, families, "vigil_vault_oldest_unverified_seconds", labels)); o != 0 {
		t.Errorf("vigil_vault_oldest_unverified_seconds %v, want 0", o)
	}
}
