package testsvc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// DamagePack inverts every 16th byte of the pack id in a vault's folder
// storage, as a failing disk would, for the tests that must find it: every
// content stored in it is then damaged, however small.
// kopia shards a blob's name into folders: pack pbf40e3… is the file
// p/bf4/0e3/….f.
func DamagePack(t testing.TB, storage, id string) {
	t.Helper()
	var path string
	err := filepath.Walk(storage, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(storage, p)
		if !info.IsDir() && strings.ReplaceAll(strings.TrimSuffix(rel, ".f"), string(filepath.Separator), "") == id {
			path = p
		}
		return nil
	})
	if err != nil || path == "" {
		t.Fatalf("pack %s not found in %s: %v", id, storage, err)
	}
	DamageFile(t, path)
}

// DataPacks lists the ids of the data packs (p…) in a vault's folder
// storage.
func DataPacks(t testing.TB, storage string) []string {
	t.Helper()
	var ids []string
	err := filepath.Walk(filepath.Join(storage, "p"), func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() && strings.HasSuffix(p, ".f") {
			rel, _ := filepath.Rel(storage, p)
			ids = append(ids, strings.ReplaceAll(strings.TrimSuffix(rel, ".f"), string(filepath.Separator), ""))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list the data packs of %s: %v", storage, err)
	}
	return ids
}
