package cli

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/internal/units"
)

func newRecoveryPointsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "recovery-points", Short: "List and inspect recovery points"}
	var vaultName, resource string
	list := &cobra.Command{
		Use:   "list [--vault V] [--resource R]",
		Short: "List recovery points, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if vaultName != "" {
				q.Set("vault", vaultName)
			}
			if resource != "" {
				q.Set("resource", resource)
			}
			rps, err := c.RecoveryPoints(cmd.Context(), q)
			if err != nil {
				return err
			}
			return g.printRecoveryPoints(rps, true)
		},
	}
	list.Flags().StringVar(&vaultName, "vault", "", "only this vault's")
	list.Flags().StringVar(&resource, "resource", "", "only this resource's")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one recovery point",
		Args:  exactArgs(1, "a recovery point id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			rp, err := c.RecoveryPoint(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := g.printRecoveryPoints([]vigil.RecoveryPoint{rp}, false); err != nil || g.JSON {
				return err
			}
			if rp.SourceRecoveryPointID != "" {
				fmt.Fprintf(g.stdout, "\ncopy of recovery point %s, made by copy job %s\n", printable(rp.SourceRecoveryPointID), printable(rp.CopyJobID))
			}
			if f := rp.Foreign; f != nil {
				tags := ""
				if len(f.Tags) > 0 {
					tags = ", tags " + printable(strings.Join(f.Tags, ", "))
				}
				fmt.Fprintf(g.stdout, "\n%s snapshot %s of %s on host %s%s, in foreign vault %s (read-only to vigil)\n",
					printable(f.Tool), printable(f.ID), printable(f.Path), printable(f.Host), tags, printable(rp.Vault))
			}
			if rp.Skipped != nil {
				if err := g.printSkipped(rp.Skipped); err != nil {
					return err
				}
			}
			if rp.Database == nil {
				return nil
			}
			return g.printDatabaseInfo(rp.Database)
		},
	}
	metadata := &cobra.Command{
		Use:   "metadata ID",
		Short: "Print, as JSON, the restore metadata: the keys 'restore start --set' accepts, with their defaults",
		Args:  exactArgs(1, "a recovery point id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			meta, err := c.RestoreMetadata(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.printJSON(meta)
		},
	}
	cmd.AddCommand(list, show, metadata, newRecoveryPointsCopyCommand(g))
	cmd.AddCommand(newRecoveryPointsFilesCommands(g)...)
	return cmd
}

func (g *globalOptions) printRecoveryPoints(rps []vigil.RecoveryPoint, list bool) error {
	if g.JSON {
		if !list {
			return g.printJSON(rps[0])
		}
		return g.printJSON(rps)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATUS\tRESOURCE\tTYPE\tVAULT\tSIZE\tFILES\tCREATED\tEXPIRES\tKEPT BY")
	for _, rp := range rps {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", printable(rp.ID), printable(string(rp.Status)), printable(rp.Resource), printable(rp.ResourceType), printable(rp.Vault),
			units.Bytes(rp.SizeBytes), rp.Files, formatTime(&rp.CreatedAt), formatTime(rp.ExpireAt), keptBy(rp))
	}
	return w.Flush()
}

// exactArgs is cobra.ExactArgs with a message that names what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(fmt.Errorf("%s needs %s (usage: %s)", cmd.CommandPath(), what, cmd.UseLine()))
		}
		return nil
	}
}

// printDatabaseInfo lists what a database recovery point's dump holds:
// what every restore test of it checks.
func (g *globalOptions) printDatabaseInfo(d *vigil.DatabaseInfo) error {
	fmt.Fprintf(g.stdout, "\n%s database %s, server %s: %d tables\n", printable(d.Engine), printable(d.Database), printable(d.Server), len(d.Tables))
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TABLE\tROWS")
	for _, t := range d.Tables {
		fmt.Fprintf(w, "%s\t%d\n", printable(t.Name), t.Rows)
	}
	return w.Flush()
}

// printSkipped lists what the backup left out of the recovery point: what a
// restore of it cannot bring back.
func (g *globalOptions) printSkipped(s *vigil.Skipped) error {
	fmt.Fprintf(g.stdout, "\nskipped %d entries that no snapshot can hold (named pipes, sockets, device files); a restore does not bring them back:\n", s.Total)
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PATH\tKIND")
	for _, e := range s.Entries {
		fmt.Fprintf(w, "%s\t%s\n", printablePath(e.Path), e.Kind)
	}
	if n := s.Total - int64(len(s.Entries)); n > 0 {
		fmt.Fprintf(w, "… and %d more\t\n", n)
	}
	return w.Flush()
}

// printablePath quotes a path holding characters a terminal would act on
// (an escape sequence in a file name must not recolour the screen).
func printablePath(p string) string {
	for _, r := range p {
		if !unicode.IsPrint(r) {
			return strconv.Quote(p)
		}
	}
	return p
}
