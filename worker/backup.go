package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// BackupArgs carries a backup job on. Kinds are stable strings: a renamed Go
// type must never orphan queued jobs.
type BackupArgs struct {
	JobID string `json:"job_id"`
}

func (BackupArgs) Kind() string { return "vigil.backup" }

// StartBackup records a backup job and queues it, in one transaction.
func (e *Engine) StartBackup(ctx context.Context, req vigil.BackupRequest) (vigil.BackupJob, error) {
	return e.backups.Start(ctx, req)
}

// QueueBackup queues the River job that runs a backup job, in tx.
func (e *Engine) QueueBackup(ctx context.Context, tx *catalog.Tx, jobID string) error {
	return e.insertTx(ctx, tx, BackupArgs{JobID: jobID}, nil)
}

func (e *Engine) runBackup(ctx context.Context, args BackupArgs) error {
	err := e.backups.Run(ctx, args.JobID)
	if errors.Is(err, vigil.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("backup job %s is not in the catalog", args.JobID))
	}
	return err
}
