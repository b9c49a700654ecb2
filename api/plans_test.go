package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
)

// TestPlanRoutes: a pause names its plan, and its kind when a backup plan
// and a restore testing plan share the name; the answer and the list show
// who paused it, and resume forgets it.
func TestPlanRoutes(t *testing.T) {
	s := newTestServer(t)
	s.cfg.Current().BackupPlans = []config.BackupPlan{{Name: "nightly", Vault: "v", Resources: []string{"docs"}}}
	s.cfg.Current().RestoreTesting = []config.RestoreTestPlan{{Name: "nightly", Resources: []string{"docs"}}, {Name: "every-backup", OnBackupCompleted: true}}

	for _, tt := range []struct{ path, want string }{
		{"/api/v1/plans/nightly/pause", "kind=backup or kind=restore_test"},
		{"/api/v1/plans/nightly/pause?kind=daily", `daily\": give backup or restore_test`},
	} {
		if code, body := call(s, "POST", tt.path, ""); code != http.StatusBadRequest || !strings.Contains(body, tt.want) {
			t.Errorf("POST %s: %d %s; want 400 saying %q", tt.path, code, body, tt.want)
		}
	}
	if code, body := call(s, "POST", "/api/v1/plans/hourly/pause", ""); code != http.StatusNotFound || !strings.Contains(body, "every-backup") {
		t.Errorf("pause of an unknown plan: %d %s; want 404 listing the plans", code, body)
	}

	code, body := call(s, "POST", "/api/v1/plans/nightly/pause?kind=backup&by=ann", "")
	var p vigil.Plan
	if json.Unmarshal([]byte(body), &p); code != http.StatusCreated || p.Kind != vigil.BackupPlanKind || p.Paused == nil || p.Paused.PausedBy != "ann" {
		t.Fatalf("pause: %d %s; want the backup plan, paused by ann", code, body)
	}
	code, body = call(s, "GET", "/api/v1/plans", "")
	var plans []vigil.Plan
	if err := json.Unmarshal([]byte(body), &plans); err != nil || code != http.StatusOK || len(plans) != 3 ||
		plans[0].Paused == nil || plans[1].Paused != nil || plans[2].Paused != nil {
		t.Fatalf("plans: %d %s; want 3, the backup plan alone paused", code, body)
	}
	code, body = call(s, "POST", "/api/v1/plans/every-backup/pause", "")
	if json.Unmarshal([]byte(body), &p); code != http.StatusCreated || p.Paused == nil || p.Paused.PausedBy != "api" {
		t.Errorf("pause without by: %d %s; want paused by api", code, body)
	}
	code, body = call(s, "POST", "/api/v1/plans/nightly/resume?kind=backup", "")
	p = vigil.Plan{}
	if json.Unmarshal([]byte(body), &p); code != http.StatusCreated || p.Paused != nil || p.Name != "nightly" {
		t.Errorf("resume: %d %s; want nightly, not paused", code, body)
	}
}
