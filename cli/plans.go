package cli

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil"
)

func newPlansCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "plans", Short: "List, pause and resume backup and restore testing plans"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the plans with their next runs",
		Long: `List the backup plans and restore testing plans: their kind, schedule,
next run (in local time), resources, and whether they are paused (by whom,
since when, and how many runs the pause skipped). A restore testing plan
with on_backup_completed runs on each completed backup, not on a clock.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			plans, err := c.Plans(cmd.Context())
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(plans)
			}
			return g.printPlans(plans)
		},
	}
	var kind string
	pauseOrResume := func(pause bool) *cobra.Command {
		verb, short := "resume", "Resume a paused plan: it runs on its schedule again"
		if pause {
			verb, short = "pause", "Pause a plan: it starts nothing until it is resumed"
		}
		c := &cobra.Command{
			Use:   verb + " NAME",
			Short: short,
			Long: short + `.

A paused backup plan starts no scheduled backups, and a paused restore
testing plan no scheduled tests and no tests on completed backups; each
skipped run is counted and logged by the server. Starting the plan's work by
hand (vigil backup start, vigil restore-test start --plan) still works. The
pause is kept in the catalog: it outlasts restarts and holds for every
process on a shared catalog. --kind picks between a backup plan and a
restore testing plan of the same name.

` + exitCodesHelp,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				switch kind {
				case "", string(vigil.BackupPlanKind), string(vigil.RestoreTestPlanKind):
				default:
					return usageError(fmt.Errorf("--kind %q: give backup or restore_test", kind))
				}
				c, err := g.client()
				if err != nil {
					return err
				}
				p, err := c.PausePlan(cmd.Context(), args[0], vigil.PlanKind(kind), whoAmI(), pause)
				if err != nil {
					return err
				}
				if g.JSON {
					return g.printJSON(p)
				}
				return g.printPlans([]vigil.Plan{p})
			},
		}
		c.Flags().StringVar(&kind, "kind", "", "backup or restore_test, when a backup plan and a restore testing plan share the name")
		return c
	}
	cmd.AddCommand(list, pauseOrResume(true), pauseOrResume(false))
	return cmd
}

func (g *globalOptions) printPlans(plans []vigil.Plan) error {
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tKIND\tSCHEDULE\tNEXT RUN\tRESOURCES\tSTATE")
	for _, p := range plans {
		schedule := p.Schedule
		if p.Timezone != "" {
			schedule += " (" + p.Timezone + ")"
		}
		if p.OnBackupCompleted {
			schedule = strings.TrimPrefix(schedule+", on each backup", ", ")
		}
		next := formatTime(p.NextRun)
		state := "active"
		if p.Paused != nil {
			next = "paused"
			state = fmt.Sprintf("paused by %s since %s, %d runs skipped", p.Paused.PausedBy, formatTime(&p.Paused.PausedAt), p.Paused.SkippedRuns)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", printable(p.Name), p.Kind, printable(orDash(schedule)), next,
			printable(orDash(strings.Join(p.Resources, ","))), printable(state))
	}
	return w.Flush()
}

// whoAmI names the person who pauses a plan: user@host, as far as known.
func whoAmI() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	switch {
	case name == "":
		return "cli"
	case host == "":
		return name
	}
	return name + "@" + host
}
