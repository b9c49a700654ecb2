package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newWorkersCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "workers", Short: "List the processes that run jobs"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the workers, their heartbeats and what each runs",
		Long: `List every process that runs jobs on this catalog ('vigil serve' and
'vigil worker'), the latest started first: its id, host and pid, its
state (ALIVE; STOPPED, when it stopped cleanly; DEAD, when its heartbeat
is older than workers.heartbeat_timeout), how many jobs of each kind it
runs at once, the jobs it ran at its last heartbeat, and the restore
tests whose copy waits to be deleted on its node (CLEANUP PENDING): a
dead worker's copies are deleted when a process of its node starts
again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ws, err := c.Workers(cmd.Context())
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(ws)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tHOST\tPID\tSTATE\tHEARTBEAT\tCONCURRENCY\tRUNNING\tCLEANUP PENDING")
			for _, wk := range ws {
				beat := time.Since(wk.LastHeartbeatAt).Round(time.Second).String() + " ago"
				running := "-"
				if len(wk.Running) > 0 {
					running = strings.Join(wk.Running, ",")
				}
				pending := "-"
				if len(wk.PendingCleanup) > 0 {
					pending = strings.Join(wk.PendingCleanup, ",")
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", printable(wk.ID), printable(wk.Host), wk.PID, wk.State, beat,
					formatConcurrency(wk.Concurrency), printable(running), printable(pending))
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(list)
	return cmd
}

// formatConcurrency prints jobs at once per kind: "backup=2 restore=2 …".
func formatConcurrency(c map[string]int) string {
	kinds := make([]string, 0, len(c))
	for k := range c {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s=%d", k, c[k])
	}
	return strings.Join(parts, " ")
}
