package worker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
)

// FuzzRestoreMetadata asks for restores with any metadata overrides, of a
// folder and of an SQLite database, through the engine that the API and
// the console call (never started: an accepted restore is queued, and
// nothing runs). No input may panic; a refusal is a *vigil.InvalidError
// (a 400 that says what to fix), never another error (a 500); and an
// accepted restore has only known keys, its job id in place of the
// placeholder, and a clean absolute target.
func FuzzRestoreMetadata(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	for _, d := range []string{"docs", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	cfg, err := config.Parse([]byte(`
data_dir: ` + filepath.Join(dir, "data") + `
node: fuzz
vaults:
  - {name: v, storage: ` + filepath.Join(dir, "vault") + `, password_env: UNUSED}
resources:
  - {name: docs, type: directory, path: ` + filepath.Join(dir, "docs") + `}
  - {name: app-db, type: sqlite, path: ` + filepath.Join(dir, "app.db") + `}
`))
	if err != nil {
		f.Fatal(err)
	}
	cat, err := catalog.Open(ctx, "", cfg.DataDir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cat.Close() })
	e, err := New(cfg, cat, Options{})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now().UTC()
	rps := []vigil.RecoveryPoint{
		{ID: "rp-docs", Vault: "v", Resource: "docs", ResourceType: "directory", Status: vigil.RecoveryPointAvailable, SnapshotID: "k1", CompletedAt: &now},
		{ID: "rp-db", Vault: "v", Resource: "app-db", ResourceType: "sqlite", Status: vigil.RecoveryPointAvailable, SnapshotID: "k2", CompletedAt: &now,
			Database: &vigil.DatabaseInfo{Engine: "sqlite", Tables: []vigil.TableRows{{Name: "orders", Rows: 1}}}},
	}
	for i := range rps {
		if err := cat.InsertRecoveryPoint(ctx, &rps[i]); err != nil {
			f.Fatal(err)
		}
	}

	taken := filepath.Join(dir, "docs") // not empty once a file is in it
	os.WriteFile(filepath.Join(taken, "readme"), []byte("x"), 0o644)
	for _, seed := range []struct {
		rp       uint8
		key, val string
		key2     string
		val2     string
	}{
		{0, resource.MetaTargetPath, filepath.Join(dir, "restored", resource.Placeholder), "", ""},
		{0, resource.MetaTargetPath, "relative/path", "", ""},
		{0, resource.MetaTargetPath, taken, "", ""},
		{0, resource.MetaTargetPath, "/tmp/../" + dir + "/./x\x00y", "", ""},
		{0, "TARGET_PATH", "/x", "", ""},
		{1, resource.MetaTargetPath, filepath.Join(dir, "copy-"+resource.Placeholder, "app.db"), "", ""},
		{1, resource.MetaTargetPath, "", resource.MetaTargetDatabase, "x"},
		{1, resource.MetaTargetPath, filepath.Join(dir, "app.db"), "", ""},
	} {
		f.Add(seed.rp, seed.key, seed.val, seed.key2, seed.val2)
	}
	f.Fuzz(func(t *testing.T, which uint8, key, val, key2, val2 string) {
		rp := rps[int(which)%len(rps)]
		meta := map[string]string{key: val}
		if key2 != "" {
			meta[key2] = val2
		}
		job, err := e.StartRestore(ctx, vigil.RestoreRequest{RecoveryPointID: rp.ID, Metadata: meta})
		if err != nil {
			var invalid *vigil.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("restore of %s with %q: %T %v; want a *vigil.InvalidError", rp.ID, meta, err, err)
			}
			return
		}
		res, err := e.Resource(rp.Resource, rp.ResourceType)
		if err != nil {
			t.Fatal(err)
		}
		defaults := res.RestoreDefaults(rp)
		for k, v := range job.Metadata {
			if _, ok := defaults[k]; !ok {
				t.Fatalf("restore of %s with %q accepted, with the unknown key %q", rp.ID, meta, k)
			}
			if strings.Contains(v, resource.Placeholder) {
				t.Fatalf("restore of %s with %q accepted, with %s = %q: the placeholder is left", rp.ID, meta, k, v)
			}
		}
		if target := job.Metadata[resource.MetaTargetPath]; !filepath.IsAbs(target) || filepath.Clean(target) != target {
			t.Fatalf("restore of %s with %q accepted, into %q: not a clean absolute path", rp.ID, meta, target)
		}
		if job.CreatedResourceLocation == "" {
			t.Fatalf("restore of %s with %q accepted, with no location", rp.ID, meta)
		}
	})
}
