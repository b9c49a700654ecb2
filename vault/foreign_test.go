package vault

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// foreignRepo makes a kopia repository the way a team using kopia would,
// with the stock kopia CLI and its own defaults (not vigil's), and one
// snapshot of a tree. It returns the repository's folder, the tree and the
// snapshot's id.
func foreignRepo(t *testing.T) (repo, source, id string) {
	t.Helper()

	dir := t.TempDir()
	repo = filepath.Join(dir, "repo")
	source = filepath.Join(dir, "srv", "webapp")
	makeTree(t, source)

	k := &kopiaCLI{t: t, binary: stockKopia(t), home: t.TempDir()}
	k.run("repository", "create", "filesystem", "--path", repo, "--cache-directory", filepath.Join(k.home, "cache"))
	k.run("snapshot", "create", source)

	var listed []cliSnapshot
	must(t, json.Unmarshal(k.run("snapshot", "list", "--all", "--json"), &listed))

	if len(listed) != 1 {
		t.Fatalf("the kopia CLI lists %d snapshots, want 1", len(listed))
	}

	k.run("repository", "disconnect")

	return repo, source, listed[0].ID
}

// TestReadOnlyVaultReadsAKopiaRepositoryWithoutWritingIt opens a
// repository that the kopia CLI made as a read-only vault, lists and
// restores its snapshot and verifies it in full, refuses everything that
// would write, and finds every file of the repository as it was.
func TestReadOnlyVaultReadsAKopiaRepositoryWithoutWritingIt(t *testing.T) {
	t.Parallel()

	repo, source, id := foreignRepo(t)
	before := storageFiles(t, repo)
	ctx := t.Context()

	v, err := Open(ctx, Config{Name: "kopia-prod", Storage: repo, Password: testPassword, CacheDir: t.TempDir(), ReadOnly: true})
	must(t, err)

	snaps, err := v.Snapshots(ctx)
	must(t, err)

	if len(snaps) != 1 || snaps[0].ID != id || snaps[0].Source != source || snaps[0].Files == 0 {
		t.Fatalf("snapshots %+v, want the CLI's %s of %s", snaps, id, source)
	}

	target := filepath.Join(t.TempDir(), "copy")
	res, err := v.Restore(ctx, id, target, nil)
	must(t, err)

	if res.Files != snaps[0].Files {
		t.Errorf("restored %d files, the snapshot has %d", res.Files, snaps[0].Files)
	}

	compareTreesExcept(t, source, target, false)

	vr, err := v.Verify(ctx, 100)
	must(t, err)

	if len(vr.Errors) != 0 {
		t.Errorf("verify of an undamaged repository: %+v", vr)
	}

	for what, err := range map[string]error{
		"back up into": func() error { _, err := v.Backup(ctx, source, BackupOptions{Resource: "webapp"}); return err }(),
		"maintain":     v.Maintain(ctx, true),
		"delete":       v.DeleteSnapshot(ctx, id),
		"repair":       func() error { _, err := v.Repair(ctx); return err }(),
		"back up a stream into": func() error {
			_, err := v.BackupStream(ctx, "dump.sql", strings.NewReader("x"), BackupOptions{Resource: "db"})
			return err
		}(),
	} {
		if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "kopia-prod") {
			t.Errorf("%s a read-only vault: %v, want ErrReadOnly naming the vault", what, err)
		}
	}

	must(t, v.Close(ctx))

	if err := sameFiles(before, storageFiles(t, repo)); err != nil {
		t.Fatalf("the repository changed: %v", err)
	}
}

// TestReadOnlyVaultFindsDamage flips bytes in every data pack of a
// repository the kopia CLI made: the restore fails, and a full verify
// counts the damage.
func TestReadOnlyVaultFindsDamage(t *testing.T) {
	t.Parallel()

	repo, _, id := foreignRepo(t)
	ctx := t.Context()

	v, err := Open(ctx, Config{Name: "kopia-prod", Storage: repo, Password: testPassword, CacheDir: t.TempDir(), ReadOnly: true})
	must(t, err)
	defer v.Close(ctx)

	packs := packBlobs(t, repo)
	if len(packs) == 0 {
		t.Fatal("no data packs in the repository")
	}

	for _, p := range packs {
		flipBytes(t, p, 0, 61)
	}

	_, err = v.Restore(ctx, id, filepath.Join(t.TempDir(), "copy"), nil)
	if err == nil {
		t.Fatal("restore passed with every data pack damaged")
	}

	if !strings.Contains(err.Error(), "invalid checksum at p") {
		t.Errorf("restore error does not name the damaged pack: %v", err)
	}

	vr, err := v.Verify(ctx, 100)
	if err == nil && len(vr.Errors) == 0 {
		t.Fatalf("verify found no damage: %+v", vr)
	}
}

// TestReadOnlyVaultIsNeverCreated: a read-only vault whose folder is
// missing or empty is refused, and nothing is made there.
func TestReadOnlyVaultIsNeverCreated(t *testing.T) {
	t.Parallel()

	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "nothing")

	for _, dir := range []string{empty, missing} {
		_, err := Open(t.Context(), Config{Name: "kopia-prod", Storage: dir, Password: testPassword, CacheDir: t.TempDir(), ReadOnly: true})
		if err == nil || !strings.Contains(err.Error(), "holds no kopia repository") {
			t.Errorf("open %s read-only: %v, want it refused", dir, err)
		}
	}

	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("%d entries made in the empty folder", len(entries))
	}

	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing folder was made: %v", err)
	}
}
