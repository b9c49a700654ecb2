package directory_test

import (
	"fmt"
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

// A restore test's checksum check reads the vault once: its restore's
// read, whose digests the check compares the restored files with. A file
// changed after the restore wrote it, even keeping its length and time,
// fails the check, named; so does a file removed.
func TestChecksumReadsTheVaultOnce(t *testing.T) {
	src := resourcetest.Folder(t, map[string]string{"index.html": "<h1>docs</h1>", "a/b/notes.txt": "restored intact", "a/other.txt": "kept"})
	cfg := &config.Config{Resources: []config.Resource{{Name: "docs", Type: "directory", Path: src,
		Validate: []config.Validator{{Checksum: &config.ChecksumCheck{SamplePercent: 100}}}}}}
	lab := resourcetest.NewLab(t, cfg, directory.Type{})
	rp := lab.Backup("docs")

	job := lab.Test(rp, "")
	if job.ValidationStatus != vigil.ValidationSuccessful {
		t.Fatalf("restore test: %s", resourcetest.Describe(job))
	}
	if job.WrittenBytes != rp.SizeBytes || job.VaultReadBytes != rp.SizeBytes {
		t.Errorf("read %d bytes from the vault and wrote %d; want the recovery point's %d, once each", job.VaultReadBytes, job.WrittenBytes, rp.SizeBytes)
	}
	logs, err := lab.Catalog.Logs(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, l := range logs {
		text.WriteString(l.Message + "\n")
	}
	for _, want := range []string{
		"content of 3 files (32 bytes) compared: read back from the copy and checked against the digests taken as the restore wrote them, with nothing read from the vault again",
		fmt.Sprintf("read %d bytes of file content from vault %q, wrote %d bytes into the copy", rp.SizeBytes, resourcetest.VaultName, rp.SizeBytes),
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("job log lacks %q:\n%s", want, text.String())
		}
	}

	for _, c := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"same length and time", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "a/b/notes.txt")
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("RESTORED INTACT"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, "content differs: a/b/notes.txt (changed since the restore wrote it)"},
		{"removed", func(t *testing.T, dir string) {
			d := filepath.Join(dir, "a")
			fi, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(d, "other.txt")); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(d, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, "missing: a/other.txt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lab.Hook(&resourcetest.Hooks{Check: func(cp resource.Copy) error { c.damage(t, cp.Location()); return nil }})
			defer lab.Hook(nil)
			job := lab.Test(rp, "")
			want := "check 1 (checksum): the restored files differ from recovery point " + rp.ID + ": " + c.want
			if job.ValidationStatus != vigil.ValidationFailed || job.ValidationMessage != want {
				t.Errorf("damaged copy: %s; want FAILED %q", resourcetest.Describe(job), want)
			}
		})
	}
}
