// Package config loads vigil's YAML configuration, fills in defaults and
// refuses, at start, anything that would only fail later: every error names
// the field and says what is wrong with it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/dbclient"
	"github.com/vigil-backup/vigil/retention"
)

// Defaults.
const (
	DefaultPath          = "vigil.yaml"
	DefaultListen        = "127.0.0.1:8420"
	DefaultDataDir       = "vigil-data"
	DefaultCheckInterval = time.Minute

	// A console session ends after DefaultSessionIdle without use, and
	// DefaultSessionMax after sign-in however much it is used: a working
	// day away signs one out, and a stolen cookie lives a week at most.
	DefaultSessionIdle = 12 * time.Hour
	DefaultSessionMax  = 7 * 24 * time.Hour

	DefaultReadTimeout        = 30 * time.Second
	DefaultWriteTimeout       = 2 * time.Minute
	DefaultIdleTimeout        = 2 * time.Minute
	DefaultMaxUnauthenticated = 64
	MaxUnauthenticatedLimit   = 100000
)

// Config is the whole configuration file. Field names are the YAML keys
// people script against; keep them stable.
type Config struct {
	Server      Server       `yaml:"server"`
	DataDir     string       `yaml:"data_dir"`
	Catalog     string       `yaml:"catalog"`
	Node        string       `yaml:"node"`
	Lifecycle   Lifecycle    `yaml:"lifecycle"`
	Console     Console      `yaml:"console"`
	Workers     Workers      `yaml:"workers"`
	Vaults      []Vault      `yaml:"vaults"`
	Resources   []Resource   `yaml:"resources"`
	BackupPlans []BackupPlan `yaml:"backup_plans"`
	// RestoreTesting lists the restore testing plans.
	RestoreTesting []RestoreTestPlan `yaml:"restore_testing"`
	Notifications  []Notification    `yaml:"notifications"`
	// Log is how serve and worker write their own log (standard error).
	Log Log `yaml:"log"`

	// Path is the file the configuration was read from ("" when built in code).
	Path string `yaml:"-"`
}

// Server is where the API listens, and how long it waits for clients.
type Server struct {
	Listen string `yaml:"listen"`
	// ReadTimeout bounds reading a whole request, body included;
	// WriteTimeout the time from its headers to the end of the answer;
	// IdleTimeout how long a kept-alive connection may wait for its next
	// request. Long polls of events, vault verifications and the
	// console's event stream are not bound by WriteTimeout.
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	IdleTimeout  Duration `yaml:"idle_timeout"`
	// MaxUnauthenticated is how many requests without the API token or a
	// console session (sign-ins among them) are served at once; more are
	// answered 503.
	MaxUnauthenticated int `yaml:"max_unauthenticated"`
}

// Log is the server's log format: "text" (the default, slog's key=value
// lines) or "json" (one JSON object per line, for a log collector).
type Log struct {
	Format string `yaml:"format"`
}

// Log formats.
const (
	LogText = "text"
	LogJSON = "json"
)

// Lifecycle tunes expiry of recovery points.
type Lifecycle struct {
	// CheckInterval is how often expired recovery points are looked for.
	CheckInterval Duration `yaml:"check_interval"`
}

// Console tunes the web console's sessions.
type Console struct {
	// SessionIdle ends a session not used for this long.
	SessionIdle Duration `yaml:"session_idle"`
	// SessionMax ends a session this long after its sign-in, used or not.
	SessionMax Duration `yaml:"session_max"`
}

// Workers says how many jobs of each kind one process (`vigil serve` or
// `vigil worker`) runs at once, and when a silent worker counts as dead.
// A kind left out runs as many at once as `--workers` says (4 by
// default); 0 runs none of that kind in this process.
type Workers struct {
	Backup      *int `yaml:"backup"`
	Restore     *int `yaml:"restore"`
	RestoreTest *int `yaml:"restore_test"`
	// HeartbeatTimeout is how long a worker may go without writing its
	// heartbeat to the catalog before the others count it as dead. It
	// writes one every third of it.
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout"`
	// JobTimeout bounds one attempt of a backup, restore, restore test or
	// vault maintenance: longer than the longest expected one (a first
	// backup of the largest resource). A job still running then is
	// cancelled and ends ABORTED, saying so.
	JobTimeout Duration `yaml:"job_timeout"`
}

// DefaultHeartbeatTimeout is the default workers.heartbeat_timeout: long
// enough for a PostgreSQL failover, short enough that a dead worker's jobs
// end within minutes.
const DefaultHeartbeatTimeout = time.Minute

// DefaultJobTimeout is the default workers.job_timeout: a day covers a
// first backup of several TB at the speed of a disk.
const DefaultJobTimeout = 24 * time.Hour

// DefaultS3RetryFor is the default retry_for of an S3 vault: a restart or
// fail-over of the S3 service, or a minute of throttling, passes without a
// failed job.
const DefaultS3RetryFor = 2 * time.Minute

// MaxWorkersPerKind bounds workers.backup, restore and restore_test.
const MaxWorkersPerKind = 1000

// Vault is a named vault and where its password comes from. The password
// itself is never part of the file, so the file can be shared and committed.
type Vault struct {
	Name string `yaml:"name"`
	// Kind is whose repository the vault is: vigil's own (empty, or
	// "vigil"), or one another tool writes and vigil only reads and
	// restore-tests (KindKopia, KindRestic; see Foreign).
	Kind    string `yaml:"kind"`
	Storage string `yaml:"storage"`
	// Repository is a restic vault's location, as restic's -r takes it:
	// a folder, s3:…, sftp:…, rest:….
	Repository string `yaml:"repository"`
	// ResticPath is the restic program of a restic vault, when it is
	// not the one on PATH.
	ResticPath string `yaml:"restic_path"`
	// Sync is when a foreign vault's snapshots are listed into the
	// catalog as recovery points (default: every 15 minutes).
	Sync *VaultSync `yaml:"sync"`

	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`

	// Password is read from PasswordEnv or PasswordFile by Load.
	Password string `yaml:"-" json:"-"`

	// S3 settings, for a vault whose storage is s3://bucket/prefix.
	Endpoint string `yaml:"endpoint"`
	Region   string `yaml:"region"`
	// PathStyle, when set, must agree with how Kopia's S3 storage
	// addresses buckets on the endpoint (see S3PathStyle).
	PathStyle *bool `yaml:"path_style"`
	// Insecure talks plain HTTP to the endpoint; only for a server on a
	// trusted network, such as a local test server.
	Insecure bool   `yaml:"insecure"`
	CAFile   string `yaml:"ca_file"`
	// The S3 keys come from the environment or from files, never from
	// this file. With none of these, Kopia reads AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY, then the machine's instance role.
	AccessKeyEnv  string `yaml:"access_key_env"`
	AccessKeyFile string `yaml:"access_key_file"`
	SecretKeyEnv  string `yaml:"secret_key_env"`
	SecretKeyFile string `yaml:"secret_key_file"`
	// AccessKey and SecretKey are read by LoadPasswords.
	AccessKey string `yaml:"-" json:"-"`
	SecretKey string `yaml:"-" json:"-"`
	// RetryFor is how long a request to the bucket is tried again while
	// the service is unreachable or failing (refused or cut connections,
	// timeouts, 5xx, SlowDown), before the job fails naming the error.
	RetryFor Duration `yaml:"retry_for"`

	// RepairOnDamage runs `vigil vault repair` on the vault as soon as a
	// verify finds damage, so that the next backups store the damaged data
	// again without waiting for a person.
	RepairOnDamage bool `yaml:"repair_on_damage"`

	// ExpireDays or ExpireAfter is how long an on-demand backup into this
	// vault is kept when its request gives no expiry (neither: forever).
	// Plans keep their own expiry or retention rules.
	ExpireDays  int      `yaml:"expire_days"`
	ExpireAfter Duration `yaml:"expire_after"`

	// Verify, when set, reads the vault back a little each night, so that
	// every stored byte has been read back and checked within a window.
	Verify *VaultVerify `yaml:"verify"`
}

// VaultVerify is a vault's rolling verification: on its schedule, it reads
// back the packs least recently checked (never read first, none that a
// restore test read in the last day), up to MaxBytesPerDay, so that every
// pack is read back within ReadBackWithin.
type VaultVerify struct {
	ReadBackWithin Duration `yaml:"read_back_within"`
	MaxBytesPerDay Bytes    `yaml:"max_bytes_per_day"`
	Schedule       string   `yaml:"schedule"`
	Timezone       string   `yaml:"timezone"`
	// Cron is the parsed schedule, in Timezone (or the server's).
	Cron cron.Schedule `yaml:"-"`
}

// DefaultExpiry is how long an on-demand backup into the vault is kept
// when its request gives no expiry; 0 keeps it forever.
func (v Vault) DefaultExpiry() time.Duration { return expiry(v.ExpireDays, v.ExpireAfter) }

// Resource is something to back up.
type Resource struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// Path is the folder that holds the resource's data; for an sqlite
	// resource, the database file.
	Path string `yaml:"path"`
	// DSN names a postgres or mysql resource's database. Written in the
	// file it must not hold a password; a DSN with a password comes from
	// DSNEnv or DSNFile.
	DSN     string `yaml:"dsn"`
	DSNEnv  string `yaml:"dsn_env"`
	DSNFile string `yaml:"dsn_file"`
	// Client programs of a database resource, when they are not the ones
	// on PATH (pg_dump must be at least as new as the server).
	PGDumpPath    string `yaml:"pg_dump_path"`
	PGRestorePath string `yaml:"pg_restore_path"`
	MySQLDumpPath string `yaml:"mysqldump_path"`
	MySQLPath     string `yaml:"mysql_path"`
	// Run starts a copy of an app resource; each argument is a Go template
	// with the fields of RunFields.
	Run []string          `yaml:"run"`
	Env map[string]string `yaml:"env"`
	// Isolation says what a copy of an app may reach (default: nothing
	// but itself).
	Isolation Isolation `yaml:"isolation"`
	// Limits cap a copy's memory and processes (default: none).
	Limits Limits `yaml:"limits"`
	// Validate lists the checks a restored copy must pass.
	Validate []Validator `yaml:"validate"`
	// Restore is how a restore test makes its copy of a directory or
	// app: RestoreFull (the default) or RestoreInstant. A plan's own
	// restore comes first.
	Restore string `yaml:"restore"`
	// Exclude, ExcludeIfPresent, OneFileSystem and ExcludeLargerThan
	// leave entries of a directory or app resource's folder out of its
	// backups (see Excludes).
	Exclude           []string `yaml:"exclude"`
	ExcludeIfPresent  string   `yaml:"exclude_if_present"`
	OneFileSystem     bool     `yaml:"one_file_system"`
	ExcludeLargerThan Bytes    `yaml:"exclude_larger_than"`
	// BeforeBackup and AfterBackup run around each backup of the
	// resource (see Hook).
	BeforeBackup *Hook `yaml:"before_backup"`
	AfterBackup  *Hook `yaml:"after_backup"`
	// Source, instead of Path, says that another tool backs the resource
	// up into a foreign vault: vigil restore-tests that tool's snapshots
	// of the path and never backs it up itself.
	Source *ForeignSource `yaml:"source"`

	// Server is the parsed DSN, password included, once LoadPasswords has
	// read it; Tools the client programs, once LookupTools has found them.
	Server dbclient.Server `yaml:"-" json:"-"`
	Tools  dbclient.Tools  `yaml:"-" json:"-"`
}

// BackupPlan starts backups by itself on a cron schedule.
type BackupPlan struct {
	Name        string   `yaml:"name"`
	Schedule    string   `yaml:"schedule"`
	Timezone    string   `yaml:"timezone"`
	Resources   []string `yaml:"resources"`
	Vault       string   `yaml:"vault"`
	ExpireDays  int      `yaml:"expire_days"`
	ExpireAfter Duration `yaml:"expire_after"`
	// CopyTo copies each recovery point the plan's backups make into
	// other vaults, each copy with its own lifecycle.
	CopyTo []CopyRule `yaml:"copy_to"`
	// Retention keeps the plan's recovery points by restic's keep rules
	// instead of a fixed expiry (see docs/retention.md).
	Retention *RetentionRules `yaml:"retention"`

	// Cron is the parsed schedule, in Timezone (or the server's).
	Cron cron.Schedule `yaml:"-"`
}

// RetentionRules are a plan's keep rules, as restic's `forget --keep-*`
// options: each count keeps that many points (0 or left out: the rule is
// off).
type RetentionRules struct {
	KeepLast    int `yaml:"keep_last"`
	KeepHourly  int `yaml:"keep_hourly"`
	KeepDaily   int `yaml:"keep_daily"`
	KeepWeekly  int `yaml:"keep_weekly"`
	KeepMonthly int `yaml:"keep_monthly"`
	KeepYearly  int `yaml:"keep_yearly"`
}

// Policy returns the rules for retention.Apply.
func (r RetentionRules) Policy() retention.Policy {
	return retention.Policy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily, Weekly: r.KeepWeekly, Monthly: r.KeepMonthly, Yearly: r.KeepYearly}
}

// Location is the time zone the plan's days, weeks, months and years
// are counted in: its timezone, else the server's.
func (p BackupPlan) Location() *time.Location {
	if p.Timezone != "" {
		if loc, err := time.LoadLocation(p.Timezone); err == nil {
			return loc
		}
	}
	return time.Local
}

// Zone names the time zone of Location for people: the plan's timezone,
// else "the server's time zone (CET)".
func (p BackupPlan) Zone() string {
	if p.Timezone != "" {
		return p.Timezone
	}
	name, _ := time.Now().In(time.Local).Zone()
	return "the server's time zone (" + name + ")"
}

// CopyRule copies a plan's new recovery points into Vault, keeping each
// copy ExpireDays or ExpireAfter (neither: forever) from the copy's start.
type CopyRule struct {
	Vault       string   `yaml:"vault"`
	ExpireDays  int      `yaml:"expire_days"`
	ExpireAfter Duration `yaml:"expire_after"`
}

// Expiry returns how long a copy is kept (0: forever).
func (r CopyRule) Expiry() time.Duration { return expiry(r.ExpireDays, r.ExpireAfter) }

// Duration is a time.Duration written as "90s", "15m" or "36h" in YAML.
type Duration time.Duration

// UnmarshalYAML reads a Go duration string, or a whole number of days
// such as 30d, which Go's durations do not have.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 100*365 {
			*d = Duration(time.Duration(n) * 24 * time.Hour)
			return nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return valueError(n, "%q is not a duration: write it like 90s, 15m, 36h or 30d", s)
	}
	*d = Duration(v)
	return nil
}

// Locate returns the config path to use: the flag value, else $VIGIL_CONFIG,
// else ./vigil.yaml.
func Locate(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("VIGIL_CONFIG"); env != "" {
		return env
	}
	return DefaultPath
}

// Load reads, defaults and validates the file at path. Relative paths in the
// file are taken relative to the file's own folder, so a config means the
// same thing whatever the working directory.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read config: %s does not exist: pass --config FILE or set VIGIL_CONFIG", path)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve config path: %w", err)
	}
	cfg.Path = abs
	cfg.resolvePaths(filepath.Dir(abs))
	return cfg, nil
}

// Parse decodes and validates YAML without touching the file system: paths
// stay as written and vault passwords are not read.
func Parse(b []byte) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// Unknown keys and values of the wrong kind leave the rest of the
	// file decoded: they are listed together with what validation finds,
	// so that one run names every problem. Bad YAML stops here.
	var errs []error
	if err := dec.Decode(&cfg); err != nil {
		decodeErrs, ok := decodeErrors(err)
		if !ok {
			return nil, fmt.Errorf("parse YAML: %w", err)
		}
		errs = decodeErrs
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

func (c *Config) setDefaults() {
	if c.Server.Listen == "" {
		c.Server.Listen = DefaultListen
	}
	for _, d := range []struct {
		field *Duration
		def   time.Duration
	}{{&c.Server.ReadTimeout, DefaultReadTimeout}, {&c.Server.WriteTimeout, DefaultWriteTimeout}, {&c.Server.IdleTimeout, DefaultIdleTimeout}} {
		if *d.field == 0 {
			*d.field = Duration(d.def)
		}
	}
	if c.Server.MaxUnauthenticated == 0 {
		c.Server.MaxUnauthenticated = DefaultMaxUnauthenticated
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Log.Format == "" {
		c.Log.Format = LogText
	}
	if c.Lifecycle.CheckInterval == 0 {
		c.Lifecycle.CheckInterval = Duration(DefaultCheckInterval)
	}
	if c.Console.SessionIdle == 0 {
		c.Console.SessionIdle = Duration(DefaultSessionIdle)
	}
	if c.Console.SessionMax == 0 {
		c.Console.SessionMax = Duration(DefaultSessionMax)
	}
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	if c.Workers.HeartbeatTimeout == 0 {
		c.Workers.HeartbeatTimeout = Duration(DefaultHeartbeatTimeout)
	}
	if c.Workers.JobTimeout == 0 {
		c.Workers.JobTimeout = Duration(DefaultJobTimeout)
	}
	for i := range c.Vaults {
		if c.Vaults[i].IsS3() && c.Vaults[i].RetryFor == 0 {
			c.Vaults[i].RetryFor = Duration(DefaultS3RetryFor)
		}
	}
	for i := range c.Resources {
		c.Resources[i].setDefaults()
	}
	for i := range c.RestoreTesting {
		c.RestoreTesting[i].setDefaults()
	}
	for i := range c.Notifications {
		c.Notifications[i].setDefaults()
	}
}

func (c *Config) validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		add("server.listen", "%q is not host:port (for example 127.0.0.1:8420)", c.Server.Listen)
	}
	if c.Log.Format != LogText && c.Log.Format != LogJSON {
		add("log.format", "%q is not a log format: use text or json", c.Log.Format)
	}
	for name, d := range map[string]Duration{"read_timeout": c.Server.ReadTimeout, "write_timeout": c.Server.WriteTimeout, "idle_timeout": c.Server.IdleTimeout} {
		if d < Duration(time.Second) {
			add("server."+name, "%s is less than 1s: no client could send or read a request in time", time.Duration(d))
		}
	}
	if n := c.Server.MaxUnauthenticated; n < 1 || n > MaxUnauthenticatedLimit {
		add("server.max_unauthenticated", "%d must be between 1 and %d", n, MaxUnauthenticatedLimit)
	}
	if c.Catalog != "" && !strings.HasPrefix(c.Catalog, "postgres://") && !strings.HasPrefix(c.Catalog, "postgresql://") {
		add("catalog", "must be empty (SQLite in data_dir) or a postgres:// URL")
	}
	if c.Lifecycle.CheckInterval < Duration(time.Second) {
		add("lifecycle.check_interval", "must be at least 1s")
	}
	// The console records a session's use at most once a minute, so a
	// shorter idle limit would end sessions in use.
	if c.Console.SessionIdle < Duration(2*time.Minute) {
		add("console.session_idle", "must be at least 2m")
	}
	if c.Console.SessionMax < c.Console.SessionIdle {
		add("console.session_max", "must be at least console.session_idle (%s)", time.Duration(c.Console.SessionIdle))
	}

	for name, n := range map[string]*int{"backup": c.Workers.Backup, "restore": c.Workers.Restore, "restore_test": c.Workers.RestoreTest} {
		if n != nil && (*n < 0 || *n > MaxWorkersPerKind) {
			add("workers."+name, "%d must be between 0 (none in this process) and %d", *n, MaxWorkersPerKind)
		}
	}
	if c.Workers.HeartbeatTimeout < Duration(3*time.Second) {
		add("workers.heartbeat_timeout", "%s is less than 3s: a worker writes its heartbeat every third of it, and a slow catalog would make live workers look dead", time.Duration(c.Workers.HeartbeatTimeout))
	}

	if c.Workers.JobTimeout < Duration(time.Minute) {
		add("workers.job_timeout", "%s is less than 1m: give the time the longest backup, restore or restore test may take", time.Duration(c.Workers.JobTimeout))
	}

	vaults := map[string]bool{}
	for i, v := range c.Vaults {
		f := fmt.Sprintf("vaults[%d]", i)
		checkName(add, f, "vault", v.Name, vaults)
		checkExpiry(add, f, v.ExpireDays, v.ExpireAfter)
		validateKind(add, f, &c.Vaults[i])
		if v.Kind == KindRestic {
			// given by repository:, checked by validateKind
		} else if v.Storage == "" {
			add(f+".storage", "is missing: give a folder for the vault, or s3://bucket/prefix")
		} else if v.IsS3() {
			validateS3(add, f, v)
		} else if strings.Contains(v.Storage, "://") {
			add(f+".storage", "%q: give a local folder or s3://bucket/prefix", v.Storage)
		} else if s3 := v.s3Keys(); s3 != "" {
			add(f+"."+s3, "is for S3 vaults only; the vault's storage %q is a folder", v.Storage)
		}
		switch {
		case v.PasswordEnv == "" && v.PasswordFile == "":
			add(f, "vault %q needs password_env or password_file", v.Name)
		case v.PasswordEnv != "" && v.PasswordFile != "":
			add(f, "vault %q has both password_env and password_file: keep one", v.Name)
		}
		if v.Verify != nil {
			validateVaultVerify(add, f+".verify", c.Vaults[i].Verify)
		}
	}

	resources := map[string]bool{}
	for i, r := range c.Resources {
		f := fmt.Sprintf("resources[%d]", i)
		checkName(add, f, "resource", r.Name, resources)
		_, known := rulesOf(r.Type)
		switch {
		case r.Type == "":
			add(f+".type", "is missing: one of %s", strings.Join(typeNames(nil), ", "))
		case !known:
			add(f+".type", "unknown type %q: one of %s", r.Type, strings.Join(typeNames(nil), ", "))
		}
		validateResource(add, f, r)
		if r.Source != nil {
			c.validateForeignSource(add, f, r)
		}
	}
	c.validateRestoreTesting(add, resources)
	c.validateNotifications(add)

	plans := map[string]bool{}
	for i := range c.BackupPlans {
		p := &c.BackupPlans[i]
		f := fmt.Sprintf("backup_plans[%d]", i)
		switch {
		case p.Name == "":
			add(f+".name", "is missing")
		case plans[p.Name]:
			add(f+".name", "duplicate plan name %q", p.Name)
		}
		plans[p.Name] = true
		if p.Schedule == "" {
			add(f+".schedule", "is missing: a cron expression such as \"0 2 * * *\"")
		} else if s, err := parseSchedule(p.Schedule, p.Timezone); err != nil {
			add(f+".schedule", "%v", err)
		} else {
			p.Cron = s
		}
		c.checkResourceList(add, f+".resources", p.Resources, resources)
		c.checkBackedUp(add, f+".resources", p.Resources)
		if !vaults[p.Vault] {
			add(f+".vault", "unknown vault %q (known: %s)", p.Vault, strings.Join(c.VaultNames(), ", "))
		} else if c.foreign(p.Vault) {
			add(f+".vault", "vault %q is a %s repository that another tool writes: vigil only reads it; back up into a vault of vigil's own", p.Vault, c.kind(p.Vault))
		}
		checkExpiry(add, f, p.ExpireDays, p.ExpireAfter)
		if p.Retention != nil {
			checkRetention(add, f, *p)
		}
		copyVaults := map[string]bool{}
		for j, r := range p.CopyTo {
			cf := fmt.Sprintf("%s.copy_to[%d]", f, j)
			switch {
			case !vaults[r.Vault]:
				add(cf+".vault", "unknown vault %q (known: %s)", r.Vault, strings.Join(c.VaultNames(), ", "))
			case r.Vault == p.Vault:
				add(cf+".vault", "%q is the vault the plan backs up into: copy into another one", r.Vault)
			case c.foreign(r.Vault):
				add(cf+".vault", "vault %q is a %s repository that another tool writes: vigil only reads it; copy into a vault of vigil's own", r.Vault, c.kind(r.Vault))
			case copyVaults[r.Vault]:
				add(cf+".vault", "vault %q is named twice: keep one copy rule per vault", r.Vault)
			}
			copyVaults[r.Vault] = true
			checkExpiry(add, cf, r.ExpireDays, r.ExpireAfter)
		}
	}
	return errors.Join(errs...)
}

// checkExpiry checks a pair of expire_days and expire_after in range,
// days before Expiry multiplies them into a duration that would wrap
// around.
func checkExpiry(add func(field, format string, args ...any), f string, days int, after Duration) {
	if days < 0 || after < 0 {
		add(f, "expire_days and expire_after must not be negative")
	}
	if int64(days) > vigil.MaxExpiryDays {
		add(f+".expire_days", "%d is more than %d (100 years): leave it out to keep the recovery points forever", days, vigil.MaxExpiryDays)
	}
	if after > 0 && after < Duration(time.Second) {
		add(f+".expire_after", "%s is shorter than a second: its recovery points would expire as they are made", time.Duration(after))
	}
	if time.Duration(after) > vigil.MaxExpiry {
		add(f+".expire_after", "%s is more than 100 years (%s): leave it out to keep the recovery points forever", time.Duration(after), vigil.MaxExpiry)
	}
	if days > 0 && after > 0 {
		add(f, "has both expire_days and expire_after: keep one")
	}
}

// checkRetention refuses keep rules that keep nothing, counts out of range,
// and rules next to a fixed expiry: a point kept by a rule would still
// expire on its date, so one of the two would silently not hold.
func checkRetention(add func(field, format string, args ...any), f string, p BackupPlan) {
	r := *p.Retention
	for _, k := range []struct {
		key string
		n   int
	}{{"keep_last", r.KeepLast}, {"keep_hourly", r.KeepHourly}, {"keep_daily", r.KeepDaily}, {"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}, {"keep_yearly", r.KeepYearly}} {
		if k.n < 0 || k.n > retention.MaxKeep {
			add(f+".retention."+k.key, "%d must be between 0 (rule off) and %d", k.n, retention.MaxKeep)
		}
	}
	if r.Policy().Empty() {
		add(f+".retention", "keeps nothing: give at least one of keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly above 0, or leave retention out to keep the recovery points forever")
	}
	if p.ExpireDays > 0 || p.ExpireAfter > 0 {
		add(f+".retention", "the plan also has expire_days or expire_after: keep either the retention rules or the fixed expiry")
	}
}

// checkResourceList refuses an empty list of resource names, or one naming
// a resource that does not exist; "*" means all.
func (c *Config) checkResourceList(add func(field, format string, args ...any), field string, names []string, known map[string]bool) {
	if len(names) == 0 {
		add(field, "is empty: list resource names, or [\"*\"] for all")
	}
	for _, r := range names {
		if r != "*" && !known[r] {
			add(field, "unknown resource %q (known: %s)", r, strings.Join(c.ResourceNames(), ", "))
		}
	}
}

// validateVaultVerify checks a vault's rolling verification and parses its
// schedule.
func validateVaultVerify(add func(field, format string, args ...any), f string, v *VaultVerify) {
	if v.ReadBackWithin < Duration(24*time.Hour) {
		add(f+".read_back_within", "is missing or less than a day: how long every stored byte may go without being read back, such as 30d")
	}
	if v.MaxBytesPerDay <= 0 {
		add(f+".max_bytes_per_day", "is missing: the most a night reads back, such as 20GiB")
	}
	if v.Schedule == "" {
		add(f+".schedule", "is missing: a cron expression such as \"0 3 * * *\"")
	} else if s, err := parseSchedule(v.Schedule, v.Timezone); err != nil {
		add(f+".schedule", "%v", err)
	} else {
		v.Cron = s
	}
}

// cronParser takes standard five-field cron, an optional leading seconds
// field, and descriptors such as @daily and @every 6h.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseSchedule parses a cron schedule evaluated in the time zone tz (the
// server's when empty).
func parseSchedule(schedule, tz string) (cron.Schedule, error) {
	loc := time.Local
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %q (use a name like Europe/Paris or UTC)", tz)
		}
		loc = l
	}
	s, err := cronParser.Parse(schedule)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron expression (minute hour day-of-month month weekday, optionally seconds first, or @daily, @every 6h): %v", schedule, err)
	}
	return inLocation{s, loc}, nil
}

// inLocation evaluates a cron schedule in a time zone.
type inLocation struct {
	cron.Schedule
	loc *time.Location
}

func (s inLocation) Next(t time.Time) time.Time { return s.Schedule.Next(t.In(s.loc)) }

// resolvePaths makes relative paths absolute against dir.
func (c *Config) resolvePaths(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.DataDir = abs(c.DataDir)
	for i := range c.Vaults {
		if !c.Vaults[i].IsS3() {
			c.Vaults[i].Storage = abs(c.Vaults[i].Storage)
		}
		c.Vaults[i].PasswordFile = abs(c.Vaults[i].PasswordFile)
		if r := c.Vaults[i].Repository; r != "" && !strings.Contains(r, ":") {
			c.Vaults[i].Repository = abs(r) // a folder; s3:, sftp:, local: … are restic's own
		}
		c.Vaults[i].CAFile = abs(c.Vaults[i].CAFile)
		c.Vaults[i].AccessKeyFile = abs(c.Vaults[i].AccessKeyFile)
		c.Vaults[i].SecretKeyFile = abs(c.Vaults[i].SecretKeyFile)
	}
	// A program named with a slash but not absolute ("./check.sh") is
	// found from the config's folder; a bare name ("python3") on PATH.
	program := func(args []string) {
		if len(args) > 0 && strings.Contains(args[0], "/") {
			args[0] = abs(args[0])
		}
	}
	for i := range c.Resources {
		r := &c.Resources[i]
		r.Path = abs(r.Path)
		r.DSNFile = abs(r.DSNFile)
		for _, tool := range []*string{&r.PGDumpPath, &r.PGRestorePath, &r.MySQLDumpPath, &r.MySQLPath} {
			if strings.Contains(*tool, "/") {
				*tool = abs(*tool)
			}
		}
		program(r.Run)
		for _, h := range []*Hook{r.BeforeBackup, r.AfterBackup} {
			if h != nil {
				program(h.Run)
			}
		}
		for _, v := range r.Validate {
			if v.Command != nil {
				program(v.Command.Run)
			}
		}
	}
	for i := range c.Notifications {
		n := &c.Notifications[i]
		program(n.Command)
		if n.Webhook != nil {
			n.Webhook.SecretFile = abs(n.Webhook.SecretFile)
		}
		if n.Email != nil {
			n.Email.PasswordFile = abs(n.Email.PasswordFile)
		}
		if n.NATS != nil {
			n.NATS.CredsFile = abs(n.NATS.CredsFile)
		}
	}
}

// LoadPasswords reads every vault's password, webhook secret and SMTP
// password. The server calls it at start,
// so an unreadable source stops the start instead of the first backup at
// 2 a.m.; clients never need the passwords and never read them.
func (c *Config) LoadPasswords() error {
	var errs []error
	for i := range c.Vaults {
		v := &c.Vaults[i]
		f := fmt.Sprintf("vaults[%d]", i)
		pw, err := readSecret(f, "password", v.PasswordEnv, v.PasswordFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("vault %q: %w", v.Name, err))
		}
		v.Password = pw
		if v.AccessKeyEnv != "" || v.AccessKeyFile != "" {
			if v.AccessKey, err = readSecret(f, "access_key", v.AccessKeyEnv, v.AccessKeyFile); err != nil {
				errs = append(errs, fmt.Errorf("vault %q: %w", v.Name, err))
			}
			if v.SecretKey, err = readSecret(f, "secret_key", v.SecretKeyEnv, v.SecretKeyFile); err != nil {
				errs = append(errs, fmt.Errorf("vault %q: %w", v.Name, err))
			}
		}
	}
	errs = append(errs, c.loadDSNs()...)
	errs = append(errs, c.loadNotificationSecrets()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config %s: %w", c.Path, err)
	}
	return nil
}

// VaultNames returns the configured vault names in file order.
func (c *Config) VaultNames() []string {
	var names []string
	for _, v := range c.Vaults {
		names = append(names, v.Name)
	}
	return names
}

// ResourceNames returns the configured resource names in file order.
func (c *Config) ResourceNames() []string {
	var names []string
	for _, r := range c.Resources {
		names = append(names, r.Name)
	}
	return names
}

// Vault returns the vault called name.
func (c *Config) Vault(name string) (Vault, bool) {
	return byName(c.Vaults, name, func(v Vault) string { return v.Name })
}

// Resource returns the resource called name.
func (c *Config) Resource(name string) (Resource, bool) {
	return byName(c.Resources, name, func(r Resource) string { return r.Name })
}

// BackupPlan returns the backup plan called name.
func (c *Config) BackupPlan(name string) (BackupPlan, bool) {
	return byName(c.BackupPlans, name, func(p BackupPlan) string { return p.Name })
}

// byName returns the element of list called name.
func byName[T any](list []T, name string, nameOf func(T) string) (T, bool) {
	for _, v := range list {
		if nameOf(v) == name {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// PlanResources expands a plan's resource list ("*" means all).
// A resource that a foreign vault holds is not vigil's to back up, so "*"
// leaves it out.
func (c *Config) PlanResources(p BackupPlan) []string {
	var names []string
	for _, n := range c.expandResources(p.Resources) {
		if r, ok := c.Resource(n); !ok || r.Source == nil {
			names = append(names, n)
		}
	}
	return names
}

// expandResources expands a list of resource names in which "*" means all.
func (c *Config) expandResources(names []string) []string {
	if contains(names, "*") {
		return c.ResourceNames()
	}
	return names
}

// Expiry returns how long a plan's recovery points are kept (0: forever).
func (p BackupPlan) Expiry() time.Duration { return expiry(p.ExpireDays, p.ExpireAfter) }

func expiry(days int, after Duration) time.Duration {
	if days > 0 {
		return time.Duration(days) * 24 * time.Hour
	}
	return time.Duration(after)
}

// checkName refuses a missing, malformed or duplicate name, and records it
// in seen.
func checkName(add func(field, format string, args ...any), field, kind, name string, seen map[string]bool) {
	switch {
	case name == "":
		add(field+".name", "is missing")
	case !validName(name):
		add(field+".name", "%q may hold only letters, digits, '-', '_' and '.'", name)
	case seen[name]:
		add(field+".name", "duplicate %s name %q", kind, name)
	}
	seen[name] = true
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != "" && s != "." && s != ".."
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
