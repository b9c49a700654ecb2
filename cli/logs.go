package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newLogsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "logs JOB_ID",
		Short: "Print a job's own timestamped log: what ran, sizes, errors",
		Args:  exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			lines, err := c.Logs(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(lines)
			}
			for _, l := range lines {
				fmt.Fprintf(g.stdout, "%s  %s\n", l.Time.Local().Format("2006-01-02 15:04:05.000"), printable(l.Message))
			}
			return nil
		},
	}
}
