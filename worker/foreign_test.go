package worker

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

// TestSyncForeignVault lists a restic repository's snapshots, made by the
// restic CLI, as recovery points: only those of the resource's path with
// its tags, each once however many syncs run at once, with restic's
// host, tags, times and sizes; what matches no resource is counted by
// path; a snapshot restic forgets becomes EXPIRED with an event, and the
// repository is as it was.
func TestSyncForeignVault(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin := testsvc.Restic(t)
	repo := filepath.Join(dir, "repo")
	restic := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--repo", repo, "--no-cache"}, args...)...)
		cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=theirs")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("restic %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	web, home := filepath.Join(dir, "srv", "web"), filepath.Join(dir, "home")
	for _, d := range []string{web, home} {
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "sub", "f.txt"), []byte("data of "+d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	restic("init")
	restic("backup", "--tag", "daily", web)
	restic("backup", web) // untagged: not the resource's
	restic("backup", "--tag", "daily", home)
	restic("backup", "--tag", "daily", web)
	restic("backup", "--tag", "daily", web, home) // two paths: not testable, and no hold-up

	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)},
		Vaults:         []config.Vault{{Name: "restic-prod", Kind: config.KindRestic, Repository: repo, Password: "theirs"}},
		Resources:      []config.Resource{{Name: "web", Type: "directory", Source: &config.ForeignSource{Vault: "restic-prod", Path: web, Tags: []string{"daily"}}}},
		RestoreTesting: []config.RestoreTestPlan{{Name: "each-new", OnBackupCompleted: true, Resources: []string{"web"}}}}
	e, cat := newTestEngine(t, cfg)
	before := testsvc.Fingerprint(t, repo)

	// two syncs at once list each snapshot once
	var wg sync.WaitGroup
	results := make([]vigil.VaultSync, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = e.SyncVault(ctx, "restic-prod") })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if added := results[0].Added + results[1].Added; added != 2 || results[0].Snapshots != 5 {
		t.Fatalf("two syncs at once: %+v, want 5 snapshots and 2 points added in all", results)
	}
	if s := results[0].Skipped; len(s) != 1 || !strings.Contains(s[0], "backs up 2 paths") {
		t.Errorf("skipped = %q, want the snapshot of two paths, saying so", s)
	}
	want := []string{"1 of " + home, "1 of " + web}
	if got := results[0].Unmatched; !slices.Equal(got, want) {
		t.Errorf("unmatched = %v, want %v", got, want)
	}
	points, err := cat.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{Resource: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 2 {
		t.Fatalf("points: %+v, want 2", points)
	}
	host, _ := os.Hostname()
	for _, rp := range points {
		f := rp.Foreign
		if f == nil || f.Tool != "restic" || f.Host != host || f.Path != web || !slices.Equal(f.Tags, []string{"daily"}) || rp.Status != vigil.RecoveryPointAvailable ||
			rp.Files != 1 || rp.SizeBytes != int64(len("data of "+web)) || rp.CompletedAt == nil || rp.CreatedAt.IsZero() || rp.BackupJobID != "" {
			t.Errorf("recovery point %+v, foreign %+v", rp, f)
		}
		// restic restores id:folder, the folder inside the snapshot
		if id, root, _ := strings.Cut(rp.SnapshotID, ":"); id != f.ID || root != web {
			t.Errorf("snapshot id %q, want %s:%s", rp.SnapshotID, f.ID, web)
		}
		if rp.ID != foreignPointID("restic-prod", "web", f.ID) {
			t.Errorf("point id %s is not the one its snapshot gives", rp.ID)
		}
	}

	// the newest new point is tested, as a new backup's would be
	tests, err := cat.ListRestoreJobs(ctx, catalog.RestoreJobFilter{RestoreTest: true})
	if err != nil || len(tests) != 1 || tests[0].RecoveryPointID != points[0].ID || tests[0].Plan != "each-new" {
		t.Errorf("restore tests queued by the sync: %+v, %v; want one of the newest point %s", tests, err, points[0].ID)
	}

	// a later sync adds nothing; after restic forgets one, it is EXPIRED
	res, err := e.SyncVault(ctx, "restic-prod")
	if err != nil || res.Added != 0 || res.Gone != 0 {
		t.Fatalf("second sync: %+v, %v; want nothing new", res, err)
	}
	testsvc.SameFingerprint(t, before, testsvc.Fingerprint(t, repo))
	restic("forget", points[0].Foreign.ID)
	res, err = e.SyncVault(ctx, "restic-prod")
	if err != nil || res.Gone != 1 || res.Snapshots != 4 {
		t.Fatalf("sync after forget: %+v, %v; want 1 gone of 4", res, err)
	}
	gone, err := cat.GetRecoveryPoint(ctx, points[0].ID)
	if err != nil || gone.Status != vigil.RecoveryPointExpired || !strings.Contains(gone.StatusMessage, "vigil deleted nothing") {
		t.Errorf("forgotten point: %+v, %v", gone, err)
	}
	page, err := e.ListEvents(ctx, vigil.EventQuery{Types: []vigil.EventType{vigil.EventRecoveryPointExpired}})
	if err != nil || len(page.Events) != 1 || page.Events[0].RecoveryPointID != points[0].ID {
		t.Errorf("RECOVERY_POINT_EXPIRED events: %+v, %v", page.Events, err)
	}

	// a name no vault has is refused, naming it
	if _, err := e.SyncVault(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("sync of an unknown vault: %v", err)
	}
}

// TestCheckConfigForeignVaults: `vigil config check` opens a foreign vault
// as the server would and creates none: a kopia vault whose folder holds
// no repository and a restic vault with none are errors that say so, and
// the folders stay as they were.
func TestCheckConfigForeignVaults(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{DataDir: filepath.Join(dir, "data"), Vaults: []config.Vault{
		{Name: "kopia-prod", Kind: config.KindKopia, Storage: filepath.Join(dir, "missing"), Password: "p"},
		{Name: "kopia-empty", Kind: config.KindKopia, Storage: empty, Password: "p"},
		{Name: "restic-prod", Kind: config.KindRestic, Repository: empty, ResticPath: testsvc.Restic(t), Password: "p"},
	}}
	problems := CheckConfig(context.Background(), cfg)
	for _, want := range []struct{ subject, text string }{
		{`vault "kopia-prod"`, "never creates one it only reads"},
		{`vault "kopia-empty"`, "never creates one it only reads"},
		{`vault "restic-prod"`, "no restic repository"},
	} {
		found := false
		for _, p := range problems {
			found = found || p.Subject == want.subject && strings.Contains(p.Message, want.text)
		}
		if !found {
			t.Errorf("no problem of %s saying %q in %+v", want.subject, want.text, problems)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("the missing kopia folder was created: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("the empty folder got %d entries", len(entries))
	}
}
