package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

func newMigrateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the catalog's schema up to date",
		Long: `Apply the catalog migrations this vigil has and the catalog lacks
(vigil's tables and River's), each set in order, and say what it did.
Running it again changes nothing.

On a PostgreSQL catalog, 'vigil serve' and 'vigil worker' refuse a schema
that is behind: after an upgrade, run this once, then restart serve and
the workers. Several nodes running it at once migrate one after the other.
On the SQLite catalog, serve migrates by itself at start.

It refuses a catalog written by a newer vigil.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Locate(g.ConfigPath))
			if err != nil {
				return usageError(err)
			}
			before, after, err := catalog.Migrate(cmd.Context(), cfg.Catalog, cfg.DataDir)
			if err != nil {
				return err
			}
			if before == after {
				fmt.Fprintf(g.stdout, "catalog is up to date: migration %d, River's tables at %d\n", after.Vigil, after.River)
				return nil
			}
			fmt.Fprintf(g.stdout, "catalog migrated from %d to %d, River's tables from %d to %d\n", before.Vigil, after.Vigil, before.River, after.River)
			return nil
		},
	}
}
