package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// CopyArgs carries a copy job on. Its record and this job are written in
// one transaction; a copy job that vigil's death cut short is handed back
// to the queue (rescuer) and taken up again, and never lists a second
// recovery point (backup.Runner.RunCopy).
type CopyArgs struct {
	JobID string `json:"job_id"`
}

func (CopyArgs) Kind() string { return "vigil.copy" }

// StartCopy records a copy job of a recovery point into another vault and
// queues it, in one transaction.
func (e *Engine) StartCopy(ctx context.Context, req vigil.CopyRequest) (vigil.CopyJob, error) {
	return e.backups.StartCopy(ctx, req)
}

// QueueCopy queues the River job that runs a copy job, in tx.
func (e *Engine) QueueCopy(ctx context.Context, tx *catalog.Tx, jobID string) error {
	return e.insertTx(ctx, tx, CopyArgs{JobID: jobID}, nil)
}

// copyWorker runs copy jobs. It takes River's JobTimeout
// (workers.job_timeout), as backups do: a first copy of a large recovery
// point into a distant vault may take hours.
type copyWorker struct {
	river.WorkerDefaults[CopyArgs]
	e *Engine
}

func (w *copyWorker) Work(ctx context.Context, rj *river.Job[CopyArgs]) error {
	err := w.e.backups.RunCopy(ctx, rj.Args.JobID, rj.Attempt)
	if errors.Is(err, vigil.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("copy job %s is not in the catalog", rj.Args.JobID))
	}
	return err
}
