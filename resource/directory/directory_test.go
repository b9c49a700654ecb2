package directory_test

import (
	"os"
	"path/filepath"
	"strings"
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

// An exclude pattern kopia cannot read is a hard problem when vigil
// starts, naming the resource and the pattern, not a failure of every
// backup at night.
func TestCheckSourceRefusesBadPattern(t *testing.T) {
	src := resourcetest.Folder(t, map[string]string{"index.html": "<h1>docs</h1>"})
	good := directory.NewFolder(config.Resource{Name: "docs", Type: "directory", Path: src, Exclude: []string{"*.tmp", "cache/**"}}, resource.Env{})
	if ps := good.CheckSource(t.Context()); len(ps) != 0 {
		t.Errorf("good patterns: %v", ps)
	}
	bad := directory.NewFolder(config.Resource{Name: "docs", Type: "directory", Path: src, Exclude: []string{"*.tmp", "[abc"}}, resource.Env{})
	ps := bad.CheckSource(t.Context())
	if len(ps) != 1 || !ps[0].Hard || !strings.Contains(ps[0].Message, `resource "docs": exclude pattern "[abc": `) || !strings.Contains(ps[0].Message, "expected ']'") {
		t.Errorf("bad pattern: %+v, want one hard problem naming the resource and the pattern", ps)
	}
}
