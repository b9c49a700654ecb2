package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
)

// Every statement on vigil_restore_job. The column list is written once so
// that insert, update and scan cannot drift apart.
const (
	restoreJobColumns = `id, status, status_message, recovery_point_id, resource, resource_type,
		created_resource_id, created_resource_location, created_by, node, metadata,
		created_at, started_at, completed_at,
		restore_test, validation_status, validation_message, deletion_status, deletion_message, keep_until,
		restore_seconds, start_seconds, validation_seconds, cleanup_seconds, total_seconds,
		recovery_point_age_seconds, plan, deletion_attempts, vault_read_bytes, written_bytes,
		external_validation`

	insertRestoreJobSQL = `INSERT INTO vigil_restore_job (` + restoreJobColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
			?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	selectRestoreJobSQL = `SELECT ` + restoreJobColumns + ` FROM vigil_restore_job`

	getRestoreJobSQL = selectRestoreJobSQL + ` WHERE id = ?`

	updateRestoreJobSQL = `UPDATE vigil_restore_job SET
		status = ?, status_message = ?, recovery_point_id = ?, resource = ?, resource_type = ?,
		created_resource_id = ?, created_resource_location = ?, created_by = ?, node = ?, metadata = ?,
		created_at = ?, started_at = ?, completed_at = ?,
		restore_test = ?, validation_status = ?, validation_message = ?, deletion_status = ?, deletion_message = ?, keep_until = ?,
		restore_seconds = ?, start_seconds = ?, validation_seconds = ?, cleanup_seconds = ?, total_seconds = ?,
		recovery_point_age_seconds = ?, plan = ?, deletion_attempts = ?,
		vault_read_bytes = ?, written_bytes = ?
		WHERE id = ?`

	// setExternalValidationSQL records a reported verdict only while the
	// restore test is validating, so a late report never overwrites one.
	setExternalValidationSQL = `UPDATE vigil_restore_job SET external_validation = ?
		WHERE id = ? AND validation_status = 'VALIDATING' AND external_validation IS NULL`
)

// RestoreJobFilter selects restore jobs; zero fields select everything.
// A Limit of 0 or less means no limit.
type RestoreJobFilter struct {
	Status          []vigil.RestoreJobStatus
	Resource        string
	RecoveryPointID string
	Node            string
	// RestoreTest selects restore tests only.
	RestoreTest bool
	// SkipAborted leaves out restore jobs whose validation was ABORTED
	// (vigil stopped during them): they say nothing about the backup.
	SkipAborted bool
	// NotDeleted selects restore tests whose copy is not known deleted:
	// started, and deletion not SUCCESSFUL.
	NotDeleted bool
	// CreatedAfter selects jobs created at or after it.
	CreatedAfter *time.Time
	// StartingAfter is the id of a record: only those listed after it
	// are selected, for the next page. Listing fails with an error
	// wrapping vigil.ErrNotFound when no record has this id.
	StartingAfter string
	Limit         int
}

// restoreJobValues is the job's columns after its id, in restoreJobColumns order.
func restoreJobValues(job *vigil.RestoreJob) ([]any, error) {
	metadata, err := jsonOrNull(job.Metadata)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	var external any
	if job.ExternalValidation != nil {
		b, err := json.Marshal(job.ExternalValidation)
		if err != nil {
			return nil, fmt.Errorf("encode external validation: %w", err)
		}
		external = string(b)
	}
	return []any{
		string(job.Status), job.StatusMessage, job.RecoveryPointID, job.Resource, job.ResourceType,
		job.CreatedResourceID, job.CreatedResourceLocation, job.CreatedBy, job.Node, metadata,
		micros(job.CreatedAt), microsOrNull(job.StartedAt), microsOrNull(job.CompletedAt),
		boolInt(job.RestoreTest), string(job.ValidationStatus), job.ValidationMessage,
		string(job.DeletionStatus), job.DeletionMessage, microsOrNull(job.KeepUntil),
		job.RestoreSeconds, job.StartSeconds, job.ValidationSeconds, job.CleanupSeconds, job.TotalSeconds,
		job.RecoveryPointAgeSeconds, job.Plan, job.DeletionAttempts, job.VaultReadBytes, job.WrittenBytes,
		external,
	}, nil
}

func scanRestoreJob(s scanner) (vigil.RestoreJob, error) {
	var (
		job                    vigil.RestoreJob
		status                 string
		metadata               *string
		createdAt              int64
		startedAt, completedAt *int64
		restoreTest            int64
		validation, deletion   string
		keepUntil              *int64
		external               *string
	)
	err := s.Scan(&job.ID, &status, &job.StatusMessage, &job.RecoveryPointID, &job.Resource, &job.ResourceType,
		&job.CreatedResourceID, &job.CreatedResourceLocation, &job.CreatedBy, &job.Node, &metadata,
		&createdAt, &startedAt, &completedAt,
		&restoreTest, &validation, &job.ValidationMessage, &deletion, &job.DeletionMessage, &keepUntil,
		&job.RestoreSeconds, &job.StartSeconds, &job.ValidationSeconds, &job.CleanupSeconds, &job.TotalSeconds,
		&job.RecoveryPointAgeSeconds, &job.Plan, &job.DeletionAttempts, &job.VaultReadBytes, &job.WrittenBytes,
		&external)
	if err != nil {
		return vigil.RestoreJob{}, err
	}
	job.Status = vigil.RestoreJobStatus(status)
	job.RestoreTest = restoreTest != 0
	job.ValidationStatus = vigil.ValidationStatus(validation)
	job.DeletionStatus = vigil.DeletionStatus(deletion)
	job.KeepUntil = fromMicrosOrNull(keepUntil)
	if external != nil {
		job.ExternalValidation = new(vigil.ExternalValidation)
		if err := json.Unmarshal([]byte(*external), job.ExternalValidation); err != nil {
			return vigil.RestoreJob{}, fmt.Errorf("decode external validation of restore job %s: %w", job.ID, err)
		}
	}
	if job.Metadata, err = fromJSONOrNull(metadata); err != nil {
		return vigil.RestoreJob{}, fmt.Errorf("decode metadata of restore job %s: %w", job.ID, err)
	}
	job.CreatedAt = fromMicros(createdAt)
	job.StartedAt = fromMicrosOrNull(startedAt)
	job.CompletedAt = fromMicrosOrNull(completedAt)
	return job, nil
}

// InsertRestoreJob records a new restore job. The caller sets job.ID
// (vigil.NewID(vigil.PrefixRestoreJob)); a zero job.CreatedAt is set to now.
func (r records) InsertRestoreJob(ctx context.Context, job *vigil.RestoreJob) error {
	if job.CreatedAt.IsZero() {
		job.CreatedAt = now()
	}
	values, err := restoreJobValues(job)
	if err != nil {
		return fmt.Errorf("insert restore job %s: %w", job.ID, err)
	}
	if _, err := r.db.exec(ctx, insertRestoreJobSQL, append([]any{job.ID}, values...)...); err != nil {
		return fmt.Errorf("insert restore job %s: %w", job.ID, err)
	}
	return nil
}

// GetRestoreJob returns the restore job with the given id, or an error
// wrapping vigil.ErrNotFound.
func (r records) GetRestoreJob(ctx context.Context, id string) (vigil.RestoreJob, error) {
	job, err := scanRestoreJob(r.db.queryRow(ctx, getRestoreJobSQL, id))
	if errors.Is(err, errNoRows) {
		return vigil.RestoreJob{}, fmt.Errorf("get restore job %s: %w", id, vigil.ErrNotFound)
	}
	if err != nil {
		return vigil.RestoreJob{}, fmt.Errorf("get restore job %s: %w", id, err)
	}
	return job, nil
}

// UpdateRestoreJob overwrites every column of the restore job with job.ID
// but external_validation, or returns an error wrapping vigil.ErrNotFound.
// A reported verdict is written by SetExternalValidation only: the worker's
// copy of the job never erases one that arrived meanwhile.
func (r records) UpdateRestoreJob(ctx context.Context, job *vigil.RestoreJob) error {
	values, err := restoreJobValues(job)
	if err != nil {
		return fmt.Errorf("update restore job %s: %w", job.ID, err)
	}
	values = values[:len(values)-1] // external_validation is last
	n, err := r.db.exec(ctx, updateRestoreJobSQL, append(values, job.ID)...)
	if err != nil {
		return fmt.Errorf("update restore job %s: %w", job.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("update restore job %s: %w", job.ID, vigil.ErrNotFound)
	}
	return nil
}

// RestoreStep is where a restore job is in its life: the statuses of its
// restore, validation and deletion as an attempt last wrote them.
type RestoreStep struct {
	Status     vigil.RestoreJobStatus
	Validation vigil.ValidationStatus
	Deletion   vigil.DeletionStatus
}

// StepOf is the step job is at.
func StepOf(job *vigil.RestoreJob) RestoreStep {
	return RestoreStep{Status: job.Status, Validation: job.ValidationStatus, Deletion: job.DeletionStatus}
}

// UpdateRestoreJobAt writes job as UpdateRestoreJob does, but only while
// the catalog still holds it at step from, under the attempt that started
// it (job.StartedAt), and reports whether it did. Once another moved the
// job on (a worker that found the one running it dead ended it ABORTED),
// a late write of that attempt changes nothing: a job never gets a second
// final status, nor a restore test a second verdict. On PostgreSQL the
// UPDATE also locks the row until the transaction ends, so two
// transactions moving the same job on wait for each other and the second
// finds it moved.
func (r records) UpdateRestoreJobAt(ctx context.Context, job *vigil.RestoreJob, from RestoreStep) (bool, error) {
	values, err := restoreJobValues(job)
	if err != nil {
		return false, fmt.Errorf("update restore job %s: %w", job.ID, err)
	}
	values = values[:len(values)-1] // external_validation is last
	var started int64
	if job.StartedAt != nil {
		started = micros(*job.StartedAt)
	}
	values = append(values, job.ID, string(from.Status), string(from.Validation), string(from.Deletion), started)
	n, err := r.db.exec(ctx, updateRestoreJobSQL+` AND status = ? AND validation_status = ? AND deletion_status = ? AND COALESCE(started_at, 0) = ?`, values...)
	if err != nil {
		return false, fmt.Errorf("update restore job %s: %w", job.ID, err)
	}
	return n == 1, nil
}

// SetExternalValidation records a verdict reported from outside vigil for
// the restore test id. It reports false, changing nothing, unless that
// test is VALIDATING and has no reported verdict yet.
func (r records) SetExternalValidation(ctx context.Context, id string, v vigil.ExternalValidation) (bool, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encode external validation: %w", err)
	}
	n, err := r.db.exec(ctx, setExternalValidationSQL, string(b), id)
	if err != nil {
		return false, fmt.Errorf("record external validation of %s: %w", id, err)
	}
	return n == 1, nil
}

// ListRestoreJobs returns the restore jobs f selects, newest first.
func (r records) ListRestoreJobs(ctx context.Context, f RestoreJobFilter) ([]vigil.RestoreJob, error) {
	var w filter
	in(&w, "status", f.Status)
	w.equal("resource", f.Resource)
	w.equal("recovery_point_id", f.RecoveryPointID)
	w.equal("node", f.Node)
	if f.RestoreTest {
		w.conditions = append(w.conditions, "restore_test = 1")
	}
	if f.SkipAborted {
		w.conditions = append(w.conditions, "validation_status <> 'ABORTED'")
	}
	if f.NotDeleted {
		w.conditions = append(w.conditions, "restore_test = 1 AND status <> 'PENDING' AND deletion_status <> 'SUCCESSFUL'")
	}
	w.after("created_at", f.CreatedAfter)
	if err := w.startingAfter(ctx, r.db, "vigil_restore_job", f.StartingAfter); err != nil {
		return nil, fmt.Errorf("list restore jobs: %w", err)
	}
	query, args := w.newestFirst(selectRestoreJobSQL, f.Limit)

	rows, err := r.db.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list restore jobs: %w", err)
	}
	defer rows.Close()
	jobs := []vigil.RestoreJob{}
	for rows.Next() {
		job, err := scanRestoreJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list restore jobs: %w", err)
		}
		jobs = append(jobs, job)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list restore jobs: %w", err)
	}
	return jobs, nil
}
