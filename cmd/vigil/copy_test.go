package main

import (
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
)

// newCopyEnv is a test installation with a second vault, offsite, beside
// lab-vault, and extra YAML after the resources.
func newCopyEnv(t *testing.T, extra string) *testEnv {
	t.Helper()
	e := newTestEnv(t, extra)
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "    password_env: VIGIL_VAULT_PASSWORD\n",
		"    password_env: VIGIL_VAULT_PASSWORD\n  - name: offsite\n    storage: ./vaults/offsite\n    password_env: VIGIL_OFFSITE_PASSWORD\n", 1)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "VIGIL_OFFSITE_PASSWORD=another passphrase for the off-site vault")
	return e
}

// copyOf waits for the copy job of recovery point rpID to end.
func (e *testEnv) copyOf(rpID string) vigil.CopyJob {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var jobs []vigil.CopyJob
		e.mustJSON(&jobs, "jobs", "list", "--type", "copy")
		for _, j := range jobs {
			if j.SourceRecoveryPointID == rpID && j.Status.Final() {
				return j
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no copy job of %s ended: %+v\nserver log:\n%s", rpID, jobs, e.serverLog)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCopyJobsEndToEnd: a backup plan with copy_to backs a folder and an
// SQLite database up; each new recovery point is copied into the offsite
// vault by a copy job that COMPLETES, as a recovery point of its own with
// its own expiry, linked to its source; and a restore testing plan with
// vaults: [offsite] proves each off-site copy restorable. A copy by hand
// works too.
func TestCopyJobsEndToEnd(t *testing.T) {
	t.Parallel()
	e := newCopyEnv(t, `  - name: appdb
    type: sqlite
    path: ./app.db
backup_plans:
  - name: nightly
    schedule: "* * * * * *"
    resources: ["docs", "appdb"]
    vault: lab-vault
    expire_days: 7
    copy_to: [{vault: offsite, expire_days: 90}]
restore_testing:
  - name: offsite-proof
    on_backup_completed: true
    resources: ["*"]
    vaults: [offsite]
`)
	lite := sqlDB(t, "sqlite", "file:"+e.path("app.db"))
	execAll(t, lite, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`,
		`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 500) INSERT INTO notes (body) SELECT 'note ' || n FROM g`)
	lite.Close()
	e.serve()

	var docs string // the docs recovery point in lab-vault
	for _, resource := range []string{"docs", "appdb"} {
		var planned vigil.BackupJob
		waitFor(t, time.Minute, "a planned backup of "+resource, func() bool {
			var jobs []vigil.BackupJob
			e.mustJSON(&jobs, "jobs", "list", "--type", "backup")
			for _, j := range jobs {
				if j.Resource == resource && j.CreatedBy == "nightly" && j.Status == vigil.BackupCompleted {
					planned = j
				}
			}
			return planned.ID != ""
		})
		var source vigil.RecoveryPoint
		e.mustJSON(&source, "recovery-points", "show", planned.RecoveryPointID)
		if resource == "docs" {
			docs = source.ID
		}

		cj := e.copyOf(source.ID)
		if cj.Status != vigil.BackupCompleted || cj.Vault != "offsite" || cj.SourceVault != "lab-vault" || cj.CreatedBy != "nightly" || cj.Bytes != source.SizeBytes {
			t.Fatalf("copy job of %s: %+v; want COMPLETED into offsite, by the plan, of its %d bytes", source.ID, cj, source.SizeBytes)
		}
		var shown vigil.CopyJob
		e.mustJSON(&shown, "jobs", "show", cj.ID)
		if shown.ID != cj.ID || shown.RecoveryPointID != cj.RecoveryPointID {
			t.Errorf("jobs show %s: %+v", cj.ID, shown)
		}

		var copied vigil.RecoveryPoint
		e.mustJSON(&copied, "recovery-points", "show", cj.RecoveryPointID)
		if copied.Vault != "offsite" || copied.Status != vigil.RecoveryPointAvailable || copied.SourceRecoveryPointID != source.ID ||
			copied.CopyJobID != cj.ID || copied.Resource != resource || copied.ExpireAt == nil || source.ExpireAt == nil ||
			copied.ExpireAt.Sub(*source.ExpireAt) < 80*24*time.Hour {
			t.Fatalf("the copy %+v of %+v: want AVAILABLE in offsite, linked to its source, expiring 90 days on where the source expires in 7", copied, source)
		}
		if resource == "appdb" && (copied.Database == nil || len(copied.Database.Tables) != 1 || copied.Database.Tables[0].Rows != 500) {
			t.Errorf("the database copy lost its database info: %+v", copied.Database)
		}
		if out := e.mustRun("recovery-points", "show", copied.ID); !strings.Contains(out, "copy of recovery point "+source.ID) {
			t.Errorf("recovery-points show of a copy does not name its source:\n%s", out)
		}

		// Only the off-site copy is tested by the plan, and it passes.
		test := e.waitTest(e.testOf(copied.ID).ID)
		if test.ValidationStatus != vigil.ValidationSuccessful || test.DeletionStatus != vigil.DeletionSuccessful || test.Plan != "offsite-proof" {
			t.Fatalf("restore test of the off-site copy of %s: %s %q, deletion %s; want SUCCESSFUL and deleted", resource, test.ValidationStatus, test.ValidationMessage, test.DeletionStatus)
		}
		var tests []vigil.RestoreJob
		e.mustJSON(&tests, "jobs", "list", "--type", "restore")
		for _, j := range tests {
			if j.RecoveryPointID == source.ID {
				t.Errorf("the plan with vaults: [offsite] tested %s in lab-vault", source.ID)
			}
		}
	}

	// By hand: a copy with its own expiry; into its own vault it is refused.
	var manual vigil.CopyJob
	e.mustJSON(&manual, "recovery-points", "copy", docs, "--to", "offsite", "--expire-days", "3", "--wait")
	if manual.Status != vigil.BackupCompleted || manual.ExpireAt == nil || time.Until(*manual.ExpireAt) > 4*24*time.Hour {
		t.Fatalf("manual copy: %+v", manual)
	}
	if r := e.run("recovery-points", "copy", docs, "--to", "lab-vault"); r.code != 2 || !strings.Contains(r.stderr, "copy it into another vault") {
		t.Errorf("a copy into its own vault: exit %d, %s", r.code, r.stderr)
	}
	if r := e.run("recovery-points", "copy", docs, "--to", "nowhere"); r.code != 2 {
		t.Errorf("a copy into an unknown vault: exit %d, %s", r.code, r.stderr)
	}
	var page struct {
		Events []vigil.Event `json:"events"`
	}
	e.mustJSON(&page, "events", "list", "--job", manual.ID)
	var types []string
	for _, ev := range page.Events {
		types = append(types, string(ev.Type))
	}
	if strings.Join(types, ",") != "COPY_JOB_STARTED,COPY_JOB_COMPLETED" {
		t.Errorf("events of copy job %s: %v", manual.ID, types)
	}

	// The console shows a copy job's page.
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + e.listen
	resp, err := noRedirects.PostForm(base+"/login", neturl.Values{"token": {strings.TrimSpace(string(token))}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "vigil_session" {
			cookie = c.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == "" {
		t.Fatalf("console sign-in: %d, cookie %q", resp.StatusCode, cookie)
	}
	if code, _, page := consoleRequest(t, http.MethodGet, base+"/jobs/"+manual.ID, cookie, nil, nil); code != http.StatusOK ||
		!strings.Contains(page, `recovery point <a href="/recovery-points/`+manual.RecoveryPointID+`" class="id">`+manual.RecoveryPointID+`</a> in vault offsite`) {
		t.Errorf("console page of copy job %s: %d\n%s", manual.ID, code, page)
	}

	e.stop()
	e.serve()
	if out := e.mustRun("vault", "verify", "offsite", "--read-data-percent", "100"); !strings.Contains(out, "no damage found") {
		t.Errorf("vault verify offsite: %s", out)
	}
	e.stop()
}

// TestKillDuringCopy: vigil killed with kill -9 during a copy job, before
// it copied anything and after the copy was saved in the vault but not yet
// listed, takes the job up again on restart: it COMPLETES once, with one
// recovery point in the offsite vault, which verifies.
func TestKillDuringCopy(t *testing.T) {
	t.Parallel()
	e := newCopyEnv(t, "")
	plain := e.env
	e.serve()
	source := e.backup("docs")
	e.stop()

	for i, step := range []string{"copy", "record"} {
		e.env = append(append([]string{}, plain...), "VIGIL_TEST_COPY_PAUSE="+step+"=10m")
		e.serve()
		var job vigil.CopyJob
		e.mustJSON(&job, "recovery-points", "copy", source.RecoveryPointID, "--to", "offsite")
		waitFor(t, time.Minute, "the copy to pause before "+step, func() bool {
			return strings.Contains(e.logText(job.ID), "before "+step+" ("+"VIGIL_TEST_COPY_PAUSE)")
		})
		e.kill()

		e.env = plain
		e.serve()
		waitFor(t, time.Minute, "the copy job to end", func() bool {
			e.mustJSON(&job, "jobs", "show", job.ID)
			return job.Status.Final()
		})
		if job.Status != vigil.BackupCompleted {
			t.Fatalf("after a kill -9 before %s, copy job %s ended %s %q; want COMPLETED", step, job.ID, job.Status, job.StatusMessage)
		}
		if step == "record" && !strings.Contains(e.logText(job.ID), "holds this job's copy already") {
			t.Errorf("the resumed copy did not list the copy saved before the kill:\n%s", e.logText(job.ID))
		}
		var page struct {
			Events []vigil.Event `json:"events"`
		}
		e.mustJSON(&page, "events", "list", "--job", job.ID)
		final := 0
		for _, ev := range page.Events {
			if ev.Type == vigil.EventCopyJobCompleted || ev.Type == vigil.EventCopyJobFailed {
				final++
			}
		}
		if final != 1 {
			t.Errorf("copy job %s has %d final events, want 1: %+v", job.ID, final, page.Events)
		}
		var rps []vigil.RecoveryPoint
		e.mustJSON(&rps, "recovery-points", "list", "--vault", "offsite")
		if len(rps) != i+1 {
			t.Fatalf("offsite lists %d recovery points after %d copies: %+v", len(rps), i+1, rps)
		}
		e.kill()
	}
	e.serve()
	if out := e.mustRun("vault", "verify", "offsite", "--read-data-percent", "100"); !strings.Contains(out, "no damage found") || !strings.Contains(out, "2 snapshots") {
		t.Errorf("vault verify offsite after the kills: %s", out)
	}
}
