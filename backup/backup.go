// Package backup runs backup jobs: it records a job, backs its resource up
// into its vault through the resource's type, and lists the recovery point
// only once the vault has flushed it, in the transaction that completes the
// job and queues the restore tests and the copies that plans want for it.
// It also runs backup plans, and copy jobs, which copy a recovery point
// into another vault.
package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/internal/testpause"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/vault"
)

// Journal records state changes and carries backup jobs on.
type Journal interface {
	catalog.Recorder
	// QueueBackup queues the job that runs backup jobID (Run), in tx.
	QueueBackup(ctx context.Context, tx *catalog.Tx, jobID string) error
	// QueueCopy queues the job that runs copy job jobID (RunCopy), in tx.
	QueueCopy(ctx context.Context, tx *catalog.Tx, jobID string) error
}

// Resources opens a configured resource.
type Resources interface {
	Open(cfg config.Resource) (resource.Resource, error)
}

// Tests queues the restore tests of a new recovery point, a backup's or a
// copy's, in the transaction that lists it.
type Tests interface {
	QueueOnBackup(ctx context.Context, tx *catalog.Tx, rp *vigil.RecoveryPoint) error
}

// Options is what a Runner works with.
type Options struct {
	Config    config.Source
	Catalog   *catalog.Catalog
	Journal   Journal
	Vaults    vault.Opener
	Resources Resources
	Tests     Tests
	// Logger receives the runner's own log; nil discards it.
	Logger *slog.Logger
	// ProgressEvery is how often a running backup writes its progress
	// (default 1s).
	ProgressEvery time.Duration
}

// Runner starts and runs backup jobs.
type Runner struct {
	cfg           config.Source
	catalog       *catalog.Catalog
	journal       Journal
	vaults        vault.Opener
	resources     Resources
	tests         Tests
	logger        *slog.Logger
	progressEvery time.Duration
	// pauses are the test-only pauses of EnvCopyPause, backupPauses
	// those of EnvBackupPause.
	pauses       testpause.Steps
	backupPauses testpause.Steps
}

// New returns a Runner, or says which option is missing.
func New(o Options) (*Runner, error) {
	if o.Config == nil || o.Catalog == nil || o.Journal == nil || o.Vaults == nil || o.Resources == nil || o.Tests == nil {
		return nil, errors.New("backup.New: Config, Catalog, Journal, Vaults, Resources and Tests are all needed")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	pauses, err := copyPauses()
	if err != nil {
		return nil, err
	}
	backupPauses, err := testpause.Read(EnvBackupPause, "record")
	if err != nil {
		return nil, err
	}
	return &Runner{cfg: o.Config, catalog: o.Catalog, journal: o.Journal, vaults: o.Vaults, resources: o.Resources,
		tests: o.Tests, logger: o.Logger, progressEvery: o.ProgressEvery, pauses: pauses, backupPauses: backupPauses}, nil
}

// storageLog is a vault storage log (vault.WithStorageLog) into the
// job's own log, so that a job slowed by a failing storage says why.
func (b *Runner) storageLog(ctx context.Context, jobID string) func(string) {
	return func(line string) { b.jobLog(ctx, jobID, "%s", line) }
}

// jobLog appends a line to a job's own log. A failure to log is reported
// to the logger but never fails the job.
func (b *Runner) jobLog(ctx context.Context, jobID, format string, args ...any) {
	if err := b.catalog.AppendLog(context.WithoutCancel(ctx), jobID, fmt.Sprintf(format, args...)); err != nil {
		b.logger.Error("append job log", "job", jobID, "err", err)
	}
}

func ptr[T any](v T) *T { return &v }

func now() time.Time { return time.Now().UTC() }
