package main

import (
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"gopkg.in/yaml.v3"

	"github.com/vigil-backup/vigil"
)

// scrape fetches /metrics as Prometheus would, and parses it.
func (e *testEnv) scrape(token string) (int, map[string]*dto.MetricFamily) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.listen+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		e.t.Fatalf("parse /metrics: %v", err)
	}
	return resp.StatusCode, families
}

// metricValue finds the sample of family whose labels are all in labels.
func metricValue(t *testing.T, families map[string]*dto.MetricFamily, family string, labels map[string]string) *dto.Metric {
	t.Helper()
	f, ok := families[family]
	if !ok {
		t.Fatalf("no metric %s", family)
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s with labels %v", family, labels)
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return math.NaN()
}

func near(a, b, tolerance float64) bool { return math.Abs(a-b) <= tolerance }

// TestMetrics runs a known sequence of jobs and reads /metrics: job counts
// and durations, per resource the bytes, last backup, recovery point age,
// last successful restore test and its recovery time, and the vault's size.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	e.serve()

	docs := e.backup("docs")
	if docs.Status != vigil.BackupCompleted {
		t.Fatalf("backup: %+v", docs)
	}
	var failed vigil.BackupJob
	r := e.run("backup", "start", "--resource", "missing", "--vault", "lab-vault", "--wait", "--json")
	if r.code != 1 {
		t.Fatalf("backup of a missing folder: exit %d", r.code)
	}
	mustDecode(t, r.stdout, &failed)
	var test vigil.RestoreJob
	e.mustJSON(&test, "restore-test", "start", "--resource", "docs", "--wait")
	if test.ValidationStatus != vigil.ValidationSuccessful {
		t.Fatalf("restore test: %+v", test)
	}
	var rp vigil.RecoveryPoint
	e.mustJSON(&rp, "recovery-points", "show", docs.RecoveryPointID)

	if code, _ := e.scrape(""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d, want 401", code)
	}
	token, err := os.ReadFile(e.path("vigil-data/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	code, m := e.scrape(strings.TrimSpace(string(token)))
	after := time.Now()
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}

	for _, c := range []struct {
		typ, status string
		want        float64
	}{
		{"backup", "COMPLETED", 1}, {"backup", "FAILED", 1}, {"restore_test", "COMPLETED", 1},
	} {
		if got := value(metricValue(t, m, "vigil_jobs", map[string]string{"type": c.typ, "status": c.status})); got != c.want {
			t.Errorf("vigil_jobs{type=%s,status=%s} = %v, want %v", c.typ, c.status, got, c.want)
		}
	}
	dur := func(j vigil.BackupJob) float64 { return j.CompletedAt.Sub(*j.StartedAt).Seconds() }
	h := metricValue(t, m, "vigil_job_duration_seconds", map[string]string{"type": "backup"}).Histogram
	if h.GetSampleCount() != 2 || !near(h.GetSampleSum(), dur(docs)+dur(failed), 1e-5) {
		t.Errorf("backup durations: count %d sum %v, want 2 and %v", h.GetSampleCount(), h.GetSampleSum(), dur(docs)+dur(failed))
	}
	th := metricValue(t, m, "vigil_job_duration_seconds", map[string]string{"type": "restore_test"}).Histogram
	if th.GetSampleCount() != 1 || !near(th.GetSampleSum(), test.CompletedAt.Sub(*test.StartedAt).Seconds(), 1e-5) {
		t.Errorf("restore test durations: count %d sum %v", th.GetSampleCount(), th.GetSampleSum())
	}

	docsLabel := map[string]string{"resource": "docs"}
	checks := []struct {
		family    string
		want, tol float64
	}{
		{"vigil_backup_bytes_total", float64(docs.Bytes), 0},
		{"vigil_last_backup_timestamp_seconds", float64(docs.CompletedAt.UnixMicro()) / 1e6, 1e-5},
		{"vigil_last_successful_restore_test_timestamp_seconds", float64(test.CompletedAt.UnixMicro()) / 1e6, 1e-5},
		{"vigil_last_restore_test_rto_seconds", test.TotalSeconds, 1e-9},
		{"vigil_last_restore_test_success", 1, 0},
	}
	for _, c := range checks {
		if got := value(metricValue(t, m, c.family, docsLabel)); !near(got, c.want, c.tol) {
			t.Errorf("%s{resource=docs} = %v, want %v", c.family, got, c.want)
		}
	}
	age := value(metricValue(t, m, "vigil_recovery_point_age_seconds", docsLabel))
	if lo, hi := before.Sub(rp.CreatedAt).Seconds(), after.Sub(rp.CreatedAt).Seconds(); age < lo || age > hi {
		t.Errorf("recovery point age %v, want between %v and %v", age, lo, hi)
	}
	for _, f := range []string{"vigil_backup_bytes_total", "vigil_recovery_point_age_seconds"} {
		for _, s := range m[f].Metric {
			for _, l := range s.Label {
				if l.GetValue() == "missing" {
					t.Errorf("%s reports the resource whose only backup failed", f)
				}
			}
		}
	}

	var size int64
	filepath.WalkDir(e.path("vaults/lab-vault"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			info, _ := d.Info()
			size += info.Size()
		}
		return nil
	})
	if got := value(metricValue(t, m, "vigil_vault_size_bytes", map[string]string{"vault": "lab-vault"})); size == 0 || got != float64(size) {
		t.Errorf("vault size %v, want %d", got, size)
	}

	// Every metric the sample alert rules use is one vigil exposes.
	rules, err := os.ReadFile("../../examples/prometheus-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatalf("examples/prometheus-alerts.yml: %v", err)
	}
	var used []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			used = append(used, regexp.MustCompile(`vigil_[a-z_]+`).FindAllString(r.Expr, -1)...)
		}
	}
	if len(used) < 5 {
		t.Fatalf("the alert rules use only %v", used)
	}
	for _, name := range used {
		if _, ok := m[name]; !ok {
			t.Errorf("examples/prometheus-alerts.yml uses %s, which /metrics does not expose", name)
		}
	}
	e.stop()
}

func mustDecode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

// TestWaitProgress: --wait shows the job's progress on standard error, as
// plain timestamped lines when it is not a terminal and as one line
// rewritten in place on a terminal, and keeps standard output for the
// record.
func TestWaitProgress(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "")
	e.serve()
	r := e.run("backup", "start", "--resource", "docs", "--vault", "lab-vault", "--wait", "--json")
	var job vigil.BackupJob
	mustDecode(t, r.stdout, &job)
	line := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ` + job.ID + `  COMPLETED$`)
	if r.code != 0 || !line.MatchString(r.stderr) || strings.Contains(r.stderr, "\r") {
		t.Fatalf("exit %d; stderr %q: want a timestamped COMPLETED line", r.code, r.stderr)
	}

	// On a terminal (script(1) gives the command one).
	cmd := exec.Command("script", "-qec", vigilBin+" backup start --resource docs --vault lab-vault --wait", "/dev/null")
	cmd.Env = e.environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\r\x1b[K") || !regexp.MustCompile(`\r\x1b\[Kbj-\S+  COMPLETED\r?\n`).Match(out) {
		t.Fatalf("on a terminal: want the line rewritten in place, ending COMPLETED; got %q", out)
	}
	e.stop()
}
