package config

import (
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/retention"
)

const retentionBase = `
vaults:
  - {name: v, storage: /v, password_env: P}
resources:
  - {name: docs, type: directory, path: /srv/docs}
backup_plans:
  - name: p
    schedule: '0 2 * * *'
    timezone: Europe/Berlin
    resources: [docs]
    vault: v
`

func TestParseRetention(t *testing.T) {
	cfg, err := Parse([]byte(retentionBase + "    retention: {keep_last: 3, keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.BackupPlans[0]
	if got, want := p.Retention.Policy(), (retention.Policy{Last: 3, Daily: 7, Weekly: 4, Monthly: 12, Yearly: 2}); got != want {
		t.Errorf("policy = %+v, want %+v", got, want)
	}
	if p.Expiry() != 0 {
		t.Errorf("expiry = %v, want none: the rules remove the points", p.Expiry())
	}
	if got := p.Location().String(); got != "Europe/Berlin" || p.Zone() != "Europe/Berlin" {
		t.Errorf("location = %s (%s), want the plan's time zone Europe/Berlin", got, p.Zone())
	}
	p.Timezone = ""
	if got := p.Zone(); !strings.HasPrefix(got, "the server's time zone (") {
		t.Errorf("zone of a plan without timezone = %q, want the server's", got)
	}
}

func TestParseRefusesBadRetention(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"negative", "    retention: {keep_daily: -1}\n", "backup_plans[0].retention.keep_daily: -1 must be between 0 (rule off) and 100000"},
		{"too large", "    retention: {keep_yearly: 1000000}\n", "backup_plans[0].retention.keep_yearly: 1000000 must be between 0"},
		{"keeps nothing", "    retention: {keep_last: 0}\n", "backup_plans[0].retention: keeps nothing"},
		{"with expire_days", "    expire_days: 30\n    retention: {keep_last: 3}\n", "backup_plans[0].retention: the plan also has expire_days or expire_after"},
		{"with expire_after", "    expire_after: 36h\n    retention: {keep_last: 3}\n", "keep either the retention rules or the fixed expiry"},
		{"typo", "    retention: {keep_dialy: 7}\n", `line 12: unknown key "keep_dialy" in the retention rules: did you mean "keep_daily"?`},
		{"not a number", "    retention: {keep_daily: many}\n", "cannot unmarshal !!str `many` into int"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(retentionBase + tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
