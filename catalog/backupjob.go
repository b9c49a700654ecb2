package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
)

// Every statement on vigil_backup_job. The column list is written once so
// that insert, update and scan cannot drift apart.
const (
	backupJobColumns = `id, status, status_message, resource, resource_type, vault, recovery_point_id,
		bytes, files, percent_done, created_by, node, expire_at, created_at, started_at, completed_at`

	insertBackupJobSQL = `INSERT INTO vigil_backup_job (` + backupJobColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	selectBackupJobSQL = `SELECT ` + backupJobColumns + ` FROM vigil_backup_job`

	getBackupJobSQL = selectBackupJobSQL + ` WHERE id = ?`

	updateBackupJobSQL = `UPDATE vigil_backup_job SET
		status = ?, status_message = ?, resource = ?, resource_type = ?, vault = ?, recovery_point_id = ?,
		bytes = ?, files = ?, percent_done = ?, created_by = ?, node = ?, expire_at = ?, created_at = ?,
		started_at = ?, completed_at = ?
		WHERE id = ?`
)

// BackupJobFilter selects backup jobs; zero fields select everything.
// A Limit of 0 or less means no limit.
type BackupJobFilter struct {
	Status    []vigil.BackupJobStatus
	Resource  string
	Vault     string
	CreatedBy string
	Node      string
	// CreatedAfter selects jobs created at or after it.
	CreatedAfter *time.Time
	// StartingAfter is the id of a record: only those listed after it
	// are selected, for the next page. Listing fails with an error
	// wrapping vigil.ErrNotFound when no record has this id.
	StartingAfter string
	Limit         int
}

// backupJobValues is the job's columns after its id, in backupJobColumns order.
func backupJobValues(job *vigil.BackupJob) []any {
	return []any{
		string(job.Status), job.StatusMessage, job.Resource, job.ResourceType, job.Vault, job.RecoveryPointID,
		job.Bytes, job.Files, job.PercentDone, job.CreatedBy, job.Node, microsOrNull(job.ExpireAt),
		micros(job.CreatedAt), microsOrNull(job.StartedAt), microsOrNull(job.CompletedAt),
	}
}

func scanBackupJob(s scanner) (vigil.BackupJob, error) {
	var (
		job                              vigil.BackupJob
		status                           string
		createdAt                        int64
		expireAt, startedAt, completedAt *int64
	)
	err := s.Scan(&job.ID, &status, &job.StatusMessage, &job.Resource, &job.ResourceType, &job.Vault, &job.RecoveryPointID,
		&job.Bytes, &job.Files, &job.PercentDone, &job.CreatedBy, &job.Node, &expireAt, &createdAt, &startedAt, &completedAt)
	if err != nil {
		return vigil.BackupJob{}, err
	}
	job.Status = vigil.BackupJobStatus(status)
	job.ExpireAt = fromMicrosOrNull(expireAt)
	job.CreatedAt = fromMicros(createdAt)
	job.StartedAt = fromMicrosOrNull(startedAt)
	job.CompletedAt = fromMicrosOrNull(completedAt)
	return job, nil
}

// InsertBackupJob records a new backup job. The caller sets job.ID
// (vigil.NewID(vigil.PrefixBackupJob)); a zero job.CreatedAt is set to now.
func (r records) InsertBackupJob(ctx context.Context, job *vigil.BackupJob) error {
	if job.CreatedAt.IsZero() {
		job.CreatedAt = now()
	}
	args := append([]any{job.ID}, backupJobValues(job)...)
	if _, err := r.db.exec(ctx, insertBackupJobSQL, args...); err != nil {
		return fmt.Errorf("insert backup job %s: %w", job.ID, err)
	}
	return nil
}

// GetBackupJob returns the backup job with the given id, or an error
// wrapping vigil.ErrNotFound.
func (r records) GetBackupJob(ctx context.Context, id string) (vigil.BackupJob, error) {
	job, err := scanBackupJob(r.db.queryRow(ctx, getBackupJobSQL, id))
	if errors.Is(err, errNoRows) {
		return vigil.BackupJob{}, fmt.Errorf("get backup job %s: %w", id, vigil.ErrNotFound)
	}
	if err != nil {
		return vigil.BackupJob{}, fmt.Errorf("get backup job %s: %w", id, err)
	}
	return job, nil
}

// UpdateBackupJob overwrites every column of the backup job with job.ID, or
// returns an error wrapping vigil.ErrNotFound.
func (r records) UpdateBackupJob(ctx context.Context, job *vigil.BackupJob) error {
	args := append(backupJobValues(job), job.ID)
	n, err := r.db.exec(ctx, updateBackupJobSQL, args...)
	if err != nil {
		return fmt.Errorf("update backup job %s: %w", job.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("update backup job %s: %w", job.ID, vigil.ErrNotFound)
	}
	return nil
}

// UpdateRunningBackupJob writes job only while the catalog still holds it
// RUNNING since startedAt, the attempt that writes it, and reports whether
// it did. Once the job was ended by someone else (a worker that found the
// one running it dead, a restart), a late write of that attempt changes
// nothing: a job never gets a second final status, nor its recovery point.
// On PostgreSQL the UPDATE also locks the row until the transaction ends,
// so two transactions ending the same job wait for each other and the
// second finds it ended.
func (r records) UpdateRunningBackupJob(ctx context.Context, job *vigil.BackupJob, startedAt time.Time) (bool, error) {
	args := append(backupJobValues(job), job.ID, string(vigil.BackupRunning), micros(startedAt))
	n, err := r.db.exec(ctx, updateBackupJobSQL+` AND status = ? AND started_at = ?`, args...)
	if err != nil {
		return false, fmt.Errorf("update backup job %s: %w", job.ID, err)
	}
	return n == 1, nil
}

// ListBackupJobs returns the backup jobs f selects, newest first.
func (r records) ListBackupJobs(ctx context.Context, f BackupJobFilter) ([]vigil.BackupJob, error) {
	var w filter
	in(&w, "status", f.Status)
	w.equal("resource", f.Resource)
	w.equal("vault", f.Vault)
	w.equal("created_by", f.CreatedBy)
	w.equal("node", f.Node)
	w.after("created_at", f.CreatedAfter)
	if err := w.startingAfter(ctx, r.db, "vigil_backup_job", f.StartingAfter); err != nil {
		return nil, fmt.Errorf("list backup jobs: %w", err)
	}
	query, args := w.newestFirst(selectBackupJobSQL, f.Limit)

	rows, err := r.db.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list backup jobs: %w", err)
	}
	defer rows.Close()
	jobs := []vigil.BackupJob{}
	for rows.Next() {
		job, err := scanBackupJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list backup jobs: %w", err)
		}
		jobs = append(jobs, job)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list backup jobs: %w", err)
	}
	return jobs, nil
}
