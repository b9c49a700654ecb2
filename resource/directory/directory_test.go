package directory_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/directory"
	"github.com/vigil-backup/vigil/resource/resourcetest"
)

func TestConformance(t *testing.T) {
	src := resourcetest.Folder(t, map[string]string{"index.html": "<h1>docs</h1>", "a/b/notes.txt": "restored intact"})
	resourcetest.Conformance(t, resourcetest.Case{
		Type: directory.Type{},
		Resource: config.Resource{Name: "docs", Type: "directory", Path: src,
			Validate: []config.Validator{{Checksum: &config.ChecksumCheck{SamplePercent: 100}}}},
		Damage: func(t testing.TB, cp resource.Copy, _ vigil.RestoreJob) {
			if err := os.WriteFile(filepath.Join(cp.Location(), "a/b/notes.txt"), []byte("changed after restore"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	})
}
