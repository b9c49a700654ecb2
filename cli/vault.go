package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/internal/units"
)

func newVaultCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "vault", Short: "List, verify and repair vaults"}
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
			fmt.Fprintln(w, "NAME\tKIND\tRECOVERY POINTS\tSTORAGE")
			for _, v := range vs {
				kind := v.Kind
				if kind == "" {
					kind = "vigil"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", printable(v.Name), kind, v.RecoveryPoints, printable(v.Storage))
			}
			return w.Flush()
		},
	}
	var percent float64
	verify := &cobra.Command{
		Use:   "verify NAME [--read-data-percent N]",
		Short: "Check a vault and its recovery points for damage",
		Long: `Check the vault without reading file data: every pack of data the
vault's index names must exist and be as long as the index needs, every
recovery point in the catalog must have its snapshot in the vault, and
every folder listing must be readable. With --read-data-percent N, N
percent of the file contents are also read back and decrypted, which
catches damaged data, not only missing data. The last line says what was
checked.

Recovery points found damaged or missing become DAMAGED: restore tests no
longer pick them, and an event says so. Repair the vault with
` + "`vigil vault repair NAME`" + `, then back the resources up again.

Exits 0 only if no damage was found in what was checked.

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
				for _, e := range res.Errors {
					fmt.Fprintf(g.stdout, "  damaged: %s\n", printable(e))
				}
				fmt.Fprintf(g.stdout, "vault %s: %s\n", printable(res.Vault), printable(res.Summary))
			}
			if !res.OK {
				advice := res.Advice
				if advice == "" {
					advice = fmt.Sprintf("run `vigil vault repair %s`, then back up the affected resources again (into another vault if its storage is failing)", printable(res.Vault))
				}
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("vault %s is damaged: %s found (listed above): %s", printable(res.Vault), units.Plural(len(res.Errors), "problem"), printable(advice))}
			}
			return nil
		},
	}
	verify.Flags().Float64Var(&percent, "read-data-percent", 0, "also read and decrypt this percent of the file data (0-100)")
	repair := &cobra.Command{
		Use:   "repair NAME",
		Short: "Remove damaged data from a vault, so the next backups store it again",
		Long: `Repair a vault that verify found damaged. Every content of data in the
vault is read back; those that are damaged or missing are dropped from the
vault's index, and every snapshot is rewritten without the files and
folders that used them. Packs whose index blob was lost have their own
index read back. The recovery points that lost files become DAMAGED,
saying what they lost; the rest of each can still be restored by naming it.

Then back up the affected resources again: with the damaged data no longer
in the index, the new backup stores it anew instead of reusing it.

Repair reads the whole vault, and holds back backups and restores into it
while it runs.

` + exitCodesHelp,
		Args: exactArgs(1, "a vault name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.RepairVault(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(res)
			}
			for _, s := range res.Snapshots {
				what := "snapshot " + s.OldID
				if s.RecoveryPoint != "" {
					what = "recovery point " + s.RecoveryPoint
				}
				if s.NewID == "" {
					fmt.Fprintf(g.stdout, "  %s of %s: deleted, its root folder was damaged\n", what, s.Resource)
					continue
				}
				fmt.Fprintf(g.stdout, "  %s of %s: %s removed, first %s\n", what, printable(s.Resource), entries(len(s.Removed)), printable(s.Removed[0]))
			}
			fmt.Fprintf(g.stdout, "vault %s: %s read back, %d of them damaged and dropped from the index, %s read back, %s changed\n",
				printable(res.Vault), units.Plural(int(res.Contents), "content"), res.DamagedContents,
				packIndexes(int(res.RecoveredPacks)), units.Plural(len(res.Snapshots), "recovery point"))
			if len(res.Snapshots) > 0 || res.DamagedContents > 0 {
				fmt.Fprintln(g.stdout, "back up the affected resources again: the next backup stores the damaged data anew")
			}
			return nil
		},
	}
	coverageCmd := &cobra.Command{
		Use:   "coverage NAME",
		Short: "Show how much of a vault was read back and checked lately",
		Long: `Show how much of the vault's stored data was read back and checked
within its rolling verification's window (the vault's verify:
read_back_within; 30 days without one): packs and bytes read back, the
share, what was never read, the oldest read, and the packs whose latest
read found damage. Reads by the rolling verification count, and so do
restore tests that restored a recovery point in full: each pack whose
contents all belong to it.

Exits 1 when a pack's latest read found damage.

` + exitCodesHelp,
		Args: exactArgs(1, "a vault name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			cov, err := c.VaultCoverage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.JSON {
				if err := g.printJSON(cov); err != nil {
					return err
				}
			} else {
				printCoverage(g, cov)
			}
			if len(cov.Damaged) > 0 {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("vault %s has %s whose last read found damage (listed above): run `vigil vault verify %s --read-data-percent 100` to see which recovery points it harms, then `vigil vault repair %s`",
					printable(cov.Vault), units.Plural(len(cov.Damaged), "pack"), printable(cov.Vault), printable(cov.Vault))}
			}
			return nil
		},
	}
	syncCmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "List a foreign vault's new snapshots as recovery points now",
		Long: `List the snapshots of a foreign vault (kind: restic or kopia, a repository
another tool writes) into the catalog now, instead of at its next sync:
schedule. Each snapshot whose path (and host and tags, where the
resource names them) matches a resource's source becomes a recovery
point of that resource, which restore testing plans then pick like any
other; one whose snapshot the other tool removed becomes EXPIRED.
Snapshots that no resource matches are counted by path, so that you can
add a resource for them. Nothing is written to the repository.

` + exitCodesHelp,
		Args: exactArgs(1, "a vault name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.SyncVault(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(res)
			}
			fmt.Fprintf(g.stdout, "vault %s: %s, %d new recovery points, %d gone\n",
				printable(res.Vault), units.Plural(res.Snapshots, "snapshot"), res.Added, res.Gone)
			for _, s := range res.Skipped {
				fmt.Fprintf(g.stdout, "  not listed: %s\n", printable(s))
			}
			for _, u := range res.Unmatched {
				fmt.Fprintf(g.stdout, "  no resource's source matches %s: add a resource with source: {vault: %s, path: ...} to restore-test them\n", printable(u), printable(res.Vault))
			}
			return nil
		},
	}
	cmd.AddCommand(list, verify, repair, coverageCmd, syncCmd)
	return cmd
}

// entries counts damaged entries: "1 damaged entry", "3 damaged entries".
func entries(n int) string {
	if n == 1 {
		return "1 damaged entry"
	}
	return fmt.Sprintf("%d damaged entries", n)
}

// packIndexes counts pack indexes read back: "1 lost pack index".
func packIndexes(n int) string {
	if n == 1 {
		return "1 lost pack index"
	}
	return fmt.Sprintf("%d lost pack indexes", n)
}

// printCoverage prints a vault's coverage in a few lines.
func printCoverage(g *globalOptions, cov vigil.VaultCoverage) {
	days := cov.WindowSeconds / 86400
	fmt.Fprintf(g.stdout, "vault %s: %s of %s read back and checked in the last %g days (%.1f%%), %s of %s\n",
		printable(cov.Vault), units.Bytes(cov.BytesRead), units.Bytes(cov.Bytes), days, cov.Percent,
		units.Plural(cov.PacksRead, "pack"), units.Plural(cov.Packs, "pack"))
	if cov.UnverifiedBytes > 0 {
		fmt.Fprintf(g.stdout, "  not read back in that time: %s", units.Bytes(cov.UnverifiedBytes))
		if cov.NeverRead > 0 {
			fmt.Fprintf(g.stdout, " (%s never read)", units.Plural(cov.NeverRead, "pack"))
		}
		fmt.Fprintln(g.stdout)
	}
	if cov.OldestReadAt != nil {
		fmt.Fprintf(g.stdout, "  oldest read: %s\n", cov.OldestReadAt.UTC().Format(time.RFC3339))
	}
	for _, d := range cov.Damaged {
		fmt.Fprintf(g.stdout, "  damaged: %s\n", printable(d))
	}
}
