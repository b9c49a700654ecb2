package catalog

import (
	"context"
	"fmt"

	"github.com/vigil-backup/vigil"
)

// Every statement on vigil_job_log. Lines are ordered by their id, assigned
// by the database at insert: two lines appended in the same microsecond
// still come back in the order they were written.
const (
	insertJobLogSQL = `INSERT INTO vigil_job_log (job_id, logged_at, message) VALUES (?, ?, ?)`

	selectJobLogSQL = `SELECT job_id, logged_at, message FROM vigil_job_log WHERE job_id = ? ORDER BY id`
)

// AppendLog adds a line, timestamped now, to the log of the backup or
// restore job jobID.
func (r records) AppendLog(ctx context.Context, jobID, message string) error {
	if _, err := r.db.exec(ctx, insertJobLogSQL, jobID, micros(now()), message); err != nil {
		return fmt.Errorf("append log of job %s: %w", jobID, err)
	}
	return nil
}

// Logs returns the log of job jobID, oldest line first; it is empty for a
// job that logged nothing or does not exist.
func (r records) Logs(ctx context.Context, jobID string) ([]vigil.LogLine, error) {
	rows, err := r.db.query(ctx, selectJobLogSQL, jobID)
	if err != nil {
		return nil, fmt.Errorf("read log of job %s: %w", jobID, err)
	}
	defer rows.Close()
	lines := []vigil.LogLine{}
	for rows.Next() {
		var (
			line     vigil.LogLine
			loggedAt int64
		)
		if err := rows.Scan(&line.JobID, &loggedAt, &line.Message); err != nil {
			return nil, fmt.Errorf("read log of job %s: %w", jobID, err)
		}
		line.Time = fromMicros(loggedAt)
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read log of job %s: %w", jobID, err)
	}
	return lines, nil
}
