package app_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/app"
	"github.com/vigil-backup/vigil/resource/resourcetest"
)

func TestConformance(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("this test needs python3 to run the app (python3 -m http.server): %v", err)
	}
	src := resourcetest.Folder(t, map[string]string{"index.html": "<h1>shop is open</h1>", "static/shop.css": "h1 { color: teal }"})
	resourcetest.Conformance(t, resourcetest.Case{
		Type: app.Type{},
		Resource: config.Resource{Name: "shop", Type: "app", Path: src,
			Run: []string{"python3", "-m", "http.server", "{{.Port}}", "--bind", "{{.Host}}", "--directory", "{{.Dir}}"},
			// `- http: {expect_body: "shop is open"}` and `- checksum: {}`,
			// as the configuration's defaults leave them.
			Validate: []config.Validator{
				{HTTP: &config.HTTPCheck{Method: "GET", Path: "/", ExpectStatus: 200, ExpectBody: "shop is open",
					Timeout: config.Duration(config.DefaultHTTPTimeout)}},
				{Checksum: &config.ChecksumCheck{SamplePercent: 100}},
			}},
		// A file the http check never asks for: only the checksum check,
		// which runs before the app starts, can catch the change.
		Damage: func(t testing.TB, cp resource.Copy, _ vigil.RestoreJob) {
			if err := os.WriteFile(filepath.Join(cp.Location(), "static/shop.css"), []byte("changed after restore"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	})
}
