package console

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/units"
)

// resourceRow is one line of the overview: is this resource proven
// restorable, and how recently.
type resourceRow struct {
	Name, Type string
	LastBackup *vigil.BackupJob
	LastTest   *vigil.RestoreJob
	// Age of the newest AVAILABLE recovery point; 0 with none.
	Age      time.Duration
	HasPoint bool
	// Targets from the restore testing plans that test the resource.
	RPO, RTO time.Duration
	// Problems say in words what is red.
	Problems []string
}

// Red reports whether the row needs a person's attention.
func (r resourceRow) Red() bool { return len(r.Problems) > 0 }

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	rows, err := c.resourceRows(r.Context())
	if err != nil {
		c.logger.Error("console: overview", "err", err)
		c.render(w, r, http.StatusInternalServerError, "error", map[string]any{"Error": err.Error()})
		return
	}
	red := 0
	for _, row := range rows {
		if row.Red() {
			red++
		}
	}
	pending, err := c.workers.ListPendingCleanup(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	warnings, checkedAt := c.engine.StartWarnings()
	c.render(w, r, http.StatusOK, "overview", map[string]any{"Rows": rows, "Red": red, "Warnings": warnings, "CheckedAt": checkedAt, "Pending": pending})
}

func (c *Console) resourceRows(ctx context.Context) ([]resourceRow, error) {
	now := c.now()
	var rows []resourceRow
	for _, res := range c.cfg.Current().Resources {
		row := resourceRow{Name: res.Name, Type: res.Type}
		row.RPO, row.RTO = c.targets(res.Name)
		backups, err := c.catalog.ListBackupJobs(ctx, catalog.BackupJobFilter{Resource: res.Name, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(backups) > 0 {
			row.LastBackup = &backups[0]
		}
		// The latest test that learned something: an ABORTED one (vigil
		// stopped during it) says nothing about the backup, and is tried
		// again.
		tests, err := c.catalog.ListRestoreJobs(ctx, catalog.RestoreJobFilter{Resource: res.Name, RestoreTest: true, SkipAborted: true, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(tests) > 0 {
			row.LastTest = &tests[0]
		}
		rps, err := c.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{
			Resource: res.Name, Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(rps) > 0 {
			row.Age, row.HasPoint = now.Sub(rps[0].CreatedAt), true
		}
		row.Problems = problems(row)
		rows = append(rows, row)
	}
	return rows, nil
}

// targets are the strictest RPO and RTO of the plans that test resource.
func (c *Console) targets(resource string) (rpo, rto time.Duration) {
	for _, p := range c.cfg.Current().RestoreTesting {
		if !slices.Contains(c.cfg.Current().TestPlanResources(p), resource) {
			continue
		}
		rpo = strictest(rpo, time.Duration(p.Targets.RPO))
		rto = strictest(rto, time.Duration(p.Targets.RTO))
	}
	return rpo, rto
}

func strictest(a, b time.Duration) time.Duration {
	if a == 0 || b > 0 && b < a {
		return b
	}
	return a
}

// problems lists what is red about a row.
func problems(r resourceRow) []string {
	var out []string
	switch {
	case r.LastBackup == nil:
		out = append(out, "never backed up")
	case r.LastBackup.Status == vigil.BackupFailed || r.LastBackup.Status == vigil.BackupAborted:
		out = append(out, "last backup "+string(r.LastBackup.Status))
	}
	switch {
	case r.LastTest == nil:
		out = append(out, "never restore-tested")
	case r.LastTest.ValidationStatus == vigil.ValidationFailed || r.LastTest.ValidationStatus == vigil.ValidationTimedOut:
		out = append(out, "last restore test "+string(r.LastTest.ValidationStatus))
	}
	if r.RPO > 0 && (!r.HasPoint || r.Age > r.RPO) {
		out = append(out, "RPO missed")
	}
	if r.RTO > 0 && r.LastTest != nil && r.LastTest.ValidationStatus.Final() &&
		(r.LastTest.ValidationStatus != vigil.ValidationSuccessful || time.Duration(r.LastTest.TotalSeconds*float64(time.Second)) > r.RTO) {
		out = append(out, "RTO missed")
	}
	return out
}

var funcs = template.FuncMap{
	"ago": func(t *time.Time) string {
		if t == nil {
			return "–"
		}
		return human(time.Since(*t)) + " ago"
	},
	"human":   human,
	"seconds": func(s float64) string { return human(time.Duration(s * float64(time.Second))) },
	"dur":     func(d config.Duration) string { return human(time.Duration(d)) },
	"when":    func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "–"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"bytes": units.Bytes,
	// percent is part of whole as a share, such as "82.5%"; 100% of nothing.
	"percent": func(part, whole int64) string {
		if whole <= 0 {
			return "100%"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
	},
	// plural counts n things: "1 pack", "2 packs".
	"plural": func(n int64, what string) string { return units.Plural(int(n), what) },
	"days":   func(d time.Duration) string { return strconv.FormatFloat(d.Hours()/24, 'g', 4, 64) },
	// rplink and joblink link an id to its page; an empty id is a dash.
	"rplink":  func(id string) template.HTML { return idLink("/recovery-points/", id) },
	"joblink": func(id string) template.HTML { return idLink("/jobs/", id) },
	"since":   func(t time.Time) string { return human(time.Since(t)) },
	// took is how long a job ran, once it has ended.
	"took": func(start, end *time.Time) string {
		if start == nil || end == nil {
			return ""
		}
		return "took " + human(end.Sub(*start))
	},
	// page adds a page's title to its data, for the layout.
	"page": func(data map[string]any, title string) map[string]any {
		data["Title"] = title
		return data
	},
}

// human writes a duration for people: 340ms, 4.2s, 12m, 3h10m, 2d4h.
func human(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// idLink is a link to the page of a record by its id.
func idLink(prefix, id string) template.HTML {
	if id == "" {
		return "<small>–</small>"
	}
	e := template.HTMLEscapeString(id)
	return template.HTML(`<a href="` + prefix + template.URLQueryEscaper(id) + `" class="id">` + e + `</a>`) //nolint:gosec // both parts escaped
}
