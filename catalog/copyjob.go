package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
)

// Every statement on vigil_copy_job. The column list is written once so
// that insert, update and scan cannot drift apart.
const (
	copyJobColumns = `id, status, status_message, resource, resource_type, source_vault, source_recovery_point_id,
		vault, recovery_point_id, bytes, files, percent_done, created_by, node, expire_at, created_at, started_at, completed_at`

	insertCopyJobSQL = `INSERT INTO vigil_copy_job (` + copyJobColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	selectCopyJobSQL = `SELECT ` + copyJobColumns + ` FROM vigil_copy_job`

	getCopyJobSQL = selectCopyJobSQL + ` WHERE id = ?`

	updateCopyJobSQL = `UPDATE vigil_copy_job SET
		status = ?, status_message = ?, resource = ?, resource_type = ?, source_vault = ?, source_recovery_point_id = ?,
		vault = ?, recovery_point_id = ?,
		bytes = ?, files = ?, percent_done = ?, created_by = ?, node = ?, expire_at = ?, created_at = ?,
		started_at = ?, completed_at = ?
		WHERE id = ?`
)

// CopyJobFilter selects copy jobs; zero fields select everything.
// A Limit of 0 or less means no limit.
type CopyJobFilter struct {
	Status    []vigil.BackupJobStatus
	Resource  string
	Vault     string
	CreatedBy string
	Node      string
	// SourceRecoveryPointID selects the copies of one recovery point.
	SourceRecoveryPointID string
	// CreatedAfter selects jobs created at or after it.
	CreatedAfter *time.Time
	// StartingAfter is the id of a record: only those listed after it
	// are selected, for the next page. Listing fails with an error
	// wrapping vigil.ErrNotFound when no record has this id.
	StartingAfter string
	Limit         int
}

// copyJobValues is the job's columns after its id, in copyJobColumns order.
func copyJobValues(job *vigil.CopyJob) []any {
	return []any{
		string(job.Status), job.StatusMessage, job.Resource, job.ResourceType, job.SourceVault, job.SourceRecoveryPointID,
		job.Vault, job.RecoveryPointID,
		job.Bytes, job.Files, job.PercentDone, job.CreatedBy, job.Node, microsOrNull(job.ExpireAt),
		micros(job.CreatedAt), microsOrNull(job.StartedAt), microsOrNull(job.CompletedAt),
	}
}

func scanCopyJob(s scanner) (vigil.CopyJob, error) {
	var (
		job                              vigil.CopyJob
		status                           string
		createdAt                        int64
		expireAt, startedAt, completedAt *int64
	)
	err := s.Scan(&job.ID, &status, &job.StatusMessage, &job.Resource, &job.ResourceType, &job.SourceVault, &job.SourceRecoveryPointID,
		&job.Vault, &job.RecoveryPointID,
		&job.Bytes, &job.Files, &job.PercentDone, &job.CreatedBy, &job.Node, &expireAt, &createdAt, &startedAt, &completedAt)
	if err != nil {
		return vigil.CopyJob{}, err
	}
	job.Status = vigil.BackupJobStatus(status)
	job.ExpireAt = fromMicrosOrNull(expireAt)
	job.CreatedAt = fromMicros(createdAt)
	job.StartedAt = fromMicrosOrNull(startedAt)
	job.CompletedAt = fromMicrosOrNull(completedAt)
	return job, nil
}

// InsertCopyJob records a new copy job. The caller sets job.ID
// (vigil.NewID(vigil.PrefixCopyJob)); a zero job.CreatedAt is set to now.
func (r records) InsertCopyJob(ctx context.Context, job *vigil.CopyJob) error {
	if job.CreatedAt.IsZero() {
		job.CreatedAt = now()
	}
	args := append([]any{job.ID}, copyJobValues(job)...)
	if _, err := r.db.exec(ctx, insertCopyJobSQL, args...); err != nil {
		return fmt.Errorf("insert copy job %s: %w", job.ID, err)
	}
	return nil
}

// GetCopyJob returns the copy job with the given id, or an error
// wrapping vigil.ErrNotFound.
func (r records) GetCopyJob(ctx context.Context, id string) (vigil.CopyJob, error) {
	job, err := scanCopyJob(r.db.queryRow(ctx, getCopyJobSQL, id))
	if errors.Is(err, errNoRows) {
		return vigil.CopyJob{}, fmt.Errorf("get copy job %s: %w", id, vigil.ErrNotFound)
	}
	if err != nil {
		return vigil.CopyJob{}, fmt.Errorf("get copy job %s: %w", id, err)
	}
	return job, nil
}

// UpdateCopyJob overwrites every column of the copy job with job.ID, or
// returns an error wrapping vigil.ErrNotFound.
func (r records) UpdateCopyJob(ctx context.Context, job *vigil.CopyJob) error {
	args := append(copyJobValues(job), job.ID)
	n, err := r.db.exec(ctx, updateCopyJobSQL, args...)
	if err != nil {
		return fmt.Errorf("update copy job %s: %w", job.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("update copy job %s: %w", job.ID, vigil.ErrNotFound)
	}
	return nil
}

// ListCopyJobs returns the copy jobs f selects, newest first.
func (r records) ListCopyJobs(ctx context.Context, f CopyJobFilter) ([]vigil.CopyJob, error) {
	var w filter
	in(&w, "status", f.Status)
	w.equal("resource", f.Resource)
	w.equal("vault", f.Vault)
	w.equal("created_by", f.CreatedBy)
	w.equal("source_recovery_point_id", f.SourceRecoveryPointID)
	w.equal("node", f.Node)
	w.after("created_at", f.CreatedAfter)
	if err := w.startingAfter(ctx, r.db, "vigil_copy_job", f.StartingAfter); err != nil {
		return nil, fmt.Errorf("list copy jobs: %w", err)
	}
	query, args := w.newestFirst(selectCopyJobSQL, f.Limit)

	rows, err := r.db.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list copy jobs: %w", err)
	}
	defer rows.Close()
	jobs := []vigil.CopyJob{}
	for rows.Next() {
		job, err := scanCopyJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list copy jobs: %w", err)
		}
		jobs = append(jobs, job)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list copy jobs: %w", err)
	}
	return jobs, nil
}
