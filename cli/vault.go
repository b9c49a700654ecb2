package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/internal/units"
)

func newVaultCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "vault", Short: "List and verify vaults"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the configured vaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			vs, err := c.Vaults(cmd.Context())
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(vs)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tRECOVERY POINTS\tSTORAGE")
			for _, v := range vs {
				fmt.Fprintf(w, "%s\t%d\t%s\n", printable(v.Name), v.RecoveryPoints, printable(v.Storage))
			}
			return w.Flush()
		},
	}
	var percent float64
	verify := &cobra.Command{
		Use:   "verify NAME [--read-data-percent N]",
		Short: "Check that every recovery point in a vault is intact",
		Long: `Check that every recovery point in the vault can be read: every folder
listing and every piece of content it references is present. With
--read-data-percent N, N percent of the file contents are also read and
decrypted, which catches damaged data, not only missing data.

Exits 0 only if everything checked is intact.

` + exitCodesHelp,
		Args: exactArgs(1, "a vault name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.VerifyVault(cmd.Context(), args[0], api.VerifyRequest{ReadDataPercent: percent})
			if err != nil {
				return err
			}
			if g.JSON {
				if err := g.printJSON(res); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.stdout, "vault %s: %d recovery points, %d folders, %d files checked; %d files (%s) read back\n",
					printable(res.Vault), res.Snapshots, res.Dirs, res.Files, res.FilesRead, units.Bytes(res.BytesRead))
				for _, e := range res.Errors {
					fmt.Fprintf(g.stdout, "  damaged: %s\n", printable(e))
				}
			}
			if !res.OK {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("vault %s is damaged: %d problems found (listed above): back up the affected resources again, into another vault if its storage is failing", res.Vault, len(res.Errors))}
			}
			if !g.JSON {
				fmt.Fprintf(g.stdout, "vault %s is intact\n", printable(res.Vault))
			}
			return nil
		},
	}
	verify.Flags().Float64Var(&percent, "read-data-percent", 0, "also read and decrypt this percent of the file data (0-100)")
	cmd.AddCommand(list, verify)
	return cmd
}
