package config

import (
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/robfig/cron/v3"
)

// Validator is one check a restored copy must pass. Exactly one of its
// fields is set; the YAML key names the kind:
//
//	validate:
//	  - http: {path: /, expect_status: 200, expect_body: "Welcome"}
//	  - tcp: {}
//	  - command: {run: ["./check.sh"]}
//	  - checksum: {sample_percent: 10}
//	  - external: {}
//	  - sql: {query: "select count(*) from orders", expect: "100000"}
type Validator struct {
	HTTP     *HTTPCheck     `yaml:"http"`
	TCP      *TCPCheck      `yaml:"tcp"`
	Command  *CommandCheck  `yaml:"command"`
	Checksum *ChecksumCheck `yaml:"checksum"`
	External *ExternalCheck `yaml:"external"`
	SQL      *SQLCheck      `yaml:"sql"`
}

// Kind names the validator's kind, as written in YAML.
func (v Validator) Kind() string {
	switch {
	case v.HTTP != nil:
		return "http"
	case v.TCP != nil:
		return "tcp"
	case v.Command != nil:
		return "command"
	case v.Checksum != nil:
		return "checksum"
	case v.External != nil:
		return "external"
	case v.SQL != nil:
		return "sql"
	}
	return ""
}

// Default per-attempt timeouts of validators.
const (
	DefaultHTTPTimeout    = 10 * time.Second
	DefaultTCPTimeout     = 5 * time.Second
	DefaultCommandTimeout = time.Minute
)

// HTTPCheck asks the restored app over HTTP and expects an answer.
type HTTPCheck struct {
	Method       string            `yaml:"method"`        // default GET
	Path         string            `yaml:"path"`          // default /
	ExpectStatus int               `yaml:"expect_status"` // default 200
	ExpectBody   string            `yaml:"expect_body"`   // a substring of the body
	Headers      map[string]string `yaml:"headers"`
	Timeout      Duration          `yaml:"timeout"` // per attempt
}

// TCPCheck expects the restored app's port to accept a connection.
type TCPCheck struct {
	Timeout Duration `yaml:"timeout"` // per attempt
}

// CommandCheck runs a program; exit status 0 passes. It finds the restored
// copy through VIGIL_RESTORE_DIR, VIGIL_RESTORE_URL, VIGIL_RESTORE_HOST,
// VIGIL_RESTORE_PORT, VIGIL_RESTORE_JOB_ID, VIGIL_RECOVERY_POINT_ID and
// VIGIL_RESOURCE in its environment.
type CommandCheck struct {
	Run     []string          `yaml:"run"`
	Env     map[string]string `yaml:"env"`
	Timeout Duration          `yaml:"timeout"` // per attempt
}

// ChecksumCheck compares the restored files with the recovery point's own
// record of them: all files, or a random sample_percent of them.
type ChecksumCheck struct {
	SamplePercent float64 `yaml:"sample_percent"` // default 100
}

// ExternalCheck waits for a verdict reported through the API: PUT
// /api/v1/restore-jobs/{id}/validation.
type ExternalCheck struct{}

// RunFields are the fields an app's run arguments may use.
type RunFields struct {
	Dir  string // the restored copy's folder
	Host string // the loopback address it must listen on
	Port int    // a free port on Host
}

// Restore testing plan defaults.
const (
	DefaultValidationWindow    = 5 * time.Minute
	DefaultKeepFor             = 24 * time.Hour
	DefaultSelectionWindowDays = 7
	MaxSelectionWindowDays     = 36500

	LatestWithinWindow = "LATEST_WITHIN_WINDOW"
	RandomWithinWindow = "RANDOM_WITHIN_WINDOW"
)

// RestoreTestPlan says when to restore-test which resources, and how.
type RestoreTestPlan struct {
	Name string `yaml:"name"`
	// OnBackupCompleted tests each new recovery point as soon as its
	// backup completes. A plan with neither this nor a schedule runs only
	// on demand (vigil restore-test start --plan NAME).
	OnBackupCompleted bool `yaml:"on_backup_completed"`
	// Schedule (cron) tests a recovery point chosen by RecoveryPoint among
	// those of the last SelectionWindowDays; a test not started within
	// StartWindow of its time is abandoned.
	Schedule    string   `yaml:"schedule"`
	Timezone    string   `yaml:"timezone"`
	StartWindow Duration `yaml:"start_window"`
	Resources   []string `yaml:"resources"`
	// Vaults, when set, limits the plan to recovery points in these
	// vaults, copies included: a plan with vaults: [offsite] proves the
	// off-site copies restorable, and with on_backup_completed tests each
	// copy as it lands there.
	Vaults              []string `yaml:"vaults"`
	RecoveryPoint       string   `yaml:"recovery_point"`
	SelectionWindowDays int      `yaml:"selection_window_days"`
	// ValidationWindow is how long validators are retried before the
	// verdict is TIMED_OUT or FAILED.
	ValidationWindow Duration `yaml:"validation_window"`
	// KeepOnFailure keeps a copy that failed validation for KeepFor, for
	// inspection, then deletes it.
	KeepOnFailure bool     `yaml:"keep_on_failure"`
	KeepFor       Duration `yaml:"keep_for"`
	Targets       Targets  `yaml:"targets"`
	// Isolation, when set, is what the copies of this plan's tests may
	// reach, instead of their resources' isolation.
	Isolation *Isolation `yaml:"isolation"`
	// Limits, when set, cap the copies of this plan's tests: each limit
	// it sets replaces its resources' own.
	Limits *Limits `yaml:"limits"`
	// RetryInterrupted is how many times a test that vigil's stop or
	// death interrupted (ABORTED) is queued again for the same recovery
	// point (default 2; 0 never).
	RetryInterrupted *int `yaml:"retry_interrupted"`
	// Restore, when set, is how this plan's tests make their copies of
	// directories and apps, instead of their resources' restore:
	// RestoreFull or RestoreInstant.
	Restore string `yaml:"restore"`

	Cron cron.Schedule `yaml:"-"`
}

// Targets are the recovery time and recovery point objectives a restore
// test is measured against.
type Targets struct {
	RTO Duration `yaml:"rto"`
	RPO Duration `yaml:"rpo"`
}

// How a restore test makes a copy of a folder (restore: full|instant).
const (
	// RestoreFull writes every file of the recovery point into the copy.
	RestoreFull = "full"
	// RestoreInstant mounts the recovery point read-only with a writable
	// overlay on top: the copy is there at once, and only what is read
	// of it is fetched from the vault.
	RestoreInstant = "instant"
)

// RestoreMode is how a test of plan p makes its copy of resource r:
// the plan's restore, else the resource's, else RestoreFull. Only folder
// types (directory, app) are restored instantly; the others always in
// full.
func RestoreMode(p RestoreTestPlan, r Resource) string {
	mode := r.Restore
	if p.Restore != "" {
		mode = p.Restore
	}
	if rules, _ := rulesOf(r.Type); mode == "" || rules.source != fromFolder {
		return RestoreFull
	}
	return mode
}

// validateRestoreMode checks a restore: key.
func validateRestoreMode(add func(field, format string, args ...any), f, mode string) {
	if mode != "" && mode != RestoreFull && mode != RestoreInstant {
		add(f, "%q: one of %s (write every file of the recovery point into the copy, the default) or %s (mount it read-only with a writable overlay, and fetch only what is read)", mode, RestoreFull, RestoreInstant)
	}
}

// DefaultRestoreTestPlan is the plan of an on-demand restore test.
func DefaultRestoreTestPlan() RestoreTestPlan {
	return RestoreTestPlan{
		Name:                "on-demand",
		RecoveryPoint:       LatestWithinWindow,
		SelectionWindowDays: DefaultSelectionWindowDays,
		ValidationWindow:    Duration(DefaultValidationWindow),
		KeepFor:             Duration(DefaultKeepFor),
		RetryInterrupted:    ptr(DefaultRetryInterrupted),
	}
}

// DefaultRetryInterrupted is how many times an interrupted restore test
// is queued again.
const DefaultRetryInterrupted = 2

func ptr[T any](v T) *T { return &v }

// RestoreTestPlan returns the restore testing plan called name.
func (c *Config) RestoreTestPlan(name string) (RestoreTestPlan, bool) {
	return byName(c.RestoreTesting, name, func(p RestoreTestPlan) string { return p.Name })
}

// TestsVault reports whether the plan tests recovery points in vault
// (every vault when it names none).
func (p RestoreTestPlan) TestsVault(vault string) bool {
	return len(p.Vaults) == 0 || contains(p.Vaults, vault)
}

// TestPlanResources expands a restore testing plan's resource list.
func (c *Config) TestPlanResources(p RestoreTestPlan) []string { return c.expandResources(p.Resources) }

func (p *RestoreTestPlan) setDefaults() {
	d := DefaultRestoreTestPlan()
	if p.RecoveryPoint == "" {
		p.RecoveryPoint = d.RecoveryPoint
	}
	if p.SelectionWindowDays == 0 {
		p.SelectionWindowDays = d.SelectionWindowDays
	}
	if p.ValidationWindow == 0 {
		p.ValidationWindow = d.ValidationWindow
	}
	if p.KeepFor == 0 {
		p.KeepFor = d.KeepFor
	}
	if p.RetryInterrupted == nil {
		p.RetryInterrupted = d.RetryInterrupted
	}
	if p.Isolation != nil {
		p.Isolation.setDefaults()
	}
}

func (r *Resource) setDefaults() {
	r.Isolation.setDefaults()
	for _, h := range []*Hook{r.BeforeBackup, r.AfterBackup} {
		if h != nil && h.Timeout == 0 {
			h.Timeout = Duration(DefaultHookTimeout)
		}
	}
	for i := range r.Validate {
		v := &r.Validate[i]
		switch {
		case v.HTTP != nil:
			if v.HTTP.Method == "" {
				v.HTTP.Method = "GET"
			}
			if v.HTTP.Path == "" {
				v.HTTP.Path = "/"
			}
			if v.HTTP.ExpectStatus == 0 {
				v.HTTP.ExpectStatus = 200
			}
			if v.HTTP.Timeout == 0 {
				v.HTTP.Timeout = Duration(DefaultHTTPTimeout)
			}
		case v.TCP != nil:
			if v.TCP.Timeout == 0 {
				v.TCP.Timeout = Duration(DefaultTCPTimeout)
			}
		case v.Command != nil:
			if v.Command.Timeout == 0 {
				v.Command.Timeout = Duration(DefaultCommandTimeout)
			}
		case v.Checksum != nil:
			if v.Checksum.SamplePercent == 0 {
				v.Checksum.SamplePercent = 100
			}
		case v.SQL != nil:
			if v.SQL.Timeout == 0 {
				v.SQL.Timeout = Duration(DefaultSQLTimeout)
			}
		}
	}
	// A restore test always proves something: without validators, a
	// directory's files are compared with the recovery point, and an app
	// must at least accept connections on its port. A database needs
	// none: every restore test of one checks its tables and row counts.
	if rules, _ := rulesOf(r.Type); len(r.Validate) == 0 && rules.defaultValidate != nil {
		r.Validate = rules.defaultValidate()
	}
}

// validateResource checks what a resource of each type needs.
func validateResource(add func(field, format string, args ...any), f string, r Resource) {
	validateSource(add, f, r)
	validateExcludes(add, f, r)
	validateHook(add, f+".before_backup", r.BeforeBackup)
	validateHook(add, f+".after_backup", r.AfterBackup)
	rules, _ := rulesOf(r.Type)
	validateRestoreMode(add, f+".restore", r.Restore)
	if r.Restore == RestoreInstant && rules.source != fromFolder {
		add(f+".restore", "instant restores are for folders (types %s): a %s copy is restored in full; remove restore: instant", strings.Join(typeNames(func(r typeRules) bool { return r.source == fromFolder }), " and "), r.Type)
	}
	if rules.runs {
		if len(r.Run) == 0 {
			add(f+".run", "is missing: an app needs the command that starts a copy of it, such as [\"python3\", \"-m\", \"http.server\", \"{{.Port}}\", \"--directory\", \"{{.Dir}}\"]")
		}
		for j, arg := range r.Run {
			if err := checkTemplate(arg); err != nil {
				add(fmt.Sprintf("%s.run[%d]", f, j), "%v", err)
			}
		}
		r.Isolation.validate(add, f+".isolation")
		r.Limits.validate(add, f+".limits")
	} else if len(r.Run) > 0 || len(r.Env) > 0 || len(r.Isolation.Allow) > 0 || r.Isolation.Network == NetworkHost || r.Limits != (Limits{}) {
		add(f, "run, env, isolation and limits belong to type %s, not %s", strings.Join(typeNames(func(r typeRules) bool { return r.runs }), " and "), r.Type)
	}
	for j, v := range r.Validate {
		vf := fmt.Sprintf("%s.validate[%d]", f, j)
		n := 0
		for _, set := range []bool{v.HTTP != nil, v.TCP != nil, v.Command != nil, v.Checksum != nil, v.External != nil, v.SQL != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			add(vf, "needs exactly one of http, tcp, command, checksum, external, sql")
			continue
		}
		needsApp := v.HTTP != nil || v.TCP != nil
		if needsApp && !rules.runs {
			add(vf, "%s validators need a running app: resource type %s has none", v.Kind(), r.Type)
		}
		if v.SQL != nil && !rules.database {
			add(vf, "sql validators query a restored database: resource type %s is not one", r.Type)
		}
		if v.Checksum != nil && rules.source == fromServer {
			add(vf, "checksum compares restored files: a %s resource is restored into a database; use sql validators", r.Type)
		}
		switch {
		case v.HTTP != nil:
			h := v.HTTP
			if u, err := url.Parse(h.Path); err != nil || !strings.HasPrefix(h.Path, "/") || u.Host != "" || u.Scheme != "" {
				add(vf+".http.path", "%q is not a URL path: write it like /health or /api/status?full=1", h.Path)
			}
			if h.ExpectStatus < 100 || h.ExpectStatus > 599 {
				add(vf+".http.expect_status", "%d is not an HTTP status", h.ExpectStatus)
			}
			if strings.ContainsAny(h.Method, " /:") || strings.ToUpper(h.Method) != h.Method {
				add(vf+".http.method", "%q is not an HTTP method such as GET or HEAD", h.Method)
			}
			if h.Timeout < 0 {
				add(vf+".http.timeout", "must not be negative")
			}
		case v.TCP != nil:
			if v.TCP.Timeout < 0 {
				add(vf+".tcp.timeout", "must not be negative")
			}
		case v.Command != nil:
			if len(v.Command.Run) == 0 {
				add(vf+".command.run", "is missing: the program and its arguments, such as [\"./check.sh\"]")
			}
			if v.Command.Timeout < 0 {
				add(vf+".command.timeout", "must not be negative")
			}
		case v.Checksum != nil:
			if p := v.Checksum.SamplePercent; !(p > 0 && p <= 100) { // NaN (.nan) too
				add(vf+".checksum.sample_percent", "%v must be more than 0 and at most 100", p)
			}
		case v.SQL != nil:
			q := v.SQL
			if strings.TrimSpace(q.Query) == "" {
				add(vf+".sql.query", "is missing: the query to run against the restored database")
			}
			expects := 0
			for _, set := range []bool{q.Expect != nil, q.ExpectRows != nil, q.ExpectTrue} {
				if set {
					expects++
				}
			}
			if expects != 1 {
				add(vf+".sql", "needs exactly one of expect (the single value, as text), expect_rows, expect_true")
			}
			if q.ExpectRows != nil && *q.ExpectRows < 0 {
				add(vf+".sql.expect_rows", "must not be negative")
			}
			if q.Timeout < 0 {
				add(vf+".sql.timeout", "must not be negative")
			}
		}
	}
}

// checkTemplate parses an argument of run and executes it on sample fields,
// so that a misspelt field fails at load instead of at the first test.
func checkTemplate(arg string) error {
	t, err := template.New("run").Option("missingkey=error").Parse(arg)
	if err != nil {
		return fmt.Errorf("%q is not a valid template: %v", arg, err)
	}
	if err := t.Execute(&strings.Builder{}, RunFields{Dir: "/x", Host: "127.0.0.1", Port: 1}); err != nil {
		return fmt.Errorf("%q: only {{.Dir}}, {{.Host}} and {{.Port}} can be used: %v", arg, err)
	}
	return nil
}

// ExpandRun fills in an app's run arguments.
func (r Resource) ExpandRun(f RunFields) ([]string, error) {
	out := make([]string, len(r.Run))
	for i, arg := range r.Run {
		t, err := template.New("run").Option("missingkey=error").Parse(arg)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		if err := t.Execute(&b, f); err != nil {
			return nil, err
		}
		out[i] = b.String()
	}
	return out, nil
}

func (c *Config) validateRestoreTesting(add func(field, format string, args ...any), resources map[string]bool) {
	seen := map[string]bool{}
	for i := range c.RestoreTesting {
		p := &c.RestoreTesting[i]
		f := fmt.Sprintf("restore_testing[%d]", i)
		checkName(add, f, "restore testing plan", p.Name, seen)
		if p.Name == "on-demand" {
			add(f+".name", "\"on-demand\" names restore tests started by hand: pick another name")
		}
		if p.Schedule != "" {
			if s, err := parseSchedule(p.Schedule, p.Timezone); err != nil {
				add(f+".schedule", "%v", err)
			} else {
				p.Cron = s
			}
		}
		c.checkResourceList(add, f+".resources", p.Resources, resources)
		for _, v := range p.Vaults {
			if _, ok := c.Vault(v); !ok {
				add(f+".vaults", "unknown vault %q (known: %s)", v, strings.Join(c.VaultNames(), ", "))
			}
		}
		if p.RecoveryPoint != LatestWithinWindow && p.RecoveryPoint != RandomWithinWindow {
			add(f+".recovery_point", "%q: one of %s, %s", p.RecoveryPoint, LatestWithinWindow, RandomWithinWindow)
		}
		// The window is multiplied into a duration: beyond 100 years it
		// would wrap around to a window in the future.
		if p.SelectionWindowDays < 0 || p.SelectionWindowDays > MaxSelectionWindowDays {
			add(f+".selection_window_days", "%d must be between 1 and %d (100 years)", p.SelectionWindowDays, MaxSelectionWindowDays)
		}
		if p.Isolation != nil {
			p.Isolation.validate(add, f+".isolation")
		}
		if p.Limits != nil {
			p.Limits.validate(add, f+".limits")
		}
		validateRestoreMode(add, f+".restore", p.Restore)
		if p.RetryInterrupted != nil && (*p.RetryInterrupted < 0 || *p.RetryInterrupted > 100) {
			add(f+".retry_interrupted", "%d must be between 0 (never) and 100", *p.RetryInterrupted)
		}
		for name, d := range map[string]Duration{"start_window": p.StartWindow, "validation_window": p.ValidationWindow, "keep_for": p.KeepFor, "targets.rto": p.Targets.RTO, "targets.rpo": p.Targets.RPO} {
			if d < 0 {
				add(f+"."+name, "must not be negative")
			}
		}
	}
}
