package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

// foreignRepos are a restic and a kopia repository of the same web app,
// each made by that tool's own CLI, with two snapshots: the first whole,
// the second taken after the app lost its critical file.
type foreignRepos struct {
	t                  *testing.T
	app                string // the folder both tools back up
	restic, kopia      string // the repositories
	resticBin, kopiaBn string
	kopiaHome          string
	password           string
}

func (f *foreignRepos) resticCmd(args ...string) string {
	f.t.Helper()
	cmd := exec.Command(f.resticBin, append([]string{"--repo", f.restic, "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+f.password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (f *foreignRepos) kopiaCmd(args ...string) string {
	f.t.Helper()
	cmd := exec.Command(f.kopiaBn, append([]string{"--config-file", filepath.Join(f.kopiaHome, "repository.config"), "--log-dir", filepath.Join(f.kopiaHome, "logs")}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+f.kopiaHome, "KOPIA_CHECK_FOR_UPDATES=false", "KOPIA_PASSWORD="+f.password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("kopia %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// snapshot backs the app up with both tools.
func (f *foreignRepos) snapshot() {
	f.t.Helper()
	f.resticCmd("backup", "--tag", "daily", f.app)
	f.kopiaCmd("snapshot", "create", f.app)
}

func newForeignRepos(t *testing.T, dir string) *foreignRepos {
	t.Helper()
	f := &foreignRepos{t: t, app: filepath.Join(dir, "webapp"), restic: filepath.Join(dir, "restic-repo"), kopia: filepath.Join(dir, "kopia-repo"),
		resticBin: testsvc.Restic(t), kopiaBn: testsvc.Kopia(t), kopiaHome: t.TempDir(), password: "their own password " + filepath.Base(dir)}
	big := make([]byte, 3<<20)
	rand.Read(big)
	for name, body := range map[string][]byte{
		"index.html":   []byte("<h1>Welcome</h1>\n"),
		"app.conf":     []byte("database = /srv/webapp/data\n"),
		"data/big.bin": big,
	} {
		p := filepath.Join(f.app, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.resticCmd("init")
	f.kopiaCmd("repository", "create", "filesystem", "--path", f.kopia)
	f.snapshot()
	// the app then loses its critical file, and both tools back it up so
	if err := os.Remove(filepath.Join(f.app, "app.conf")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // distinct snapshot times
	f.snapshot()
	return f
}

// TestForeignVaultsEndToEnd restore-tests repositories that restic and
// kopia wrote, through vigil serve as a user configures it: their
// snapshots are synced as recovery points (by the schedule and by `vigil
// vault sync`); a scheduled plan tests the latest of each, which lost the
// app's critical file, and FAILS saying so; the first snapshot passes its
// HTTP and checksum checks; a snapshot restic forgets becomes EXPIRED;
// after packs of both repositories are damaged, the test FAILS naming the
// file. Every file of both repositories is as it was before vigil read
// them: vigil wrote nothing, and left no lock.
func TestForeignVaultsEndToEnd(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	f := newForeignRepos(t, e.dir)
	e.env = append(e.env, "THEIR_PASSWORD="+f.password)
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	vaults := fmt.Sprintf(`  - name: restic-prod
    kind: restic
    repository: %q
    password_env: THEIR_PASSWORD
    sync: {schedule: "@every 1s"}
  - name: kopia-prod
    kind: kopia
    storage: %q
    password_env: THEIR_PASSWORD
    sync: {schedule: "@every 1s"}
resources:
`, f.restic, f.kopia)
	resources := fmt.Sprintf(`  - name: web-restic
    type: app
    source: {vault: restic-prod, path: %[1]q, tags: [daily]}
    run: %[2]s
    validate:
      - http: {path: /app.conf, expect_status: 200}
      - checksum: {}
  - name: web-kopia
    type: app
    source: {vault: kopia-prod, path: %[1]q}
    run: %[2]s
    validate:
      - http: {path: /app.conf, expect_status: 200}
      - checksum: {}
restore_testing:
  - name: foreign-latest
    schedule: "@every 5s"
    resources: [web-restic, web-kopia]
    recovery_point: LATEST_WITHIN_WINDOW
    validation_window: 3s
`, f.app, pythonApp)
	text := strings.Replace(string(cfg), "resources:\n", vaults, 1) + resources
	if err := os.WriteFile(e.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	resticBefore, kopiaBefore := testsvc.Fingerprint(t, f.restic), testsvc.Fingerprint(t, f.kopia)

	e.serve()
	out := e.mustRun("vault", "sync", "restic-prod")
	if !strings.Contains(out, "vault restic-prod: 2 snapshots") {
		t.Errorf("vault sync:\n%s", out)
	}
	points := map[string][]vigil.RecoveryPoint{}
	for _, r := range []string{"web-restic", "web-kopia"} {
		var list []vigil.RecoveryPoint
		e.mustJSON(&list, "recovery-points", "list", "--resource", r)
		if len(list) != 2 {
			e.mustRun("vault", "sync", map[string]string{"web-restic": "restic-prod", "web-kopia": "kopia-prod"}[r])
			e.mustJSON(&list, "recovery-points", "list", "--resource", r)
		}
		if len(list) != 2 {
			t.Fatalf("%s has recovery points %+v, want its 2 snapshots", r, list)
		}
		for _, rp := range list {
			if rp.Status != vigil.RecoveryPointAvailable || rp.Foreign == nil || rp.Foreign.Path != f.app || rp.Foreign.Host == "" || rp.Files == 0 || rp.SizeBytes == 0 {
				t.Errorf("%s: recovery point %+v (foreign %+v), want AVAILABLE with the snapshot's host, path, files and size", r, rp, rp.Foreign)
			}
		}
		points[r] = list // newest first
	}
	if tags := points["web-restic"][0].Foreign.Tags; !slices.Contains(tags, "daily") {
		t.Errorf("restic snapshot's tags: %v, want daily", tags)
	}
	newest := points["web-restic"][0]
	if show := e.mustRun("recovery-points", "show", newest.ID); !strings.Contains(show, "restic snapshot "+newest.Foreign.ID+" of "+f.app+" on host ") || !strings.Contains(show, "tags daily") {
		t.Errorf("recovery-points show says nothing of the restic snapshot:\n%s", show)
	}

	// the scheduled plan tests the latest of each, which lost app.conf
	for r, list := range points {
		test := e.waitTest(e.testOf(list[0].ID).ID)
		if test.CreatedBy != "foreign-latest" || test.ValidationStatus != vigil.ValidationFailed || !strings.Contains(test.ValidationMessage, "404") {
			t.Errorf("%s: scheduled test of the snapshot without app.conf: %+v\nlog:\n%s", r, test, e.logText(test.ID))
		}
		if test.RestoreSeconds <= 0 || test.RecoveryPointAgeSeconds <= 0 || test.TotalSeconds <= 0 {
			t.Errorf("%s: timings not measured: %+v", r, test)
		}
	}
	e.mustRun("plans", "pause", "foreign-latest")
	t.Logf("%s: scheduled tests judged", time.Now().Format(time.TimeOnly))

	// the first snapshot of each passes, its files checked
	for r, list := range points {
		var test vigil.RestoreJob
		e.mustJSON(&test, "restore-test", "start", "--resource", r, "--recovery-point", list[1].ID, "--wait")
		log := e.logText(test.ID)
		if test.ValidationStatus != vigil.ValidationSuccessful || test.DeletionStatus != vigil.DeletionSuccessful {
			t.Fatalf("%s: test of the whole snapshot: %+v\nlog:\n%s", r, test, log)
		}
		if !strings.Contains(log, "checksum:") || !strings.Contains(log, "GET /app.conf") {
			t.Errorf("%s: the test's log does not show both checks:\n%s", r, log)
		}
	}
	var events vigil.EventPage
	e.mustJSON(&events, "events", "list", "--type", "RESTORE_TEST_STATUS")
	if len(events.Events) < 4 {
		t.Errorf("RESTORE_TEST_STATUS events: %d, want one per test (4 at least)", len(events.Events))
	}
	t.Logf("%s: whole snapshots passed", time.Now().Format(time.TimeOnly))

	// the console shows the foreign vaults and where a point came from
	ctx := browser(t)
	base := signIn(t, ctx, e)
	var vaultRow, madeBy, files string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/vaults"),
		chromedp.Text(`#vault-restic-prod`, &vaultRow, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("the console's vaults page: %v", err)
	}
	if !strings.Contains(vaultRow, "restic, read-only") || !strings.Contains(vaultRow, f.restic) {
		t.Errorf("the console's row of restic-prod: %q", vaultRow)
	}
	screenshot(t, ctx, "vaults-foreign")
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/recovery-points/"+newest.ID),
		chromedp.Text(`table`, &madeBy, chromedp.ByQuery),
		chromedp.Text(`#restic-files`, &files, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("the console's recovery point page: %v", err)
	}
	if !strings.Contains(madeBy, "restic, snapshot "+newest.Foreign.ID+" of "+f.app) || !strings.Contains(madeBy, "read-only to vigil") {
		t.Errorf("the console's recovery point page: %q", madeBy)
	}
	if !strings.Contains(files, "restic -r "+f.restic+" ls "+newest.SnapshotID) {
		t.Errorf("the console's files of a restic point: %q", files)
	}
	screenshot(t, ctx, "recovery-point-foreign")
	testsvc.SameFingerprint(t, resticBefore, testsvc.Fingerprint(t, f.restic))
	testsvc.SameFingerprint(t, kopiaBefore, testsvc.Fingerprint(t, f.kopia))

	// restic backs up again, then forgets it: the scheduled sync lists it, then expires it
	f.resticCmd("backup", "--tag", "daily", f.app)
	third := e.waitPoints("web-restic", 3)
	f.resticCmd("forget", third.Foreign.ID)
	e.waitStatus(third.ID, vigil.RecoveryPointExpired)
	e.mustJSON(&events, "events", "list", "--type", "RECOVERY_POINT_EXPIRED")
	if len(events.Events) == 0 || !strings.Contains(events.Events[0].Message, "vigil deleted nothing") {
		t.Errorf("RECOVERY_POINT_EXPIRED events: %+v", events.Events)
	}
	e.stop()
	t.Logf("%s: forgotten snapshot expired", time.Now().Format(time.TimeOnly))

	// damaged packs: the test fails naming the file
	for _, p := range testsvc.ResticDataPacks(t, f.resticBin, f.restic, f.password) {
		testsvc.DamageFile(t, p)
	}
	for _, p := range testsvc.DataPacks(t, f.kopia) {
		testsvc.DamagePack(t, f.kopia, p)
	}
	resticDamaged, kopiaDamaged := testsvc.Fingerprint(t, f.restic), testsvc.Fingerprint(t, f.kopia)
	e.serve()
	for r, list := range points {
		var test vigil.RestoreJob
		res := e.run("restore-test", "start", "--resource", r, "--recovery-point", list[1].ID, "--wait", "--json")
		if err := json.Unmarshal([]byte(res.stdout), &test); err != nil {
			t.Fatalf("%s: restore-test start: %v\n%s%s", r, err, res.stdout, res.stderr)
		}
		if test.Status != vigil.RestoreFailed || !slices.ContainsFunc([]string{"big.bin", "index.html", "app.conf"}, func(f string) bool { return strings.Contains(test.StatusMessage, f) }) {
			t.Errorf("%s: test of the damaged snapshot: %+v, want FAILED naming the damaged file\nlog:\n%s", r, test, e.logText(test.ID))
		}
	}
	e.stop()
	testsvc.SameFingerprint(t, resticDamaged, testsvc.Fingerprint(t, f.restic))
	testsvc.SameFingerprint(t, kopiaDamaged, testsvc.Fingerprint(t, f.kopia))
}

// waitPoints waits until resource has n recovery points and returns the
// newest.
func (e *testEnv) waitPoints(resource string, n int) vigil.RecoveryPoint {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list []vigil.RecoveryPoint
		e.mustJSON(&list, "recovery-points", "list", "--resource", resource)
		if len(list) >= n {
			return list[0]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s has %d recovery points, want %d\nserver log:\n%s", resource, len(list), n, e.serverLog)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStatus waits until recovery point id has status.
func (e *testEnv) waitStatus(id string, status vigil.RecoveryPointStatus) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rp vigil.RecoveryPoint
		e.mustJSON(&rp, "recovery-points", "show", id)
		if rp.Status == status {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("recovery point %s is %s, want %s\nserver log:\n%s", id, rp.Status, status, e.serverLog)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
