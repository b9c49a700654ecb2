package cli

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/config"
)

func newReloadCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the running server read its config file again",
		Long: `Make the running vigil serve read its config file again, as SIGHUP does
(systemctl reload vigil). The new file is checked first, as serve checks it
at start: with an error in it, an unreadable secret, a missing tool or a
hard problem of the start-up checks, the reload is refused with the
problems and the running config stays.

Resources, backup plans, restore testing plans, notifications and the
console's sessions change without a restart; a job that runs keeps the
config it started with. The server, data_dir, catalog, node, workers, log,
lifecycle and vaults only change with a restart: a file that changes them
is refused, saying which.

Only the server reloads: on a shared catalog each vigil worker reads its
own file again on SIGHUP (systemctl reload 'vigil-worker@*').

` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			r, err := c.Reload(cmd.Context())
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(r)
			}
			if len(r.Changed) == 0 {
				fmt.Fprintf(g.stdout, "reloaded %s: nothing changed\n", r.Config)
			} else {
				fmt.Fprintf(g.stdout, "reloaded %s:\n", r.Config)
				for _, c := range r.Changed {
					fmt.Fprintf(g.stdout, "  %s\n", c)
				}
			}
			for _, p := range r.Warnings {
				fmt.Fprintf(g.stdout, "warning: %s: %s\n", p.Subject, printable(p.Message))
			}
			return nil
		},
	}
}

// staleServer explains a server's "unknown resource x" when this client's
// own config has x: the server runs a config older than the file, which
// was changed since it started or last reloaded. Any other error, or a
// client with no config to compare, is returned as it is.
func staleServer(err error, configPath string) error {
	var resp *api.ResponseError
	if !errors.As(err, &resp) || resp.Status != http.StatusNotFound || resp.Unknown == nil {
		return err
	}
	cfg, lerr := config.Load(config.Locate(configPath))
	if lerr != nil {
		return err
	}
	var names []string
	switch resp.Unknown.Kind {
	case "resource":
		names = cfg.ResourceNames()
	case "vault":
		names = cfg.VaultNames()
	case "plan", "backup plan", "restore testing plan":
		names = cfg.PlanNames()
	}
	if !slices.Contains(names, resp.Unknown.Name) {
		return err
	}
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf("the server's config does not have %s %q, which %s has: reload it (vigil reload) to take on the file's changes (server: %s)",
		resp.Unknown.Kind, resp.Unknown.Name, cfg.Path, resp.Message)}
}
