package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
)

// Every statement on vigil_recovery_point. The column list is written once
// so that insert, update and scan cannot drift apart.
const (
	recoveryPointColumns = `id, vault, resource, resource_type, status, size_bytes, files,
		backup_job_id, snapshot_id, created_at, completed_at, expire_at, database_info, skipped, status_message,
		source_recovery_point_id, copy_job_id, foreign_snapshot`

	insertRecoveryPointSQL = `INSERT INTO vigil_recovery_point (` + recoveryPointColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	selectRecoveryPointSQL = `SELECT ` + recoveryPointColumns + ` FROM vigil_recovery_point`

	getRecoveryPointSQL = selectRecoveryPointSQL + ` WHERE id = ?`

	updateRecoveryPointSQL = `UPDATE vigil_recovery_point SET
		vault = ?, resource = ?, resource_type = ?, status = ?, size_bytes = ?, files = ?,
		backup_job_id = ?, snapshot_id = ?, created_at = ?, completed_at = ?, expire_at = ?,
		database_info = ?, skipped = ?, status_message = ?, source_recovery_point_id = ?, copy_job_id = ?,
		foreign_snapshot = ?
		WHERE id = ?`

	deleteRecoveryPointSQL = `DELETE FROM vigil_recovery_point WHERE id = ?`
)

// RecoveryPointFilter selects recovery points; zero fields select
// everything. ExpiredBefore selects those whose expire_at is set and before
// it. A Limit of 0 or less means no limit.
type RecoveryPointFilter struct {
	Vault         string
	Resource      string
	Status        []vigil.RecoveryPointStatus
	ExpiredBefore *time.Time
	// Plan selects the points the backup jobs of that backup plan made
	// (created_by), copies left out: copies keep their copy rule's expiry.
	Plan string
	// StartingAfter is the id of a record: only those listed after it
	// are selected, for the next page. Listing fails with an error
	// wrapping vigil.ErrNotFound when no record has this id.
	StartingAfter string
	Limit         int
}

// recoveryPointValues is the point's columns after its id, in
// recoveryPointColumns order.
func recoveryPointValues(rp *vigil.RecoveryPoint) []any {
	return []any{
		rp.Vault, rp.Resource, rp.ResourceType, string(rp.Status), rp.SizeBytes, rp.Files,
		rp.BackupJobID, rp.SnapshotID, micros(rp.CreatedAt), microsOrNull(rp.CompletedAt), microsOrNull(rp.ExpireAt),
		jsonColumn(rp.Database), jsonColumn(rp.Skipped), rp.StatusMessage, rp.SourceRecoveryPointID, rp.CopyJobID,
		jsonColumn(rp.Foreign),
	}
}

// jsonColumn is v as a JSON column: NULL when v is nil. What is stored
// this way is plain strings and numbers, which always marshal.
func jsonColumn[T any](v *T) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err))
	}
	return string(b)
}

// fromJSON reads a JSON column into a new T; nil for NULL.
func fromJSON[T any](col *string, id, what string) (*T, error) {
	if col == nil {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal([]byte(*col), v); err != nil {
		return nil, fmt.Errorf("recovery point %s: read its %s: %w", id, what, err)
	}
	return v, nil
}

func scanRecoveryPoint(s scanner) (vigil.RecoveryPoint, error) {
	var (
		rp                     vigil.RecoveryPoint
		status                 string
		createdAt              int64
		completedAt, expireAt  *int64
		info, skipped, foreign *string
	)
	err := s.Scan(&rp.ID, &rp.Vault, &rp.Resource, &rp.ResourceType, &status, &rp.SizeBytes, &rp.Files,
		&rp.BackupJobID, &rp.SnapshotID, &createdAt, &completedAt, &expireAt, &info, &skipped, &rp.StatusMessage,
		&rp.SourceRecoveryPointID, &rp.CopyJobID, &foreign)
	if err != nil {
		return vigil.RecoveryPoint{}, err
	}
	if rp.Database, err = fromJSON[vigil.DatabaseInfo](info, rp.ID, "database info"); err != nil {
		return vigil.RecoveryPoint{}, err
	}
	if rp.Skipped, err = fromJSON[vigil.Skipped](skipped, rp.ID, "skipped entries"); err != nil {
		return vigil.RecoveryPoint{}, err
	}
	if rp.Foreign, err = fromJSON[vigil.ForeignSnapshot](foreign, rp.ID, "foreign snapshot"); err != nil {
		return vigil.RecoveryPoint{}, err
	}
	rp.Status = vigil.RecoveryPointStatus(status)
	rp.CreatedAt = fromMicros(createdAt)
	rp.CompletedAt = fromMicrosOrNull(completedAt)
	rp.ExpireAt = fromMicrosOrNull(expireAt)
	return rp, nil
}

// InsertRecoveryPoint records a new recovery point. The caller sets rp.ID
// (vigil.NewID(vigil.PrefixRecoveryPoint)); a zero rp.CreatedAt is set to now.
func (r records) InsertRecoveryPoint(ctx context.Context, rp *vigil.RecoveryPoint) error {
	if rp.CreatedAt.IsZero() {
		rp.CreatedAt = now()
	}
	args := append([]any{rp.ID}, recoveryPointValues(rp)...)
	if _, err := r.db.exec(ctx, insertRecoveryPointSQL, args...); err != nil {
		return fmt.Errorf("insert recovery point %s: %w", rp.ID, err)
	}
	return nil
}

// GetRecoveryPoint returns the recovery point with the given id, or an
// error wrapping vigil.ErrNotFound.
func (r records) GetRecoveryPoint(ctx context.Context, id string) (vigil.RecoveryPoint, error) {
	rp, err := scanRecoveryPoint(r.db.queryRow(ctx, getRecoveryPointSQL, id))
	if errors.Is(err, errNoRows) {
		return vigil.RecoveryPoint{}, fmt.Errorf("get recovery point %s: %w", id, vigil.ErrNotFound)
	}
	if err != nil {
		return vigil.RecoveryPoint{}, fmt.Errorf("get recovery point %s: %w", id, err)
	}
	return rp, nil
}

// UpdateRecoveryPoint overwrites every column of the recovery point with
// rp.ID, or returns an error wrapping vigil.ErrNotFound.
func (r records) UpdateRecoveryPoint(ctx context.Context, rp *vigil.RecoveryPoint) error {
	n, err := r.db.exec(ctx, updateRecoveryPointSQL, append(recoveryPointValues(rp), rp.ID)...)
	if err != nil {
		return fmt.Errorf("update recovery point %s: %w", rp.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("update recovery point %s: %w", rp.ID, vigil.ErrNotFound)
	}
	return nil
}

// DeleteRecoveryPoint removes the recovery point's record (not its data in
// the vault), or returns an error wrapping vigil.ErrNotFound.
func (r records) DeleteRecoveryPoint(ctx context.Context, id string) error {
	n, err := r.db.exec(ctx, deleteRecoveryPointSQL, id)
	if err != nil {
		return fmt.Errorf("delete recovery point %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete recovery point %s: %w", id, vigil.ErrNotFound)
	}
	return nil
}

// recoveryPointConditions are the conditions of f but its paging.
func recoveryPointConditions(f RecoveryPointFilter) filter {
	var w filter
	w.equal("vault", f.Vault)
	w.equal("resource", f.Resource)
	in(&w, "status", f.Status)
	w.before("expire_at", f.ExpiredBefore)
	if f.Plan != "" {
		w.conditions = append(w.conditions, "copy_job_id = '' AND backup_job_id IN (SELECT id FROM vigil_backup_job WHERE created_by = ?)")
		w.args = append(w.args, f.Plan)
	}
	return w
}

// LastGoodRecoveryPoints maps each resource to its last good recovery
// point: the newest AVAILABLE one with a SUCCESSFUL restore test, in any
// vault. Retention rules never remove it, so a resource always keeps a
// point proven restorable.
func (r records) LastGoodRecoveryPoints(ctx context.Context) (map[string]string, error) {
	rows, err := r.db.query(ctx, `SELECT p.resource, p.id, p.created_at FROM vigil_recovery_point p
		WHERE p.status = 'AVAILABLE' AND EXISTS (SELECT 1 FROM vigil_restore_job t
			WHERE t.recovery_point_id = p.id AND t.restore_test = 1 AND t.validation_status = 'SUCCESSFUL')`)
	if err != nil {
		return nil, fmt.Errorf("list last good recovery points: %w", err)
	}
	defer rows.Close()
	type newest struct {
		id string
		at int64
	}
	best := map[string]newest{}
	for rows.Next() {
		var resource, id string
		var at int64
		if err := rows.Scan(&resource, &id, &at); err != nil {
			return nil, fmt.Errorf("list last good recovery points: %w", err)
		}
		// The greater id breaks a tie, so that every caller picks the same.
		if b, ok := best[resource]; !ok || at > b.at || at == b.at && id > b.id {
			best[resource] = newest{id, at}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list last good recovery points: %w", err)
	}
	out := make(map[string]string, len(best))
	for resource, b := range best {
		out[resource] = b.id
	}
	return out, nil
}

// CountRecoveryPoints counts the recovery points f selects, without
// reading them: a vault's count is asked for on every listing of vaults.
// f's StartingAfter and Limit are ignored.
func (r records) CountRecoveryPoints(ctx context.Context, f RecoveryPointFilter) (int, error) {
	w := recoveryPointConditions(f)
	query := "SELECT COUNT(*) FROM vigil_recovery_point"
	if len(w.conditions) > 0 {
		query += " WHERE " + joinAnd(w.conditions)
	}
	var n int
	if err := r.db.queryRow(ctx, query, w.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count recovery points: %w", err)
	}
	return n, nil
}

// ListRecoveryPoints returns the recovery points f selects, newest first.
func (r records) ListRecoveryPoints(ctx context.Context, f RecoveryPointFilter) ([]vigil.RecoveryPoint, error) {
	w := recoveryPointConditions(f)
	if err := w.startingAfter(ctx, r.db, "vigil_recovery_point", f.StartingAfter); err != nil {
		return nil, fmt.Errorf("list recovery points: %w", err)
	}
	query, args := w.newestFirst(selectRecoveryPointSQL, f.Limit)

	rows, err := r.db.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list recovery points: %w", err)
	}
	defer rows.Close()
	points := []vigil.RecoveryPoint{}
	for rows.Next() {
		rp, err := scanRecoveryPoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list recovery points: %w", err)
		}
		points = append(points, rp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list recovery points: %w", err)
	}
	return points, nil
}
