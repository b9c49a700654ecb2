// Package sqldb is what the database resource types (resource/postgres,
// resource/mysql, resource/sqlite) share: a database is backed up as a
// consistent dump streamed into the vault, restored into a NEW database
// (or file) that is marked as the restore's the moment it exists, and
// restore-tested by checking the copy's tables and row counts against what
// the backup counted, then running the resource's own SQL and command
// checks against the copy. The engines' own work (dumping, creating,
// loading, dropping) is the database package's.
package sqldb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/database"
	"github.com/vigil-backup/vigil/dbclient"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/internal/disk"
	"github.com/vigil-backup/vigil/internal/units"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/target"
	"github.com/vigil-backup/vigil/validate"
	"github.com/vigil-backup/vigil/vault"
)

// dropTimeout bounds dropping a restored database: a server that does not
// answer makes the clean-up fail (and be retried) rather than hang.
const dropTimeout = 2 * time.Minute

// maxTableDiffs bounds the differing tables a verdict lists.
const maxTableDiffs = 10

// defaultTargetDatabase is the name of a restore's new database.
const defaultTargetDatabase = "vigil_restore_" + resource.Placeholder

var (
	_ resource.Resource      = (*Database)(nil)
	_ resource.SourceChecker = (*Database)(nil)
	_ resource.Copy          = (*Copy)(nil)
)

// Type is a database resource type: its name and its engine's.
type Type struct {
	name, engine string
	file         bool
}

var _ resource.Type = Type{}

// NewServerType returns the type name of databases on a server of engine.
func NewServerType(name, engine string) Type { return Type{name: name, engine: engine} }

// NewFileType returns the type name of databases that engine keeps in one
// file.
func NewFileType(name, engine string) Type { return Type{name: name, engine: engine, file: true} }

func (t Type) Name() string { return t.name }

func (t Type) Open(cfg config.Resource, env resource.Env) (resource.Resource, error) {
	return Open(cfg, env, t.engine, t.file)
}

// Database is a database resource of one engine. A server database
// (postgres, mysql) is restored into a new database on a server, by
// default its own; a file database (sqlite) into a new file.
type Database struct {
	cfg    config.Resource
	env    resource.Env
	engine string
	file   bool
}

// Open returns the database resource of cfg, of engine (the database
// package's engine name). file says the engine keeps a database in one
// file (SQLite) rather than on a server.
func Open(cfg config.Resource, env resource.Env, engine string, file bool) (resource.Resource, error) {
	gone := cfg.DSN == "" && cfg.DSNEnv == "" && cfg.DSNFile == ""
	if file {
		gone = cfg.Path == ""
	}
	if gone {
		// Only the name and type of a recovery point's resource are
		// known: its entry left the configuration.
		return nil, vigil.Invalidf("%s resource %q is no longer in the configuration: a database restore needs its tools and credentials; add it back", engine, cfg.Name)
	}
	return &Database{cfg: cfg, env: env, engine: engine, file: file}, nil
}

func (d *Database) Config() config.Resource { return d.cfg }

// Location is the database's DSN without its password, or its file.
func (d *Database) Location() string { return d.cfg.Location() }

// Backup streams a consistent dump of the database into the vault and
// returns what the dump recorded.
func (d *Database) Backup(ctx context.Context, v *vault.Vault, opts vault.BackupOptions) (vault.BackupResult, *vigil.DatabaseInfo, error) {
	res := d.cfg
	src := database.Source{
		Engine:  d.engine,
		Server:  res.Server,
		Path:    res.Path,
		Tools:   res.Tools,
		TempDir: d.env.TempDir,
	}
	dump, err := database.StartDump(ctx, src)
	if err != nil {
		return vault.BackupResult{}, nil, fmt.Errorf("start the dump of %s %q: %w", res.Type, res.Name, err)
	}
	result, err := v.BackupStream(ctx, database.DumpName(d.engine), dump, opts)
	// A dump the vault stopped reading is stopped; one that failed by
	// itself made the vault's read fail, and its own error says more than
	// the vault's "cannot read".
	info, abandoned, dumpErr := dump.Finish()
	switch {
	case dumpErr != nil && !abandoned:
		return vault.BackupResult{}, nil, fmt.Errorf("dump of %s %q failed, so no recovery point was listed (fix the cause below and back up again): %w", res.Type, res.Name, dumpErr)
	case err != nil:
		return vault.BackupResult{}, nil, err
	case dumpErr != nil:
		return vault.BackupResult{}, nil, fmt.Errorf("dump of %s %q: %w", res.Type, res.Name, dumpErr)
	}
	return result, info, nil
}

// CheckSource: the database must answer, as its backup will ask it to.
// A server that does not answer is a warning (it may be down for now); a
// path that is a folder, or a file that is not a database, is an error.
func (d *Database) CheckSource(ctx context.Context) []vigil.Problem {
	src := database.Source{Engine: d.engine, Server: d.cfg.Server, Path: d.cfg.Path}
	if d.file {
		fi, err := os.Stat(src.Path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return []vigil.Problem{{Message: fmt.Sprintf("database file %s does not exist now, so its backups fail until it does: correct the resource's path if it is wrong", src.Path)}}
		case err != nil:
			return []vigil.Problem{{Hard: true, Message: fmt.Sprintf("cannot look at database file %s: %v: let the user vigil runs as read it, or correct the resource's path", src.Path, err)}}
		case fi.IsDir():
			return []vigil.Problem{{Hard: true, Message: fmt.Sprintf("%s is a folder: an %s resource's path is its database file; correct it", src.Path, d.cfg.Type)}}
		}
	}
	err := database.CheckSource(ctx, src)
	switch {
	case err == nil:
		return nil
	case d.file && strings.Contains(err.Error(), "not a database"):
		return []vigil.Problem{{Hard: true, Message: fmt.Sprintf("%s is not an SQLite database (%v): correct the resource's path", src.Path, err)}}
	case d.file:
		return []vigil.Problem{{Message: fmt.Sprintf("cannot read SQLite database %s now (%v), so its backups fail until it can be read", src.Path, err)}}
	}
	// The drivers' errors span lines, one per address tried.
	why := strings.Join(strings.Fields(d.cfg.Server.Redact(err.Error())), " ")
	return []vigil.Problem{{Message: fmt.Sprintf("cannot reach the database %s now (%s), so its backups fail until it answers: start its server, or correct the DSN and its credentials",
		d.cfg.Server, why)}}
}

// RestoreDefaults: a new file under data_dir/restores, or a new database
// on the resource's own server.
func (d *Database) RestoreDefaults(rp vigil.RecoveryPoint) map[string]string {
	if d.file {
		name := filepath.Base(d.cfg.Path)
		return map[string]string{resource.MetaTargetPath: filepath.Join(d.env.RestoresDir, resource.Placeholder, name)}
	}
	return map[string]string{
		resource.MetaTargetDSN:      d.cfg.Server.String(),
		resource.MetaTargetDatabase: defaultTargetDatabase,
	}
}

// target is the new database a restore job creates, from its metadata and
// the resource's configuration (credentials and tools).
func (d *Database) target(job *vigil.RestoreJob, info *vigil.DatabaseInfo) (database.Target, error) {
	t := database.Target{
		Engine: d.engine,
		Mark:   "vigil restore job " + job.ID,
		Tools:  d.cfg.Tools,
		Info:   info,
	}
	if d.file {
		t.Path = job.Metadata[resource.MetaTargetPath]
		return t, nil
	}
	srv, err := d.targetServer(job.Metadata[resource.MetaTargetDSN])
	if err != nil {
		return database.Target{}, err
	}
	t.Server = srv
	t.Database = job.Metadata[resource.MetaTargetDatabase]
	return t, nil
}

// targetServer parses a restore's target_dsn. The resource's own server
// (the default) keeps its password; another server with the same user
// and address does too; any other gets none, and authenticates the way
// its client library would without one (~/.pgpass, trust).
func (d *Database) targetServer(dsn string) (dbclient.Server, error) {
	own := d.cfg.Server
	if dsn == "" || dsn == own.String() {
		return own, nil
	}
	srv, err := dbclient.ParseDSN(d.engine, dsn)
	if err != nil {
		return dbclient.Server{}, vigil.Invalidf("target_dsn %v", err)
	}
	if srv.HasPassword() {
		return dbclient.Server{}, vigil.Invalidf("target_dsn holds a password, which vigil would then store with the job: leave it out; the resource's password is used for the same user and server")
	}
	if srv.SameServer(own) {
		srv = srv.WithPasswordOf(own)
	}
	return srv, nil
}

// PrepareRestore refuses a restore whose new database cannot be created:
// bad metadata, or a name that is taken.
func (d *Database) PrepareRestore(ctx context.Context, job *vigil.RestoreJob, rp vigil.RecoveryPoint) error {
	t, err := d.target(job, rp.Database)
	if err != nil {
		return err
	}
	switch {
	case d.file:
		if !filepath.IsAbs(t.Path) {
			return vigil.Invalidf("target_path %q must be an absolute path to the new SQLite file", t.Path)
		}
		t.Path = filepath.Clean(t.Path)
		job.Metadata[resource.MetaTargetPath] = t.Path
		if err := d.env.CheckTarget(t.Path, target.File); err != nil {
			return err
		}
	case t.Database == "":
		return vigil.Invalidf("target_database is empty: name the new database")
	case len(t.Database) > 63:
		return vigil.Invalidf("target_database %q is longer than 63 bytes, which PostgreSQL and MySQL refuse", t.Database)
	case strings.ContainsAny(t.Database, "\x00/\\."):
		return vigil.Invalidf("target_database %q may not contain '/', '\\', '.' or NUL", t.Database)
	}
	exists, err := database.Exists(ctx, t)
	if err != nil {
		if d.file {
			return vigil.Invalidf("the restore target cannot be checked (%v): check %s", err, resource.MetaTargetPath)
		}
		return vigil.Invalidf("the restore target cannot be checked (%v): check that the server is up and that %s is right", err, resource.MetaTargetDSN)
	}
	if exists {
		key := resource.MetaTargetDatabase
		if d.file {
			key = resource.MetaTargetPath
		}
		return vigil.Invalidf("%s already exists: a restore creates a new database and never writes into one; choose another %s", t, key)
	}
	job.CreatedResourceLocation = t.String()
	return nil
}

// CheckTarget has nothing to do: Create refuses a name that is taken.
func (d *Database) CheckTarget(*vigil.RestoreJob) error { return nil }

// Restore creates a new database from a recovery point and loads its
// dump. A restore that fails drops what it created.
func (d *Database) Restore(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint, job *vigil.RestoreJob) (string, error) {
	t, err := d.target(job, rp.Database)
	if err != nil {
		return "", err
	}
	// A new file is held from before it exists to the end of the job: a
	// restore fails rather than share it, and removes only what it made.
	var claim *target.Claim
	what := fmt.Sprintf("the restore of recovery point %s", rp.ID)
	const advice = "free space on that disk, or choose a target_path on another disk"
	if d.file {
		if claim, err = d.env.Claims.Claim(job.ID, t.Path, target.File); err != nil {
			return "", err
		}
		if err := disk.Room(filepath.Dir(t.Path), rp.SizeBytes, what, advice); err != nil {
			return "", errors.New(err.Error() + claim.Undo())
		}
	}
	size, created, err := load(ctx, v, rp, t)
	if err != nil {
		if d.file {
			err = disk.Explain(err, filepath.Dir(t.Path), rp.SizeBytes, what, advice)
		}
		msg := err.Error()
		if created {
			msg += dropPartial(ctx, t)
		}
		if claim != nil {
			msg += claim.Undo()
		}
		return "", errors.New(msg)
	}
	job.CreatedResourceLocation = t.String()
	return fmt.Sprintf("a %d-byte dump loaded into %s", size, t), nil
}

// KeepRestore releases the hold on a completed restore's file and removes
// the database's mark: it is the person's now.
func (d *Database) KeepRestore(ctx context.Context, job *vigil.RestoreJob) string {
	t, err := d.target(job, nil)
	if err != nil {
		return fmt.Sprintf(" (its target could not be found again to let go of it: %v)", err)
	}
	var msg string
	if d.file {
		claim, err := d.env.Claims.Reclaim(job.ID, t.Path)
		if err == nil && claim != nil {
			err = claim.Release()
		}
		if err != nil {
			msg += fmt.Sprintf(" (%v)", err)
		}
	}
	if err := database.Release(ctx, t); err != nil {
		// The restore is complete all the same; only a leftover table
		// remains, which the person can drop.
		msg += fmt.Sprintf(" (%v: drop the table by hand)", err)
	}
	return msg
}

// load creates the target database and loads the recovery point's dump
// into it. created reports whether the database was made (and must be
// dropped if the restore is not kept).
func load(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint, t database.Target) (size int64, created bool, err error) {
	r, size, err := v.OpenFile(ctx, rp.SnapshotID, database.DumpName(t.Engine))
	if err != nil {
		return 0, false, err
	}
	defer r.Close()
	if err := database.Create(ctx, t); err != nil {
		if errors.Is(err, database.ErrExists) {
			return 0, false, fmt.Errorf("%w: a restore never writes into an existing database; nothing was changed", err)
		}
		return 0, false, err
	}
	if err := database.Load(ctx, t, r); err != nil {
		return 0, true, fmt.Errorf("load the dump into %s: %w", t, err)
	}
	return size, true, nil
}

// dropPartial drops a database that a failed restore created, and says so
// for the job's message.
func dropPartial(ctx context.Context, t database.Target) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropTimeout)
	defer cancel()
	if err := database.Drop(ctx, t); err != nil {
		return fmt.Sprintf("; dropping the partial %s failed (%v): drop it by hand", t, err)
	}
	return fmt.Sprintf("; the partial %s was removed", t)
}

// CleanInterrupted removes what an interrupted database restore created,
// a database that carries its mark, and says what it found. An SQLite
// file goes only when the job held its path: it did not exist when the
// job took hold of it.
func (d *Database) CleanInterrupted(ctx context.Context, job *vigil.RestoreJob) string {
	t, err := d.target(job, nil)
	if err != nil {
		return fmt.Sprintf(" (the partial database could not be looked for: %v)", err)
	}
	if d.file {
		claim, err := d.env.Claims.Reclaim(job.ID, t.Path)
		switch {
		case err != nil:
			return fmt.Sprintf(" (whether it had created %s could not be checked: %v; look at it)", t.Path, err)
		case claim == nil:
			return fmt.Sprintf(" (it had not created %s)", t.Path)
		}
		if err := database.Drop(ctx, t); err != nil {
			return fmt.Sprintf(" (removing the partial %s failed: %v; remove it by hand)", t.Path, err) + claim.Undo()
		}
		return fmt.Sprintf(" (the partial %s was removed)", t.Path) + claim.Undo()
	}
	ctx, cancel := context.WithTimeout(ctx, dropTimeout)
	defer cancel()
	exists, err := database.Exists(ctx, t)
	switch {
	case err != nil:
		return fmt.Sprintf(" (whether it had created %s could not be checked: %v; look for it)", t, err)
	case !exists:
		return fmt.Sprintf(" (it had not created %s yet)", t)
	}
	err = database.Drop(ctx, t)
	switch {
	case errors.Is(err, database.ErrNotMarked):
		return fmt.Sprintf(" (%s exists without this job's mark, so it was left alone; should vigil have stopped between creating and marking it, it is this restore's: drop it by hand)", t)
	case err != nil:
		return fmt.Sprintf(" (dropping the partial %s failed: %v; drop it by hand)", t, err)
	}
	return fmt.Sprintf(" (the partial %s was dropped)", t)
}

// PrepareTest: the new database is a file in the instance folder, or a
// database on the resource's own server named after the test.
func (d *Database) PrepareTest(job *vigil.RestoreJob, rp vigil.RecoveryPoint, dir string) {
	job.Metadata = d.RestoreDefaults(rp)
	if d.file {
		job.Metadata[resource.MetaTargetPath] = filepath.Join(dir, filepath.Base(job.Metadata[resource.MetaTargetPath]))
		job.CreatedResourceLocation = job.Metadata[resource.MetaTargetPath]
		return
	}
	name := strings.ReplaceAll(job.Metadata[resource.MetaTargetDatabase], resource.Placeholder, job.ID)
	job.Metadata[resource.MetaTargetDatabase] = name
	job.CreatedResourceLocation = dir
	if srv := d.cfg.Server; srv.Engine != "" {
		job.CreatedResourceLocation = srv.WithDatabase(name).String()
	}
}

// Copy is the test's new database as its metadata names it. Its
// encoding and collation come from the recovery point when it is
// restored.
func (d *Database) Copy(job *vigil.RestoreJob, inst *instance.Instance) (resource.Copy, error) {
	t, err := d.target(job, nil)
	if err != nil {
		return nil, err
	}
	// The copy is checked, not run: a MySQL dump's scheduled events are
	// created disabled.
	t.DisableEvents = true
	c := &Copy{d: d, job: job, t: t, inst: inst}
	if _, err := os.Stat(c.creating()); err == nil && !d.file {
		c.t.CreateIssued = true
	}
	return c, nil
}

// Copy is a restore test's new database.
type Copy struct {
	d    *Database
	job  *vigil.RestoreJob
	t    database.Target
	inst *instance.Instance // nil when rebuilt without its folder
	db   *database.DB
}

// creatingFile, in a test's instance folder, records that the test sent
// CREATE DATABASE for its copy: written before CREATE, removed when CREATE
// failed for the name being taken. A copy found unmarked after a crash is
// dropped only when it is there (database.Target.CreateIssued).
const creatingFile = "creating-database"

// creating is the path of the copy's creatingFile ("" without a folder).
func (c *Copy) creating() string {
	if c.inst == nil {
		return ""
	}
	return filepath.Join(c.inst.Dir, creatingFile)
}

// Restore loads the dump into the new database, created with the
// recovery point's encoding.
//
// An SQLite copy, a file in the data dir, is refused before anything is
// written when the recovery point does not fit there.
func (c *Copy) Restore(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint) (string, error) {
	c.t.Info = rp.Database
	what := fmt.Sprintf("the copy of recovery point %s", rp.ID)
	if c.d.file {
		if err := disk.Room(filepath.Dir(c.t.Path), rp.SizeBytes, what, resource.FreeDataDir); err != nil {
			return "", err
		}
	}
	if !c.d.file && c.inst != nil {
		if err := os.WriteFile(c.creating(), []byte(c.t.Database+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("record the creation of %s in the test's folder: %w", c.t, err)
		}
		c.t.CreateIssued = true
	}
	size, _, err := load(ctx, v, rp, c.t)
	if errors.Is(err, database.ErrExists) && c.inst != nil {
		// Someone else's database: not to be dropped as this test's.
		os.Remove(c.creating())
		c.t.CreateIssued = false
	}
	if err != nil {
		if c.d.file {
			return "", disk.Explain(err, filepath.Dir(c.t.Path), rp.SizeBytes, what, resource.FreeDataDir)
		}
		return "", err
	}
	return fmt.Sprintf("loaded a %d-byte dump into the new database %s", size, c.t), nil
}

func (c *Copy) Location() string { return c.t.String() }

// Check opens the restored database, runs SQLite's integrity check, and
// compares its tables and row counts with the recovery point's; then it
// lets validators query the copy.
func (c *Copy) Check(ctx context.Context, rp vigil.RecoveryPoint, target *validate.Target) (string, error) {
	begin := time.Now()
	t := c.t
	db, err := database.Open(ctx, t)
	if err != nil {
		return "", fmt.Errorf("the restored database does not open: %v", err)
	}
	c.db = db
	if err := db.IntegrityCheck(ctx); err != nil {
		return "", fmt.Errorf("the restored database is damaged: %v", err)
	}
	got, err := db.Tables(ctx)
	if err != nil {
		return "", fmt.Errorf("the restored database cannot be read: %v", err)
	}
	if rp.Database == nil {
		return "", fmt.Errorf("recovery point %s has no record of its tables to check against: back the resource up again", rp.ID)
	}
	if diffs := database.CompareTables(rp.Database.Tables, got); len(diffs) > 0 {
		more := ""
		if len(diffs) > maxTableDiffs {
			more = fmt.Sprintf("; and %d more", len(diffs)-maxTableDiffs)
			diffs = diffs[:maxTableDiffs]
		}
		return "", fmt.Errorf("the restored database differs from recovery point %s: %s%s", rp.ID, strings.Join(diffs, "; "), more)
	}
	var rows int64
	for _, t := range got {
		rows += t.Rows
	}
	summary := fmt.Sprintf("%s and %s match the recovery point", units.Plural(len(got), "table"), units.Plural(int(rows), "row"))
	if c.d.file {
		summary = "integrity_check ok; " + summary
	}
	if target.Log != nil {
		target.Log("database check passed in %s: %s", units.Duration(time.Since(begin)), summary)
	}

	target.SQL = func(ctx context.Context, q string) ([]string, [][]string, error) {
		cols, rows, err := db.Query(ctx, q)
		if err != nil && db.Ping(ctx) != nil {
			return nil, nil, fmt.Errorf("%w: %v", validate.ErrNoAnswer, err)
		}
		return cols, rows, err
	}
	if c.d.file {
		target.Env = append(target.Env, "VIGIL_RESTORE_DATABASE="+t.Path)
	} else {
		target.Env = append(target.Env, "VIGIL_RESTORE_DATABASE="+t.Database, "VIGIL_RESTORE_DSN="+t.String())
		target.Env = append(target.Env, t.Server.PasswordEnv()...)
	}
	return summary, nil
}

func (c *Copy) Close() error {
	if c.db == nil {
		return nil
	}
	err := c.db.Close()
	c.db = nil
	return err
}

// Delete drops the database the test created, if it carries the test's
// mark, and says what happened. An SQLite file lives in the instance
// folder, which goes with it.
func (c *Copy) Delete(ctx context.Context) (string, error) {
	if c.d.file || c.t.Database == "" {
		return "", nil
	}
	t := c.t
	ctx, cancel := context.WithTimeout(ctx, dropTimeout)
	defer cancel()
	err := database.Drop(ctx, t)
	if errors.Is(err, database.ErrNotMarked) {
		return fmt.Sprintf("; database %s exists without this test's mark, so vigil did not create it and left it alone (should vigil have stopped between creating and marking it, it is a leftover: drop it by hand)", t.Database), nil
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("; database %s was dropped", t.Database), nil
}
