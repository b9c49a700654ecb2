package worker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/database"
	"github.com/vigil-backup/vigil/dbclient"
	"github.com/vigil-backup/vigil/validate"
	"github.com/vigil-backup/vigil/vault"
)

// Restore metadata keys of database recovery points. A restore creates a
// new database on target_dsn's server (by default the resource's own),
// named target_database; an SQLite restore creates the file target_path.
const (
	MetaTargetDSN      = "target_dsn"
	MetaTargetDatabase = "target_database"
)

// dropTimeout bounds dropping a restored database: a server that does not
// answer makes the clean-up fail (and be retried) rather than hang.
const dropTimeout = 2 * time.Minute

// defaultTargetDatabase is the name of a restore's new database.
const defaultTargetDatabase = "vigil_restore_" + restoreJobPlaceholder

// backupDatabase streams a consistent dump of a database resource into the
// vault and returns what the dump recorded.
func (e *Engine) backupDatabase(ctx context.Context, v *vault.Vault, res config.Resource, opts vault.BackupOptions) (vault.BackupResult, *vigil.DatabaseInfo, error) {
	src := database.Source{
		Engine:  res.Type,
		Server:  res.Server,
		Path:    res.Path,
		Tools:   res.Tools,
		TempDir: e.tempDir(),
	}
	dump, err := database.StartDump(ctx, src)
	if err != nil {
		return vault.BackupResult{}, nil, fmt.Errorf("start the dump of %s %q: %w", res.Type, res.Name, err)
	}
	result, err := v.BackupStream(ctx, database.DumpName(res.Type), dump, opts)
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

// databaseDefaults is the restore metadata of a database recovery point.
func (e *Engine) databaseDefaults(res config.Resource, rp vigil.RecoveryPoint) map[string]string {
	if rp.ResourceType == vigil.ResourceSQLite {
		name := filepath.Base(res.Path)
		if res.Path == "" {
			name = rp.Resource + ".db"
		}
		return map[string]string{MetaTargetPath: filepath.Join(e.cfg.DataDir, "restores", restoreJobPlaceholder, name)}
	}
	return map[string]string{
		MetaTargetDSN:      res.Server.String(),
		MetaTargetDatabase: defaultTargetDatabase,
	}
}

// databaseTarget is the new database a restore job creates, from its
// metadata and the resource's configuration (credentials and tools).
func (e *Engine) databaseTarget(job *vigil.RestoreJob, rp *vigil.RecoveryPoint) (database.Target, error) {
	res, ok := e.cfg.Resource(job.Resource)
	if !ok || res.Type != job.ResourceType {
		return database.Target{}, fmt.Errorf("%s resource %q is no longer in the configuration: a database restore needs its tools and credentials; add it back", job.ResourceType, job.Resource)
	}
	t := database.Target{
		Engine: job.ResourceType,
		Mark:   "vigil restore job " + job.ID,
		Tools:  res.Tools,
	}
	if rp != nil {
		t.Info = rp.Database
	}
	if t.Engine == vigil.ResourceSQLite {
		t.Path = job.Metadata[MetaTargetPath]
		return t, nil
	}
	srv, err := targetServer(res, job.Metadata[MetaTargetDSN])
	if err != nil {
		return database.Target{}, err
	}
	t.Server = srv
	t.Database = job.Metadata[MetaTargetDatabase]
	return t, nil
}

// targetServer parses a restore's target_dsn. The resource's own server
// (the default) keeps its password; another server with the same user
// and address does too; any other gets none, and authenticates the way
// its client library would without one (~/.pgpass, trust).
func targetServer(res config.Resource, dsn string) (dbclient.Server, error) {
	if dsn == "" || dsn == res.Server.String() {
		return res.Server, nil
	}
	srv, err := dbclient.ParseDSN(res.Type, dsn)
	if err != nil {
		return dbclient.Server{}, vigil.Invalidf("target_dsn %v", err)
	}
	if srv.HasPassword() {
		return dbclient.Server{}, vigil.Invalidf("target_dsn holds a password, which vigil would then store with the job: leave it out; the resource's password is used for the same user and server")
	}
	if srv.SameServer(res.Server) {
		srv = srv.WithPasswordOf(res.Server)
	}
	return srv, nil
}

// checkDatabaseTarget refuses a restore whose new database cannot be
// created: bad metadata, or a name that is taken.
func (e *Engine) checkDatabaseTarget(ctx context.Context, job *vigil.RestoreJob, rp *vigil.RecoveryPoint) error {
	t, err := e.databaseTarget(job, rp)
	if err != nil {
		return err
	}
	switch {
	case t.Engine == vigil.ResourceSQLite:
		if !filepath.IsAbs(t.Path) {
			return vigil.Invalidf("target_path %q must be an absolute path to the new SQLite file", t.Path)
		}
		job.Metadata[MetaTargetPath] = filepath.Clean(t.Path)
		t.Path = filepath.Clean(t.Path)
	case t.Database == "":
		return vigil.Invalidf("target_database is empty: name the new database")
	case len(t.Database) > 63:
		return vigil.Invalidf("target_database %q is longer than 63 bytes, which PostgreSQL and MySQL refuse", t.Database)
	case strings.ContainsAny(t.Database, "\x00/\\."):
		return vigil.Invalidf("target_database %q may not contain '/', '\\', '.' or NUL", t.Database)
	}
	exists, err := database.Exists(ctx, t)
	if err != nil {
		if t.Engine == vigil.ResourceSQLite {
			return vigil.Invalidf("the restore target cannot be checked (%v): check %s", err, MetaTargetPath)
		}
		return vigil.Invalidf("the restore target cannot be checked (%v): check that the server is up and that %s is right", err, MetaTargetDSN)
	}
	if exists {
		return vigil.Invalidf("%s already exists: a restore creates a new database and never writes into one; choose another %s", t, targetKey(t.Engine))
	}
	job.CreatedResourceLocation = t.String()
	return nil
}

func targetKey(engine string) string {
	if engine == vigil.ResourceSQLite {
		return MetaTargetPath
	}
	return MetaTargetDatabase
}

// restoreDatabase creates the target database and loads the recovery
// point's dump into it. created reports whether the database was made (and
// must be dropped if the restore is not kept).
func (e *Engine) restoreDatabase(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint, t database.Target) (size int64, created bool, err error) {
	r, size, err := v.OpenFile(ctx, rp.SnapshotID, database.DumpName(rp.ResourceType))
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

// dropDatabase drops the database a restore test created, if it carries
// the test's mark, and says what happened.
func (e *Engine) dropDatabase(ctx context.Context, job *vigil.RestoreJob) (string, error) {
	t, err := e.databaseTarget(job, nil)
	if err != nil {
		return "", err
	}
	if t.Engine == vigil.ResourceSQLite {
		// The file is inside the instance folder, which goes with it.
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, dropTimeout)
	defer cancel()
	err = database.Drop(ctx, t)
	if errors.Is(err, database.ErrNotMarked) {
		return fmt.Sprintf("; database %s exists without this test's mark, so vigil did not create it and left it alone (should vigil have stopped between creating and marking it, it is a leftover: drop it by hand)", t.Database), nil
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("; database %s was dropped", t.Database), nil
}

// maxTableDiffs bounds the differing tables a verdict lists.
const maxTableDiffs = 10

// validateDatabase checks a restored database: it opens, SQLite's
// integrity check passes, and it has the recovery point's tables with the
// same row counts; then the resource's own validators run against it.
func (e *Engine) validateDatabase(ctx context.Context, job *vigil.RestoreJob, res config.Resource, rp vigil.RecoveryPoint, target validate.Target, window time.Duration) validate.Result {
	begin := time.Now()
	failed := func(format string, args ...any) validate.Result {
		return validate.Result{Status: vigil.ValidationFailed, Message: fmt.Sprintf(format, args...)}
	}
	t, err := e.databaseTarget(job, &rp)
	if err != nil {
		return failed("%v", err)
	}
	db, err := database.Open(ctx, t)
	if err != nil {
		return failed("the restored database does not open: %v", err)
	}
	defer db.Close()
	if err := db.IntegrityCheck(ctx); err != nil {
		return failed("the restored database is damaged: %v", err)
	}
	got, err := db.Tables(ctx)
	if err != nil {
		return failed("the restored database cannot be read: %v", err)
	}
	if rp.Database == nil {
		return failed("recovery point %s has no record of its tables to check against: back the resource up again", rp.ID)
	}
	if diffs := database.CompareTables(rp.Database.Tables, got); len(diffs) > 0 {
		more := ""
		if len(diffs) > maxTableDiffs {
			more = fmt.Sprintf("; and %d more", len(diffs)-maxTableDiffs)
			diffs = diffs[:maxTableDiffs]
		}
		return failed("the restored database differs from recovery point %s: %s%s", rp.ID, strings.Join(diffs, "; "), more)
	}
	var rows int64
	for _, t := range got {
		rows += t.Rows
	}
	summary := fmt.Sprintf("%s and %s match the recovery point", plural(len(got), "table"), plural(int(rows), "row"))
	if t.Engine == vigil.ResourceSQLite {
		summary = "integrity_check ok; " + summary
	}
	e.jobLog(ctx, job.ID, "database check passed in %s: %s", seconds(time.Since(begin).Seconds()), summary)
	if len(res.Validate) == 0 {
		return validate.Result{Status: vigil.ValidationSuccessful, Message: summary}
	}

	target.SQL = func(ctx context.Context, q string) ([]string, [][]string, error) {
		cols, rows, err := db.Query(ctx, q)
		if err != nil && db.Ping(ctx) != nil {
			return nil, nil, fmt.Errorf("%w: %v", validate.ErrNoAnswer, err)
		}
		return cols, rows, err
	}
	if t.Engine == vigil.ResourceSQLite {
		target.Env = append(target.Env, "VIGIL_RESTORE_DATABASE="+t.Path)
	} else {
		target.Env = append(target.Env, "VIGIL_RESTORE_DATABASE="+t.Database, "VIGIL_RESTORE_DSN="+t.String())
		target.Env = append(target.Env, t.Server.PasswordEnv()...)
	}
	verdict := validate.Run(ctx, res.Validate, target, max(window-time.Since(begin), time.Millisecond))
	if verdict.Status == vigil.ValidationSuccessful {
		verdict.Message = summary + "; " + verdict.Message
	}
	return verdict
}

// tempDir holds the temporary files of running jobs (SQLite's consistent
// copies); it is emptied when the engine starts.
func (e *Engine) tempDir() string { return filepath.Join(e.cfg.DataDir, "tmp") }

// plural writes n things: "1 table", "4 tables".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
