package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// jobsLimit is how many jobs a tab lists.
const jobsLimit = 200

// sinceChoices are the time filter's choices: jobs created within.
var sinceChoices = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

// jobs lists backup, restore or copy jobs (tab), filtered by status,
// resource and age, newest first. The page then follows the events stream
// and updates its rows in place.
func (c *Console) jobs(w http.ResponseWriter, r *http.Request) {
	c.renderJobs(w, r, http.StatusOK, nil)
}

func (c *Console) renderJobs(w http.ResponseWriter, r *http.Request, status int, form map[string]any) {
	ctx := r.Context()
	q := r.URL.Query()
	tab := q.Get("tab")
	if tab != "restore" && tab != "copy" {
		tab = "backup"
	}
	var since *time.Time
	if d, ok := sinceChoices[q.Get("since")]; ok && d > 0 {
		t := c.now().Add(-d)
		since = &t
	}
	data := map[string]any{
		"Tab": tab, "Status": q.Get("status"), "Resource": q.Get("resource"), "Since": q.Get("since"),
		"SinceChoices": []string{"1h", "24h", "7d", "30d"},
		"Resources":    c.cfg.Current().ResourceNames(), "Vaults": c.cfg.Current().VaultNames(),
		"Form": form,
	}
	data["Statuses"] = []string{"PENDING", "RUNNING", "COMPLETED", "FAILED", "ABORTED"}
	var err error
	switch tab {
	case "backup":
		f := catalog.BackupJobFilter{Resource: q.Get("resource"), CreatedAfter: since, Limit: jobsLimit}
		if s := q.Get("status"); s != "" {
			f.Status = []vigil.BackupJobStatus{vigil.BackupJobStatus(s)}
		}
		data["Backups"], err = c.catalog.ListBackupJobs(ctx, f)
	case "restore":
		f := catalog.RestoreJobFilter{Resource: q.Get("resource"), CreatedAfter: since, Limit: jobsLimit}
		if s := q.Get("status"); s != "" {
			f.Status = []vigil.RestoreJobStatus{vigil.RestoreJobStatus(s)}
		}
		data["Restores"], err = c.catalog.ListRestoreJobs(ctx, f)
	case "copy":
		f := catalog.CopyJobFilter{Resource: q.Get("resource"), CreatedAfter: since, Limit: jobsLimit}
		if s := q.Get("status"); s != "" {
			f.Status = []vigil.BackupJobStatus{vigil.BackupJobStatus(s)}
		}
		data["Copies"], err = c.catalog.ListCopyJobs(ctx, f)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// The stream starts after the newest event the page already shows.
	page, err := c.engine.ListEvents(ctx, vigil.EventQuery{Limit: 1})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var after int64
	if len(page.Events) > 0 {
		after = page.Events[len(page.Events)-1].Seq
	}
	data["After"] = after
	c.render(w, r, status, "jobs", data)
}

// startBackup is the "Create on-demand backup" form: resource, vault and
// expiry in days. A bad field is shown by the field, and nothing starts.
func (c *Console) startBackup(w http.ResponseWriter, r *http.Request) {
	form := map[string]any{
		"Resource": r.PostFormValue("resource"), "Vault": r.PostFormValue("vault"), "Expiry": r.PostFormValue("expire_days"),
	}
	errs := map[string]string{}
	if _, ok := c.cfg.Current().Resource(r.PostFormValue("resource")); !ok {
		errs["resource"] = fmt.Sprintf("unknown resource %q: pick one of the list", r.PostFormValue("resource"))
	}
	if _, ok := c.cfg.Current().Vault(r.PostFormValue("vault")); !ok {
		errs["vault"] = fmt.Sprintf("unknown vault %q: pick one of the list", r.PostFormValue("vault"))
	}
	days := 0
	if s := strings.TrimSpace(r.PostFormValue("expire_days")); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			errs["expire_days"] = fmt.Sprintf("%q is not a whole number of days", s)
		case n < 0:
			errs["expire_days"] = "must not be negative: leave it empty for the vault's default expiry (none: kept forever)"
		case n > 36500:
			errs["expire_days"] = "must be at most 36500 (100 years): leave it empty for the vault's default expiry (none: kept forever)"
		}
		days = n
	}
	if len(errs) > 0 {
		form["Errors"] = errs
		r.URL.RawQuery = "tab=backup"
		c.renderJobs(w, r, http.StatusBadRequest, form)
		return
	}
	job, err := c.engine.StartBackup(r.Context(), vigil.BackupRequest{
		Resource: r.PostFormValue("resource"), Vault: r.PostFormValue("vault"),
		Expiry: time.Duration(days) * 24 * time.Hour, CreatedBy: "on-demand", OnDemand: true,
	})
	if err != nil {
		form["Errors"] = map[string]string{"form": err.Error()}
		r.URL.RawQuery = "tab=backup"
		c.renderJobs(w, r, http.StatusBadRequest, form)
		return
	}
	http.Redirect(w, r, "/jobs?tab=backup&started="+job.ID, http.StatusSeeOther)
}

// jobDetails shows every field of one job, and its log, which the page
// keeps following while the job runs.
func (c *Console) jobDetails(w http.ResponseWriter, r *http.Request) {
	c.showJob(w, r, http.StatusOK, "")
}

// showJob renders job {id}'s page with status, and cancelErr, when a
// cancel was refused, beside the form.
func (c *Console) showJob(w http.ResponseWriter, r *http.Request, status int, cancelErr string) {
	id := r.PathValue("id")
	data := map[string]any{"ID": id, "CancelError": cancelErr}
	var err error
	switch {
	case strings.HasPrefix(id, vigil.PrefixBackupJob+"-"):
		var j vigil.BackupJob
		j, err = c.catalog.GetBackupJob(r.Context(), id)
		data["Backup"], data["Final"] = j, j.Status.Final()
	case strings.HasPrefix(id, vigil.PrefixRestoreJob+"-"):
		var j vigil.RestoreJob
		j, err = c.catalog.GetRestoreJob(r.Context(), id)
		data["Restore"], data["Final"] = j, j.Ended()
	case strings.HasPrefix(id, vigil.PrefixCopyJob+"-"):
		var j vigil.CopyJob
		j, err = c.catalog.GetCopyJob(r.Context(), id)
		data["Copy"], data["Final"] = j, j.Status.Final()
	default:
		err = vigil.ErrNotFound
	}
	if errors.Is(err, vigil.ErrNotFound) {
		c.render(w, r, http.StatusNotFound, "notfound", nil)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	lines, err := c.catalog.Logs(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data["Log"] = lines
	c.render(w, r, status, "job", data)
}

// jobLog returns a job's log lines after the first n, and whether the job
// has ended, as JSON for the details page.
func (c *Console) jobLog(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	after = max(after, 0)
	lines, err := c.catalog.Logs(r.Context(), id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ended := true
	if strings.HasPrefix(id, vigil.PrefixBackupJob+"-") {
		j, err := c.catalog.GetBackupJob(r.Context(), id)
		ended = err != nil || j.Status.Final()
	} else if strings.HasPrefix(id, vigil.PrefixCopyJob+"-") {
		j, err := c.catalog.GetCopyJob(r.Context(), id)
		ended = err != nil || j.Status.Final()
	} else if j, err := c.catalog.GetRestoreJob(r.Context(), id); err == nil {
		ended = j.Ended()
	}
	type line struct {
		Time, Message string
	}
	out := struct {
		Lines []line `json:"lines"`
		Ended bool   `json:"ended"`
	}{Lines: []line{}, Ended: ended}
	for _, l := range lines[min(after, len(lines)):] {
		out.Lines = append(out.Lines, line{l.Time.Local().Format("15:04:05.000"), l.Message})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// eventStream sends events as server-sent events, from after the seq
// given, until the client goes or the server stops. Each carries the job
// it is about, so the jobs page updates its rows without reloading.
func (c *Console) eventStream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after, _ = strconv.ParseInt(id, 10, 64)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.stopping:
			return
		default:
		}
		// A stream outlives no session: signed out elsewhere, or expired,
		// it ends, and the browser's reconnect gets the sign-in page.
		if live, err := c.live(ctx, sessionOf(r).idHash, false); !live {
			if err != nil && ctx.Err() == nil {
				c.logger.Error("console: event stream", "err", err)
			}
			return
		}
		waitCtx, cancel := contextUntil(ctx, c.stopping)
		page, err := c.engine.ListEvents(waitCtx, vigil.EventQuery{AfterSeq: after, Wait: 25 * time.Second, Limit: 100})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Error("console: event stream", "err", err)
			}
			return
		}
		// A client that stopped reading must not hold a write, nor the
		// server's shutdown, for ever.
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if len(page.Events) == 0 {
			fmt.Fprint(w, ": still here\n\n") // keeps proxies from closing an idle stream
		}
		for _, e := range page.Events {
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "id: %d\nevent: vigil\ndata: %s\n\n", e.Seq, b)
			after = e.Seq
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.logger.Error("console", "path", r.URL.Path, "err", err)
	c.render(w, r, http.StatusInternalServerError, "error", map[string]any{"Error": err.Error()})
}

// Canceller cancels a job on behalf of who (worker.Engine.Cancel).
type Canceller interface {
	Cancel(ctx context.Context, id, who string) error
}

// cancelJob is the job page's "Cancel this job": the job ends ABORTED
// "cancelled in the console", with the reason given, and the page shows
// it ending. A job that has ended already is said so on its page.
func (c *Console) cancelJob(w http.ResponseWriter, r *http.Request) {
	cc, ok := c.engine.(Canceller)
	if !ok {
		c.render(w, r, http.StatusNotFound, "error", map[string]any{"Error": "this server cannot cancel jobs"})
		return
	}
	id := r.PathValue("id")
	who := "in the console"
	if reason := strings.TrimSpace(r.PostFormValue("reason")); reason != "" {
		who += ": " + reason
	}
	if err := cc.Cancel(r.Context(), id, who); err != nil {
		var conflict *vigil.ConflictError
		if errors.As(err, &conflict) {
			c.showJob(w, r, http.StatusConflict, err.Error())
			return
		}
		c.failStatus(w, r, err)
		return
	}
	http.Redirect(w, r, "/jobs/"+id, http.StatusSeeOther)
}
