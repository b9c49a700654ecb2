package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/database"
	"github.com/vigil-backup/vigil/vault"
)

// RestoreArgs carries a restore job on.
type RestoreArgs struct {
	JobID string `json:"job_id"`
}

func (RestoreArgs) Kind() string { return "vigil.restore" }

// Restore metadata keys. A restore always creates a NEW resource; these say
// where.
const (
	MetaTargetPath = "target_path"

	// restoreJobPlaceholder in a default stands for the restore job's id,
	// which does not exist until the restore starts.
	restoreJobPlaceholder = "{restore_job_id}"
)

// RestoreMetadata returns what a restore of the recovery point accepts, with
// its defaults: the keys `--set` may override.
func (e *Engine) RestoreMetadata(ctx context.Context, rpID string) (map[string]string, error) {
	rp, err := e.restorableRecoveryPoint(ctx, rpID)
	if err != nil {
		return nil, err
	}
	return e.restoreDefaults(rp)
}

// restoreDefaults is the restore metadata of a recovery point: where a
// folder is restored to, or which new database a database is restored into.
func (e *Engine) restoreDefaults(rp vigil.RecoveryPoint) (map[string]string, error) {
	if vigil.IsDatabase(rp.ResourceType) {
		res, ok := e.cfg.Resource(rp.Resource)
		if !ok || res.Type != rp.ResourceType {
			return nil, vigil.Invalidf("%s resource %q is no longer in the configuration: a database restore needs its tools and credentials; add it back", rp.ResourceType, rp.Resource)
		}
		return e.databaseDefaults(res, rp), nil
	}
	return map[string]string{
		MetaTargetPath: filepath.Join(e.cfg.DataDir, "restores", restoreJobPlaceholder),
	}, nil
}

func (e *Engine) restorableRecoveryPoint(ctx context.Context, id string) (vigil.RecoveryPoint, error) {
	rp, err := e.catalog.GetRecoveryPoint(ctx, id)
	if errors.Is(err, vigil.ErrNotFound) {
		return rp, &vigil.UnknownNameError{Kind: "recovery point", Name: id, Known: e.recentRecoveryPointIDs(ctx)}
	}
	if err != nil {
		return rp, fmt.Errorf("read recovery point: %w", err)
	}
	if rp.Status != vigil.RecoveryPointAvailable {
		return rp, vigil.Invalidf("recovery point %s is %s, not AVAILABLE: restore another one (vigil recovery-points list)", id, rp.Status)
	}
	return rp, nil
}

func (e *Engine) recentRecoveryPointIDs(ctx context.Context) []string {
	rps, err := e.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}, Limit: 10})
	if err != nil {
		return nil
	}
	var ids []string
	for _, rp := range rps {
		ids = append(ids, rp.ID)
	}
	return ids
}

// StartRestore checks the request, records a restore job and queues it, in
// one transaction. A target that is not empty is refused here, before
// anything is written.
func (e *Engine) StartRestore(ctx context.Context, req vigil.RestoreRequest) (vigil.RestoreJob, error) {
	rp, err := e.restorableRecoveryPoint(ctx, req.RecoveryPointID)
	if err != nil {
		return vigil.RestoreJob{}, err
	}
	defaults, err := e.restoreDefaults(rp)
	if err != nil {
		return vigil.RestoreJob{}, err
	}
	for k := range req.Metadata {
		if _, ok := defaults[k]; !ok {
			return vigil.RestoreJob{}, vigil.Invalidf("unknown restore metadata key %q: a %s restore accepts %s",
				k, rp.ResourceType, strings.Join(slices.Sorted(maps.Keys(defaults)), ", "))
		}
	}
	job := vigil.RestoreJob{
		ID:                vigil.NewID(vigil.PrefixRestoreJob),
		Status:            vigil.RestorePending,
		RecoveryPointID:   rp.ID,
		Resource:          rp.Resource,
		ResourceType:      rp.ResourceType,
		CreatedResourceID: vigil.NewID("res"),
		CreatedBy:         req.CreatedBy,
		CreatedAt:         now(),
	}
	if job.CreatedBy == "" {
		job.CreatedBy = "on-demand"
	}
	job.Metadata = maps.Clone(defaults)
	maps.Copy(job.Metadata, req.Metadata)
	for k, v := range job.Metadata {
		job.Metadata[k] = strings.ReplaceAll(v, restoreJobPlaceholder, job.ID)
	}
	if vigil.IsDatabase(rp.ResourceType) {
		if err := e.checkDatabaseTarget(ctx, &job, &rp); err != nil {
			return vigil.RestoreJob{}, err
		}
	} else {
		target := job.Metadata[MetaTargetPath]
		if !filepath.IsAbs(target) {
			return vigil.RestoreJob{}, vigil.Invalidf("target_path %q must be an absolute path", target)
		}
		target = filepath.Clean(target)
		job.Metadata[MetaTargetPath] = target
		if err := checkEmptyTarget(target); err != nil {
			return vigil.RestoreJob{}, err
		}
		job.CreatedResourceLocation = target
	}

	err = e.catalog.InTx(ctx, func(tx *catalog.Tx) error {
		if err := tx.InsertRestoreJob(ctx, &job); err != nil {
			return err
		}
		return e.insertTx(ctx, tx, RestoreArgs{JobID: job.ID}, nil)
	})
	if err != nil {
		return vigil.RestoreJob{}, fmt.Errorf("queue restore job: %w", err)
	}
	return job, nil
}

// checkEmptyTarget refuses a target that exists and is not an empty folder:
// a restore never writes over anything.
func checkEmptyTarget(target string) error {
	f, err := os.Open(target)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return vigil.Invalidf("target_path %s cannot be opened: %v", target, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.IsDir() {
		return vigil.Invalidf("target_path %s is a file: give a new or empty folder", target)
	}
	if _, err := f.Readdirnames(1); !errors.Is(err, io.EOF) {
		return vigil.Invalidf("target_path %s is not empty: a restore creates a new resource; give a new or empty folder", target)
	}
	return nil
}

type restoreWorker struct {
	river.WorkerDefaults[RestoreArgs]
	e *Engine
}

func (w *restoreWorker) Timeout(*river.Job[RestoreArgs]) time.Duration { return -1 }

func (w *restoreWorker) Work(ctx context.Context, rj *river.Job[RestoreArgs]) error {
	e := w.e
	job, err := e.catalog.GetRestoreJob(ctx, rj.Args.JobID)
	if errors.Is(err, vigil.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("restore job %s is not in the catalog", rj.Args.JobID))
	}
	if err != nil {
		return err
	}
	if job.RestoreTest {
		return e.runRestoreTest(ctx, &job)
	}
	switch {
	case job.Status.Final():
		return nil
	case job.Status == vigil.RestoreRunning && vigil.IsDatabase(job.ResourceType):
		// endRestore says what became of the database.
		return e.endRestore(ctx, &job, vigil.RestoreAborted, "interrupted: vigil stopped while this restore was running; start it again")
	case job.Status == vigil.RestoreRunning:
		return e.endRestore(ctx, &job, vigil.RestoreAborted, interruptedRestore)
	}

	target := job.Metadata[MetaTargetPath]
	// The target was empty when the job was queued; check again, as
	// something may have written there since. (A database's target is
	// checked when it is created.)
	if !vigil.IsDatabase(job.ResourceType) {
		if err := checkEmptyTarget(target); err != nil {
			return e.endRestore(ctx, &job, vigil.RestoreFailed, err.Error())
		}
	}
	job.Status = vigil.RestoreRunning
	job.StartedAt = ptr(now())
	job.Node = e.cfg.Node
	err = e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, &job) },
		restoreEvent(vigil.EventRestoreJobStarted, &job))
	if err != nil {
		return err
	}
	rp, err := e.catalog.GetRecoveryPoint(ctx, job.RecoveryPointID)
	if err != nil {
		return e.endRestore(ctx, &job, vigil.RestoreFailed, fmt.Sprintf("read recovery point %s: %v", job.RecoveryPointID, err))
	}
	e.jobLog(ctx, job.ID, "restore of recovery point %s (%s %q, vault %q) into %s started on node %s",
		rp.ID, rp.ResourceType, rp.Resource, rp.Vault, job.CreatedResourceLocation, e.cfg.Node)

	v, err := e.Vault(ctx, rp.Vault)
	if err != nil {
		return e.endRestore(ctx, &job, vigil.RestoreFailed, err.Error())
	}
	if vigil.IsDatabase(rp.ResourceType) {
		return e.runDatabaseRestore(ctx, &job, rp, v)
	}
	result, err := v.Restore(ctx, rp.SnapshotID, target, nil)
	if err != nil {
		if ctx.Err() != nil {
			return e.endRestore(ctx, &job, vigil.RestoreAborted, "vigil was stopped during the restore: start it again")
		}
		return e.endRestore(ctx, &job, vigil.RestoreFailed, err.Error())
	}
	job.Status = vigil.RestoreCompleted
	job.CompletedAt = ptr(now())
	job.CreatedResourceLocation = target
	err = e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, &job) },
		restoreEvent(vigil.EventRestoreJobCompleted, &job))
	if err != nil {
		return fmt.Errorf("record completed restore: %w", err)
	}
	e.jobLog(ctx, job.ID, "completed in %s: %d files, %d folders, %d symlinks, %d bytes into %s",
		job.CompletedAt.Sub(*job.StartedAt).Round(time.Millisecond), result.Files, result.Dirs, result.Symlinks, result.Bytes, target)
	return nil
}

const interruptedRestore = "interrupted: vigil stopped while this restore was running; its partial files were removed: start the restore again"

// endRestore records a final status. A restore that did not complete leaves
// nothing behind: the partial target, which the restore created, is removed.
func (e *Engine) endRestore(ctx context.Context, job *vigil.RestoreJob, status vigil.RestoreJobStatus, msg string) error {
	ctx = context.WithoutCancel(ctx)
	if job.Status == vigil.RestoreRunning && vigil.IsDatabase(job.ResourceType) {
		msg += e.dropInterrupted(ctx, job)
	} else if job.Status == vigil.RestoreRunning {
		if target := job.Metadata[MetaTargetPath]; target != "" {
			if err := os.RemoveAll(target); err != nil {
				msg += fmt.Sprintf(" (removing the partial restore at %s failed: %v; remove it by hand)", target, err)
			}
		}
	}
	job.Status = status
	job.StatusMessage = msg
	job.CompletedAt = ptr(now())
	err := e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) },
		restoreEvent(vigil.EventRestoreJobFailed, job))
	if err != nil {
		return fmt.Errorf("record restore job status: %w", err)
	}
	e.jobLog(ctx, job.ID, "%s: %s", status, msg)
	return nil
}

// runDatabaseRestore creates a new database from a recovery point and
// loads its dump. A restore that fails drops what it created.
func (e *Engine) runDatabaseRestore(ctx context.Context, job *vigil.RestoreJob, rp vigil.RecoveryPoint, v *vault.Vault) error {
	t, err := e.databaseTarget(job, &rp)
	if err != nil {
		return e.endRestore(ctx, job, vigil.RestoreFailed, err.Error())
	}
	start := time.Now()
	size, created, err := e.restoreDatabase(ctx, v, rp, t)
	if err != nil {
		status := vigil.RestoreFailed
		if ctx.Err() != nil {
			status = vigil.RestoreAborted
		}
		msg := err.Error()
		if created {
			msg += e.dropPartial(ctx, t)
		}
		// Not RUNNING any more: endRestore must not clean up again.
		job.Status = status
		return e.endRestore(ctx, job, status, msg)
	}
	if err := database.Release(ctx, t); err != nil {
		e.jobLog(ctx, job.ID, "%v: drop the table by hand", err)
	}
	job.Status = vigil.RestoreCompleted
	job.CompletedAt = ptr(now())
	job.CreatedResourceLocation = t.String()
	err = e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) },
		restoreEvent(vigil.EventRestoreJobCompleted, job))
	if err != nil {
		return fmt.Errorf("record completed restore: %w", err)
	}
	e.jobLog(ctx, job.ID, "completed in %s: a %d-byte dump loaded into %s",
		time.Since(start).Round(time.Millisecond), size, t)
	return nil
}

// dropPartial drops a database that a failed restore created, and says so
// for the job's message.
func (e *Engine) dropPartial(ctx context.Context, t database.Target) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropTimeout)
	defer cancel()
	if err := database.Drop(ctx, t); err != nil {
		return fmt.Sprintf("; dropping the partial %s failed (%v): drop it by hand", t, err)
	}
	return fmt.Sprintf("; the partial %s was removed", t)
}

// dropInterrupted removes what an interrupted database restore created,
// a database that carries its mark, and says what it found. A partial
// SQLite file is left: vigil cannot tell it from a file that was there
// before.
func (e *Engine) dropInterrupted(ctx context.Context, job *vigil.RestoreJob) string {
	t, err := e.databaseTarget(job, nil)
	if err != nil {
		return fmt.Sprintf(" (the partial database could not be looked for: %v)", err)
	}
	if t.Engine == vigil.ResourceSQLite {
		return fmt.Sprintf(" (a partial file may be left at %s: check it and remove it by hand)", t.Path)
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
