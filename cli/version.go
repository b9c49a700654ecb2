package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print vigil's version and the commit it was built from",
		Long: `Print the module version of this binary and, when it was built from a
git checkout, the commit, its time and whether the checkout had changes
that are not committed, as Go's build information records them.

Installed with 'go install …@v1.2.3', the version is v1.2.3. Built from a
git checkout, it is a pseudo-version naming the commit
(v0.0.0-20261201144022-9f8ea9d062dd, with +dirty when there are changes).
Built without version control information (from a git worktree, or with
-buildvcs=false), it is (devel). 'vigil --version' prints the same.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(g.stdout, versionText())
			return err
		},
	}
}

// versionText is what 'vigil version' and 'vigil --version' print, read
// from the running binary's build information.
func versionText() string {
	info, _ := debug.ReadBuildInfo()
	return formatVersion(info, runtime.GOOS+"/"+runtime.GOARCH)
}

// formatVersion writes the version lines from build information: the
// module version first, then the commit, its time and whether the
// checkout was modified, when the build recorded them, then the Go
// version and platform. A bug report that quotes it names exactly what
// ran.
func formatVersion(info *debug.BuildInfo, platform string) string {
	version, goVersion := "(unknown)", runtime.Version()
	settings := map[string]string{}
	if info != nil {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vigil %s\n", version)
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "commit   %s\n", rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "time     %s\n", t)
		}
		if settings["vcs.modified"] == "true" {
			fmt.Fprintf(&b, "modified true (built with changes that are not committed)\n")
		} else if settings["vcs.modified"] == "false" {
			fmt.Fprintf(&b, "modified false\n")
		}
	}
	fmt.Fprintf(&b, "go       %s %s\n", goVersion, platform)
	return b.String()
}
