package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/api"
)

type eventsOptions struct {
	Since    int64
	Types    []string
	Job      string
	Resource string
	Limit    int
}

func (o eventsOptions) query() url.Values {
	q := url.Values{}
	if o.Since > 0 {
		q.Set("since", strconv.FormatInt(o.Since, 10))
	}
	for _, t := range o.Types {
		q.Add("type", strings.ToUpper(t))
	}
	if o.Job != "" {
		q.Set("job_id", o.Job)
	}
	if o.Resource != "" {
		q.Set("resource", o.Resource)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

func newEventsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "List and follow events, with the delivery of each to notifications"}
	var opts eventsOptions
	list := &cobra.Command{
		Use:   "list [--since SEQ] [--type T ...] [--job ID] [--resource NAME]",
		Short: "List events, oldest first (the newest 50 unless --since)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if opts.Limit == 0 && opts.Since == 0 {
				opts.Limit = 50
			}
			page, err := c.Events(cmd.Context(), opts.query())
			if err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(page)
			}
			return g.printEvents(page, true)
		},
	}
	tail := &cobra.Command{
		Use:   "tail [--since SEQ] [--type T ...]",
		Short: "Print events as they happen, until interrupted",
		Long: `Print events as they happen. Without --since, starts after the newest event;
with it, prints every event after that sequence number first. With --json, one
event per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEventsTail(cmd.Context(), g, opts)
		},
	}
	for _, c := range []*cobra.Command{list, tail} {
		f := c.Flags()
		f.Int64Var(&opts.Since, "since", 0, "only events after this sequence number")
		f.StringArrayVar(&opts.Types, "type", nil, "only events of this type (repeatable), e.g. RESTORE_TEST_STATUS")
		f.StringVar(&opts.Job, "job", "", "only events of this job")
		f.StringVar(&opts.Resource, "resource", "", "only events of this resource")
	}
	list.Flags().IntVar(&opts.Limit, "limit", 0, "at most this many events")
	cmd.AddCommand(list, tail)
	return cmd
}

func runEventsTail(ctx context.Context, g *globalOptions, opts eventsOptions) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	if opts.Since == 0 {
		// Start after the newest event.
		q := opts.query()
		q.Set("limit", "1")
		page, err := c.Events(ctx, q)
		if err != nil {
			return err
		}
		if n := len(page.Events); n > 0 {
			opts.Since = page.Events[n-1].Seq
		}
	}
	header := true
	for {
		q := opts.query()
		q.Set("wait", "30s")
		page, err := c.Events(ctx, q)
		if ctx.Err() != nil {
			return nil // interrupted: the normal way to stop tailing
		}
		if err != nil {
			return err
		}
		if len(page.Events) == 0 {
			continue
		}
		if g.JSON {
			enc := json.NewEncoder(g.stdout)
			for _, ev := range page.Events {
				if err := enc.Encode(ev); err != nil {
					return err
				}
			}
		} else if err := g.printEvents(page, header); err != nil {
			return err
		}
		header = false
		opts.Since = page.Events[len(page.Events)-1].Seq
	}
}

func (g *globalOptions) printEvents(page api.EventPage, header bool) error {
	deliveries := map[int64][]string{}
	for _, d := range page.Deliveries {
		s := fmt.Sprintf("%s:%s", d.Notification, d.Status)
		if d.Attempts > 1 || d.LastError != "" {
			s += fmt.Sprintf("(attempt %d", d.Attempts)
			if d.LastError != "" {
				s += ": " + d.LastError
			}
			s += ")"
		}
		deliveries[d.EventSeq] = append(deliveries[d.EventSeq], s)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(w, "SEQ\tTIME\tTYPE\tRESOURCE\tJOB\tSUBJECT\tDELIVERIES")
	}
	for _, ev := range page.Events {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, formatTime(&ev.Time), printable(string(ev.Type)), printable(orDash(ev.Resource)),
			printable(orDash(ev.JobID)), printable(ev.Subject), printable(orDash(strings.Join(deliveries[ev.Seq], " "))))
	}
	return w.Flush()
}
