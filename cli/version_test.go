package cli

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	checkout := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/vigil-backup/vigil", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "6ad573059acf765e0b85c725671dbc79f4e1a431"},
			{Key: "vcs.time", Value: "2026-12-01T14:20:00Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	released := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/vigil-backup/vigil", Version: "v1.2.3"}}
	for _, tt := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"from a checkout", checkout, `vigil (devel)
commit   6ad573059acf765e0b85c725671dbc79f4e1a431
time     2026-12-01T14:20:00Z
modified true (built with changes that are not committed)
go       go1.26.8 linux/amd64
`},
		{"go install @version", released, "vigil v1.2.3\ngo       go1.26.8 linux/amd64\n"},
	} {
		if got := formatVersion(tt.info, "linux/amd64"); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
}

// TestVersionCommands: 'vigil version' and 'vigil --version' print the
// same lines, read from the binary's build information.
func TestVersionCommands(t *testing.T) {
	var outs []string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("vigil %s: exit %d: %s", args[0], code, stderr.String())
		}
		outs = append(outs, stdout.String())
	}
	if outs[0] != outs[1] || !strings.HasPrefix(outs[0], "vigil ") || !strings.Contains(outs[0], "\ngo       go1.") {
		t.Errorf("vigil version printed:\n%s\nvigil --version printed:\n%s", outs[0], outs[1])
	}
}
