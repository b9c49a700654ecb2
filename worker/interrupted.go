package worker

import (
	"context"
	"fmt"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/backup"
	"github.com/vigil-backup/vigil/catalog"
)

// endInterrupted ends the jobs this node was running when its process died
// (kill -9, power loss): they are RUNNING in the catalog, and nobody is
// running them. They end ABORTED, saying so, and a restore's partial files
// are removed. Only this node's jobs are touched, so a worker restarting
// beside others on a shared catalog never ends their work.
//
// River still holds those jobs as running; Start then hands them back to
// the queue (rescuer), and each worker finds its record ended and does
// nothing.
func (e *Engine) endInterrupted(ctx context.Context) error {
	// Restores first: each removes its partial files before it records
	// its end, which gives back the space a full disk needs for the rest.
	restores, err := e.catalog.ListRestoreJobs(ctx, catalog.RestoreJobFilter{Status: []vigil.RestoreJobStatus{vigil.RestoreRunning}, Node: e.cfg.Current().Node})
	if err != nil {
		return fmt.Errorf("list interrupted restore jobs: %w", err)
	}
	for _, job := range restores {
		if job.RestoreTest {
			continue // sweepRestoreTests ends it and deletes its copy
		}
		if err := e.endRestore(ctx, &job, vigil.RestoreAborted, interruptedRestore, true); err != nil {
			return err
		}
	}
	// Restores another worker ended when it counted this node's last
	// process dead: what they wrote is on this machine, and goes now.
	aborted, err := e.catalog.ListRestoreJobs(ctx, catalog.RestoreJobFilter{Status: []vigil.RestoreJobStatus{vigil.RestoreAborted}, Node: e.cfg.Current().Node})
	if err != nil {
		return fmt.Errorf("list the restore jobs ended by another worker: %w", err)
	}
	for _, job := range aborted {
		if job.RestoreTest || job.DeletionStatus != vigil.DeletionDeleting {
			continue
		}
		if err := e.cleanAbandoned(ctx, job.ID, nil); err != nil {
			return err
		}
	}
	running := []vigil.BackupJobStatus{vigil.BackupRunning}
	backups, err := e.catalog.ListBackupJobs(ctx, catalog.BackupJobFilter{Status: running, Node: e.cfg.Current().Node})
	if err != nil {
		return fmt.Errorf("list interrupted backup jobs: %w", err)
	}
	for _, job := range backups {
		if err := e.backups.End(ctx, &job, vigil.BackupAborted, backup.Interrupted); err != nil {
			return err
		}
	}
	return nil
}
