package console

import (
	"fmt"
	"html"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/units"
	"github.com/vigil-backup/vigil/metrics"
)

// chartTests is how many of a resource's latest restore tests its chart
// shows.
const chartTests = 20

// recoveryPointRow is a recovery point with the restore tests run on it.
type recoveryPointRow struct {
	vigil.RecoveryPoint
	Tests []vigil.RestoreJob
}

func (c *Console) recoveryPoints(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rps, err := c.catalog.ListRecoveryPoints(r.Context(), catalog.RecoveryPointFilter{Vault: q.Get("vault"), Resource: q.Get("resource"), Limit: jobsLimit})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	rows := make([]recoveryPointRow, 0, len(rps))
	for _, rp := range rps {
		tests, err := c.catalog.ListRestoreJobs(r.Context(), catalog.RestoreJobFilter{RecoveryPointID: rp.ID, RestoreTest: true, Limit: 10})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		rows = append(rows, recoveryPointRow{rp, tests})
	}
	c.render(w, r, http.StatusOK, "recoverypoints", map[string]any{
		"Rows": rows, "Vault": q.Get("vault"), "Resource": q.Get("resource"),
		"Vaults": c.cfg.Current().VaultNames(), "Resources": c.cfg.Current().ResourceNames(),
	})
}

// resourceCard is a resource with where its data is, how it is checked
// and its history as charts.
type resourceCard struct {
	config.Resource
	Location   string
	Validators []string
	Plans      []string
	Chart      template.HTML
}

func (c *Console) resources(w http.ResponseWriter, r *http.Request) {
	var cards []resourceCard
	for _, res := range c.cfg.Current().Resources {
		card := resourceCard{Resource: res, Location: res.Location()}
		for _, v := range res.Validate {
			card.Validators = append(card.Validators, v.Kind())
		}
		for _, p := range c.cfg.Current().RestoreTesting {
			if slices.Contains(c.cfg.Current().TestPlanResources(p), res.Name) {
				card.Plans = append(card.Plans, p.Name)
			}
		}
		tests, err := c.catalog.ListRestoreJobs(r.Context(), catalog.RestoreJobFilter{Resource: res.Name, RestoreTest: true, Limit: chartTests})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		card.Chart = testChart(tests)
		cards = append(cards, card)
	}
	c.render(w, r, http.StatusOK, "resources", map[string]any{"Cards": cards})
}

// testChart draws, as SVG, a resource's latest restore tests oldest to
// newest: a bar per test for its recovery time (red when it did not
// pass), and a line for the age of the recovery point it restored.
func testChart(tests []vigil.RestoreJob) template.HTML {
	var done []vigil.RestoreJob
	for _, t := range tests {
		// An ABORTED test measured nothing: vigil stopped during it.
		if t.ValidationStatus.Final() && t.ValidationStatus != vigil.ValidationAborted {
			done = append(done, t)
		}
	}
	if len(done) == 0 {
		return template.HTML(`<p class="muted">No restore test yet.</p>`)
	}
	slices.Reverse(done) // oldest first
	// The plot sits between two axes: recovery time on the left, the
	// recovery point's age on the right, each labelled at 0 and at its
	// maximum, and the first and last tests' dates below. With few bars,
	// each carries its value, so that one or two tests read as numbers,
	// not as a lone full-height bar.
	const w, h, pad, left, right, top = 560.0, 120.0, 4.0, 48.0, 48.0, 14.0
	plot := w - left - right
	maxRTO, maxAge := 0.0, 0.0
	for _, t := range done {
		maxRTO, maxAge = max(maxRTO, t.TotalSeconds), max(maxAge, t.RecoveryPointAgeSeconds)
	}
	step := min(plot/float64(len(done)), 28) // a few tests do not fill the width
	base := top + h
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="recovery time and recovery point age of the last %d restore tests">`, w, base+30, w, base+30, len(done))
	fmt.Fprintf(&b, `<line class="axis" x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f"/><line class="axis" x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f"/>`,
		left, top, left, base, left, base, w-right, base)
	fmt.Fprintf(&b, `<text class="tick" x="%.0f" y="%.0f" text-anchor="end">%s</text><text class="tick" x="%.0f" y="%.0f" text-anchor="end">0</text>`,
		left-4, top+4, html.EscapeString(human(secondsDur(maxRTO))), left-4, base)
	if maxAge > 0 {
		fmt.Fprintf(&b, `<text class="tick age" x="%.0f" y="%.0f">%s</text><text class="tick age" x="%.0f" y="%.0f">0</text>`,
			w-right+4, top+4, html.EscapeString(human(secondsDur(maxAge))), w-right+4, base)
	}
	var line []string
	for i, t := range done {
		bh := 0.0
		if maxRTO > 0 {
			bh = max(0, (h-pad)*t.TotalSeconds/maxRTO)
		}
		class := "bar"
		if t.ValidationStatus != vigil.ValidationSuccessful {
			class = "bar failed"
		}
		x := left + float64(i)*step + step*0.15
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s %s: recovery time %s, recovery point %s old</title></rect>`,
			class, x, base-bh, step*0.7, bh, html.EscapeString(t.ID), html.EscapeString(string(t.ValidationStatus)),
			html.EscapeString(human(secondsDur(t.TotalSeconds))), html.EscapeString(human(secondsDur(t.RecoveryPointAgeSeconds))))
		if len(done) <= 8 {
			fmt.Fprintf(&b, `<text class="value" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`,
				x+step*0.35, max(top, base-bh-3), html.EscapeString(human(secondsDur(t.TotalSeconds))))
		}
		if maxAge > 0 {
			line = append(line, fmt.Sprintf("%.1f,%.1f", x+step*0.35, base-(h-pad)*t.RecoveryPointAgeSeconds/maxAge))
		}
	}
	if len(line) > 1 {
		fmt.Fprintf(&b, `<polyline class="age" points="%s"/>`, strings.Join(line, " "))
	} else if len(line) == 1 {
		xy := strings.Split(line[0], ",")
		fmt.Fprintf(&b, `<circle class="age-point" cx="%s" cy="%s" r="3"/>`, xy[0], xy[1])
	}
	fmt.Fprintf(&b, `<text class="tick" x="%.0f" y="%.0f">%s</text>`, left, base+12, html.EscapeString(done[0].CreatedAt.Local().Format("01-02 15:04")))
	if len(done) > 1 {
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.0f" text-anchor="end">%s</text>`,
			left+float64(len(done))*step, base+12, html.EscapeString(done[len(done)-1].CreatedAt.Local().Format("01-02 15:04")))
	}
	fmt.Fprintf(&b, `<text x="0" y="%.0f" class="legend">bars: recovery time (left axis) · line: recovery point age (right axis) · hover a bar for its test</text></svg>`, base+27)
	return template.HTML(b.String()) //nolint:gosec // numbers, and text escaped above
}

func (c *Console) vaults(w http.ResponseWriter, r *http.Request) {
	type vaultRow struct {
		config.Vault
		Size  metrics.VaultSize
		Found bool
		Count int
		Check *catalog.VaultCheck
		// Coverage is the latest measure of what was read back, and
		// Chart its history; nil and "" before the first.
		Coverage *catalog.CoverageMeasure
		Chart    template.HTML
	}
	checks, err := c.catalog.LastVaultChecks(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var rows []vaultRow
	for _, v := range c.cfg.Current().Vaults {
		size, found := c.sizes.Size(v)
		n, err := c.catalog.CountRecoveryPoints(r.Context(), catalog.RecoveryPointFilter{Vault: v.Name, Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		row := vaultRow{Vault: v, Size: size, Found: found, Count: n}
		if ck, ok := checks[v.Name]; ok {
			row.Check = &ck
		}
		history, err := c.catalog.CoverageHistory(r.Context(), v.Name, coverageChartMeasures)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if len(history) > 0 {
			row.Coverage = &history[len(history)-1]
			row.Chart = coverageChart(history)
		}
		rows = append(rows, row)
	}
	c.render(w, r, http.StatusOK, "vaults", map[string]any{"Rows": rows})
}

func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	page, err := c.engine.ListEvents(r.Context(), vigil.EventQuery{Limit: 100})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	deliveries := map[int64][]vigil.Delivery{}
	for _, d := range page.Deliveries {
		deliveries[d.EventSeq] = append(deliveries[d.EventSeq], d)
	}
	slices.Reverse(page.Events) // newest first
	c.render(w, r, http.StatusOK, "events", map[string]any{"Events": page.Events, "Deliveries": deliveries})
}

// startRestoreTest is the resources page's "Start restore test" button.
func (c *Console) startRestoreTest(w http.ResponseWriter, r *http.Request) {
	job, err := c.engine.StartRestoreTest(r.Context(), vigil.RestoreTestRequest{Resource: r.PostFormValue("resource")})
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "error", map[string]any{"Error": "The restore test did not start: " + err.Error()})
		return
	}
	http.Redirect(w, r, "/jobs/"+job.ID, http.StatusSeeOther)
}

// restoreForm shows a recovery point's restore metadata, editable, before
// a restore starts; POST starts it.
func (c *Console) restoreForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	meta, err := c.engine.RestoreMetadata(r.Context(), id)
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "error", map[string]any{"Error": err.Error()})
		return
	}
	data := map[string]any{"ID": id, "Keys": slices.Sorted(maps.Keys(meta)), "Meta": meta}
	if r.Method != http.MethodPost {
		// A link may fill some in: "Restore this folder" gives its path.
		for k := range meta {
			if v := r.URL.Query().Get(k); v != "" {
				meta[k] = v
			}
		}
		c.render(w, r, http.StatusOK, "restore", data)
		return
	}
	set := map[string]string{}
	for k := range meta {
		if v := r.PostFormValue(k); v != "" && v != meta[k] {
			set[k] = v
		}
		meta[k] = r.PostFormValue(k)
	}
	job, err := c.engine.StartRestore(r.Context(), vigil.RestoreRequest{RecoveryPointID: id, Metadata: set, CreatedBy: "on-demand"})
	if err != nil {
		data["Error"] = err.Error()
		c.render(w, r, http.StatusBadRequest, "restore", data)
		return
	}
	http.Redirect(w, r, "/jobs/"+job.ID, http.StatusSeeOther)
}

// coverageChartMeasures is how many of a vault's latest coverage measures
// its chart shows: two months of nights.
const coverageChartMeasures = 60

// coverageChart draws a vault's coverage history: the share read back
// within the window at each measure (0 to 100%), with the window's gap
// (data older than the window and not read within it) in red.
func coverageChart(ms []catalog.CoverageMeasure) template.HTML {
	const w, h, left, top = 240.0, 48.0, 30.0, 6.0
	plot := w - left - 4
	base := top + h
	step := plot / float64(max(len(ms)-1, 1))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart coverage" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="share of the vault read back, over its last %d measures">`, w, base+14, w, base+14, len(ms))
	fmt.Fprintf(&b, `<line class="axis" x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f"/><line class="axis" x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f"/>`,
		left, top, left, base, left, base, w-4, base)
	fmt.Fprintf(&b, `<text class="tick" x="%.0f" y="%.0f" text-anchor="end">100%%</text><text class="tick" x="%.0f" y="%.0f" text-anchor="end">0</text>`, left-3, top+4, left-3, base)
	var line []string
	for i, m := range ms {
		share, gap := 1.0, 0.0
		if m.Bytes > 0 {
			share, gap = float64(m.BytesRead)/float64(m.Bytes), float64(m.GapBytes)/float64(m.Bytes)
		}
		x := left + float64(i)*step
		if len(ms) == 1 {
			x = left + plot/2
		}
		line = append(line, fmt.Sprintf("%.1f,%.1f", x, base-h*share))
		fmt.Fprintf(&b, `<circle class="coverage-point" cx="%.1f" cy="%.1f" r="2"><title>%s: %.1f%% read back, %s behind</title></circle>`,
			x, base-h*share, html.EscapeString(m.MeasuredAt.Local().Format("2006-01-02 15:04")), 100*share, html.EscapeString(units.Bytes(m.GapBytes)))
		if gap > 0 {
			fmt.Fprintf(&b, `<rect class="bar failed" x="%.1f" y="%.1f" width="2" height="%.1f"/>`, x-1, base-h*gap, h*gap)
		}
	}
	if len(line) > 1 {
		fmt.Fprintf(&b, `<polyline class="coverage" points="%s"/>`, strings.Join(line, " "))
	}
	fmt.Fprintf(&b, `<text class="tick" x="%.0f" y="%.0f">%s</text>`, left, base+11, html.EscapeString(ms[0].MeasuredAt.Local().Format("01-02")))
	if len(ms) > 1 {
		fmt.Fprintf(&b, `<text class="tick" x="%.0f" y="%.0f" text-anchor="end">%s</text>`, w-4, base+11, html.EscapeString(ms[len(ms)-1].MeasuredAt.Local().Format("01-02")))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers, and text escaped above
}
