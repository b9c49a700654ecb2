package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployCommandLines: every vigil command line in deploy/ (the systemd
// units' ExecStart, the Dockerfile's ENTRYPOINT and CMD) names a command
// and flags this vigil has, with %-specifiers filled in as systemd would.
func TestDeployCommandLines(t *testing.T) {
	files, err := filepath.Glob("../deploy/*")
	if err != nil {
		t.Fatal(err)
	}
	var lines int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			args := vigilArgs(line)
			if len(args) == 0 {
				continue // an ENTRYPOINT of the binary alone
			}
			lines++
			args = strings.Fields(strings.NewReplacer("%H", "host", "%i", "1").Replace(strings.Join(args, " ")))
			root := NewRootCommand(io.Discard, io.Discard)
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == root {
				t.Errorf("%s: %q names no vigil command: %v", filepath.Base(f), line, err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: %q: %v", filepath.Base(f), line, err)
			}
		}
	}
	if lines < 3 {
		t.Fatalf("found %d vigil command lines in deploy/, want the three units' at least", lines)
	}
}

// vigilArgs returns the arguments after the vigil binary in a unit's
// ExecStart line or a Dockerfile's exec-form ENTRYPOINT/CMD, or nil.
func vigilArgs(line string) []string {
	line = strings.TrimSpace(line)
	if rest, ok := strings.CutPrefix(line, "ExecStart="); ok {
		f := strings.Fields(rest)
		if len(f) > 0 && filepath.Base(f[0]) == "vigil" {
			return append([]string{}, f[1:]...)
		}
		return nil
	}
	for _, kw := range []string{"ENTRYPOINT ", "CMD "} {
		if rest, ok := strings.CutPrefix(line, kw); ok && strings.HasPrefix(rest, "[") {
			var out []string
			for _, p := range strings.Split(strings.Trim(rest, "[]"), ",") {
				out = append(out, strings.Trim(strings.TrimSpace(p), `"`))
			}
			if len(out) > 0 && filepath.Base(out[0]) == "vigil" {
				return out[1:]
			}
			if kw == "CMD " {
				return out // the arguments to an ENTRYPOINT of vigil
			}
		}
	}
	return nil
}
