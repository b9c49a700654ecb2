package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/vigil-backup/vigil"
)

// A vault rolled back to an older copy loses the newer recovery points:
// verify names them by id and resource, marks them DAMAGED with an event,
// and a restore test of the resource then picks the older, whole one.
// Then a pack is cut short: verify finds it without reading data, repair
// drops the damaged data, and a backup of the unchanged source makes a
// recovery point whose restore test passes.
func TestVaultDamageAndRepair(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	rng := rand.New(rand.NewPCG(12, 8))
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(rng.UintN(256))
	}
	if err := os.WriteFile(e.path("docs/big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	e.serve()

	old := e.backup("docs")
	vaultDir := e.path("vaults/lab-vault")
	copyDir(t, vaultDir, e.path("vault-copy"))
	os.WriteFile(e.path("docs/more.txt"), []byte("more\n"), 0o644)
	newer := e.backup("docs")
	if err := os.RemoveAll(vaultDir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, e.path("vault-copy"), vaultDir)

	r := e.run("vault", "verify", "lab-vault")
	if r.code != 1 || !strings.Contains(r.stdout, newer.RecoveryPointID+` (directory "docs")`) || !strings.Contains(r.stdout, "missing from vault") ||
		strings.Contains(r.stdout, old.RecoveryPointID) || strings.Contains(r.stdout+r.stderr, "intact") || !strings.Contains(r.stderr, "vigil vault repair lab-vault") {
		t.Fatalf("verify of a rolled-back vault: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var rp vigil.RecoveryPoint
	e.mustJSON(&rp, "recovery-points", "show", newer.RecoveryPointID)
	if rp.Status != vigil.RecoveryPointDamaged || !strings.Contains(rp.StatusMessage, "missing") {
		t.Errorf("recovery point after the rollback: %s %q, want DAMAGED saying its snapshot is missing", rp.Status, rp.StatusMessage)
	}
	var page struct{ Events []vigil.Event }
	e.mustJSON(&page, "events", "list", "--type", "RECOVERY_POINT_DAMAGED")
	if events := page.Events; len(events) != 1 || events[0].RecoveryPointID != newer.RecoveryPointID || !strings.Contains(events[0].Message, "vigil vault repair") {
		t.Errorf("events: %+v, want one RECOVERY_POINT_DAMAGED of %s", page.Events, newer.RecoveryPointID)
	}
	// The console shows it red, saying why.
	ctx := browser(t)
	base := signIn(t, ctx, e)
	var color, text string
	cell := `tr[data-recovery-point="` + newer.RecoveryPointID + `"] td.status`
	err := chromedp.Run(ctx, chromedp.Navigate(base+"/recovery-points"), chromedp.WaitVisible(cell, chromedp.ByQuery),
		chromedp.Text(cell, &text, chromedp.ByQuery),
		chromedp.Evaluate(`getComputedStyle(document.querySelector('`+cell+`')).color`, &color))
	if err != nil || !strings.Contains(text, "DAMAGED") || !strings.Contains(text, "missing from vault") || color != "rgb(180, 35, 24)" {
		t.Errorf("console shows the damaged recovery point as %q in %q (err %v), want DAMAGED and why, in red", text, color, err)
	}

	var test vigil.RestoreJob
	e.mustJSON(&test, "restore-test", "start", "--resource", "docs", "--wait")
	if test.RecoveryPointID != old.RecoveryPointID || test.ValidationStatus != vigil.ValidationSuccessful {
		t.Errorf("restore test after the rollback tested %s (%s), want the whole %s", test.RecoveryPointID, test.ValidationStatus, old.RecoveryPointID)
	}

	// Cut the pack holding big.bin's data in half.
	var packs []string
	filepath.Walk(filepath.Join(vaultDir, "p"), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			packs = append(packs, p)
		}
		return nil
	})
	slices.SortFunc(packs, func(a, b string) int { return int(fileSize(a) - fileSize(b)) })
	if len(packs) == 0 {
		t.Fatal("found no pack files in the vault")
	}
	pack := packs[len(packs)-1]
	os.Chmod(pack, 0o600)
	if err := os.Truncate(pack, fileSize(pack)/2); err != nil {
		t.Fatal(err)
	}
	r = e.run("vault", "verify", "lab-vault")
	if r.code != 1 || !strings.Contains(r.stdout, "the index needs") || !strings.Contains(r.stdout, "no file contents read back") {
		t.Fatalf("verify of a cut pack, reading no data: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	out := e.mustRun("vault", "repair", "lab-vault")
	if !strings.Contains(out, "recovery point "+old.RecoveryPointID+" of docs: ") || !strings.Contains(out, "/big.bin") {
		t.Errorf("repair: %s", out)
	}
	e.mustJSON(&rp, "recovery-points", "show", old.RecoveryPointID)
	if rp.Status != vigil.RecoveryPointDamaged || !strings.Contains(rp.StatusMessage, "/big.bin") {
		t.Errorf("recovery point after repair: %s %q, want DAMAGED naming what it lost", rp.Status, rp.StatusMessage)
	}
	// Named, the damaged point still restores what is left of it.
	var rj vigil.RestoreJob
	target := e.path("what-is-left")
	e.mustJSON(&rj, "restore", "start", "--recovery-point", old.RecoveryPointID, "--set", "target_path="+target, "--wait")
	if rj.Status != vigil.RestoreCompleted {
		t.Errorf("restore of the damaged point: %s %q", rj.Status, rj.StatusMessage)
	}
	// readme.txt shares the pack; unless the cut reached it too, it is left.
	if _, err := os.Stat(filepath.Join(target, "readme.txt")); strings.Contains(out, ": 1 damaged entry removed") && err != nil {
		t.Errorf("readme.txt was not damaged, yet it is not restored: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "big.bin")); !os.IsNotExist(err) {
		t.Errorf("the damaged big.bin came back from the repaired point: %v", err)
	}

	again := e.backup("docs")
	e.mustJSON(&test, "restore-test", "start", "--resource", "docs", "--wait")
	if test.RecoveryPointID != again.RecoveryPointID || test.ValidationStatus != vigil.ValidationSuccessful {
		t.Errorf("restore test of the backup after repair: %s %s %q", test.RecoveryPointID, test.ValidationStatus, test.ValidationMessage)
	}
	e.mustRun("vault", "verify", "lab-vault", "--read-data-percent", "100")
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// With repair_on_damage, a verify that finds damage repairs the vault at
// once: the next backup of the unchanged source passes its restore test.
func TestVaultRepairOnDamage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "password_env: VIGIL_VAULT_PASSWORD\n", "password_env: VIGIL_VAULT_PASSWORD\n    repair_on_damage: true\n", 1))
	if err := os.WriteFile(e.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(12, 9))
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(rng.UintN(256))
	}
	os.WriteFile(e.path("docs/big.bin"), big, 0o644)
	e.serve()

	first := e.backup("docs")
	var packs []string
	filepath.Walk(e.path("vaults/lab-vault/p"), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			packs = append(packs, p)
		}
		return nil
	})
	if len(packs) == 0 {
		t.Fatal("found no pack files in the vault")
	}
	for _, p := range packs {
		os.Remove(p)
	}
	r := e.run("vault", "verify", "lab-vault")
	if r.code != 1 || !strings.Contains(r.stderr, "repaired at once (repair_on_damage)") {
		t.Fatalf("verify with repair_on_damage: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var rp vigil.RecoveryPoint
	e.mustJSON(&rp, "recovery-points", "show", first.RecoveryPointID)
	if rp.Status != vigil.RecoveryPointDamaged || !strings.Contains(rp.StatusMessage, "repair") {
		t.Errorf("recovery point after the repair: %s %q", rp.Status, rp.StatusMessage)
	}
	again := e.backup("docs")
	var test vigil.RestoreJob
	e.mustJSON(&test, "restore-test", "start", "--resource", "docs", "--wait")
	if test.RecoveryPointID != again.RecoveryPointID || test.ValidationStatus != vigil.ValidationSuccessful {
		t.Errorf("restore test of the backup after the repair: %s %s %q", test.RecoveryPointID, test.ValidationStatus, test.ValidationMessage)
	}
}
