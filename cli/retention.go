package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/internal/units"
)

// newRetentionCommand is `vigil retention preview --plan P`: what a
// plan's retention rules keep, by which rule, and what the lifecycle job
// removes at its next pass, before it does.
func newRetentionCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "retention", Short: "Preview what backup plans' retention rules keep and remove"}
	var plan string
	preview := &cobra.Command{
		Use:   "preview --plan P",
		Short: "List the recovery points plan P's retention rules keep (with the rules keeping each) and those the next lifecycle pass removes",
		Long: `List the recovery points plan P's retention rules keep, with the rules keeping
each, and those the lifecycle job removes at its next pass (every
lifecycle.check_interval). Nothing is removed by this command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if plan == "" {
				return usageError(fmt.Errorf("%s needs --plan: the backup plan whose rules to preview", cmd.CommandPath()))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.RetentionPreview(cmd.Context(), plan)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(p)
			}
			return g.printRetentionPreview(p)
		},
	}
	preview.Flags().StringVar(&plan, "plan", "", "the backup plan")
	cmd.AddCommand(preview)
	return cmd
}

func (g *globalOptions) printRetentionPreview(p vigil.RetentionPreview) error {
	fmt.Fprintf(g.stdout, "backup plan %s: %s (days counted in %s)\n", printable(p.Plan), p.Rules, printable(p.Timezone))
	table := func(rps []vigil.RecoveryPoint, reason func(vigil.RecoveryPoint) string, head string) error {
		w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "ID\tSTATUS\tRESOURCE\tVAULT\tSIZE\tCREATED\t%s\n", head)
		for _, rp := range rps {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(rp.ID), printable(string(rp.Status)), printable(rp.Resource), printable(rp.Vault),
				units.Bytes(rp.SizeBytes), formatTime(&rp.CreatedAt), reason(rp))
		}
		return w.Flush()
	}
	fmt.Fprintf(g.stdout, "\nkeep %d recovery points:\n", len(p.Keep))
	if err := table(p.Keep, func(rp vigil.RecoveryPoint) string { return keptBy(rp) }, "KEPT BY"); err != nil {
		return err
	}
	if len(p.Remove) == 0 {
		fmt.Fprintln(g.stdout, "\nremove nothing: every recovery point is kept by a rule")
		return nil
	}
	fmt.Fprintf(g.stdout, "\nremove %d recovery points at the next lifecycle pass:\n", len(p.Remove))
	why := "no rule keeps it"
	return table(p.Remove, func(vigil.RecoveryPoint) string { return why }, "WHY")
}

// keptBy is a point's KEPT BY cell: its retention rules, or "-" when no
// plan's rules decide about it.
func keptBy(rp vigil.RecoveryPoint) string {
	if len(rp.KeptBy) == 0 {
		return "-"
	}
	return printable(strings.Join(rp.KeptBy, ", "))
}
