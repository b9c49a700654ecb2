package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Worker is a process that runs jobs: a `vigil serve` with workers, or a
// `vigil worker`. Each one writes its heartbeat while it runs, with the
// jobs it runs at that moment; one whose heartbeat is older than the
// heartbeat timeout is dead.
type Worker struct {
	// ID is the node's name and a part unique to the process
	// (node-<random>): River's client id, which River records on each job
	// the worker attempts.
	ID              string    `json:"id"`
	Node            string    `json:"node"`
	Host            string    `json:"host"`
	PID             int       `json:"pid"`
	StartedAt       time.Time `json:"started_at"`
	LastHeartbeatAt time.Time `json:"last_heartbeat_at"`
	// Concurrency is how many jobs of each kind (backup, restore,
	// restore_test, other) the worker runs at once.
	Concurrency map[string]int `json:"concurrency"`
	// Running is the ids of the vigil jobs (bj-…, rj-…) it ran at its
	// last heartbeat.
	Running []string `json:"running"`
	// StoppedAt is when it stopped cleanly; nil while it runs, or when it
	// died.
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	// ReapedBy is the worker that found this one dead and ended the jobs
	// it ran.
	ReapedBy string `json:"reaped_by,omitempty"`
}

// Worker states, as Worker.State reports them.
const (
	WorkerAlive   = "ALIVE"
	WorkerStopped = "STOPPED"
	WorkerDead    = "DEAD"
)

// State is WorkerStopped for a worker that stopped cleanly, WorkerDead for
// one whose last heartbeat is more than timeout before at, and
// WorkerAlive otherwise.
func (w Worker) State(at time.Time, timeout time.Duration) string {
	switch {
	case w.StoppedAt != nil:
		return WorkerStopped
	case at.Sub(w.LastHeartbeatAt) > timeout:
		return WorkerDead
	}
	return WorkerAlive
}

// RegisterWorker records a worker starting, replacing any record of the
// same id.
func (r records) RegisterWorker(ctx context.Context, w Worker) error {
	conc, err := json.Marshal(w.Concurrency)
	if err != nil {
		return fmt.Errorf("record worker %s: %w", w.ID, err)
	}
	if _, err := r.db.exec(ctx, `DELETE FROM vigil_worker WHERE id = ?`, w.ID); err != nil {
		return fmt.Errorf("record worker %s: %w", w.ID, err)
	}
	_, err = r.db.exec(ctx, `INSERT INTO vigil_worker (id, node, host, pid, started_at, last_heartbeat_at, concurrency, running)
		VALUES (?, ?, ?, ?, ?, ?, ?, '[]')`,
		w.ID, w.Node, w.Host, w.PID, micros(w.StartedAt), micros(w.LastHeartbeatAt), string(conc))
	if err != nil {
		return fmt.Errorf("record worker %s: %w", w.ID, err)
	}
	return nil
}

// HeartbeatWorker records that the worker is alive at at, running the
// given vigil jobs.
func (r records) HeartbeatWorker(ctx context.Context, id string, at time.Time, running []string) error {
	if running == nil {
		running = []string{}
	}
	b, err := json.Marshal(running)
	if err != nil {
		return fmt.Errorf("record heartbeat of worker %s: %w", id, err)
	}
	if _, err := r.db.exec(ctx, `UPDATE vigil_worker SET last_heartbeat_at = ?, running = ? WHERE id = ?`,
		micros(at), string(b), id); err != nil {
		return fmt.Errorf("record heartbeat of worker %s: %w", id, err)
	}
	return nil
}

// StopWorker records that the worker stopped cleanly at at.
func (r records) StopWorker(ctx context.Context, id string, at time.Time) error {
	if _, err := r.db.exec(ctx, `UPDATE vigil_worker SET stopped_at = ?, running = '[]' WHERE id = ?`, micros(at), id); err != nil {
		return fmt.Errorf("record stop of worker %s: %w", id, err)
	}
	return nil
}

// ClaimDeadWorker makes by the one worker that ends the jobs of worker id,
// dead since its heartbeat is before staleBefore, and reports whether by
// won the claim: of all the workers that find it dead at once, one does.
func (r records) ClaimDeadWorker(ctx context.Context, id string, staleBefore time.Time, by string) (bool, error) {
	n, err := r.db.exec(ctx, `UPDATE vigil_worker SET reaped_by = ?
		WHERE id = ? AND reaped_by IS NULL AND stopped_at IS NULL AND last_heartbeat_at < ?`, by, id, micros(staleBefore))
	if err != nil {
		return false, fmt.Errorf("claim dead worker %s: %w", id, err)
	}
	return n == 1, nil
}

// RejoinWorker makes worker id, which was counted dead and reaped but
// carries on (it was only cut off), a live worker like any other again:
// should it die later, it is claimed and reaped again.
func (r records) RejoinWorker(ctx context.Context, id string) error {
	if _, err := r.db.exec(ctx, `UPDATE vigil_worker SET reaped_by = NULL WHERE id = ?`, id); err != nil {
		return fmt.Errorf("record that worker %s carries on: %w", id, err)
	}
	return nil
}

// DeleteWorkersBefore forgets the workers whose last heartbeat is before
// before (long stopped or long dead), and returns how many.
func (r records) DeleteWorkersBefore(ctx context.Context, before time.Time) (int64, error) {
	n, err := r.db.exec(ctx, `DELETE FROM vigil_worker WHERE last_heartbeat_at < ?`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("forget old workers: %w", err)
	}
	return n, nil
}

// ListWorkers returns every worker the catalog knows, the latest started
// first.
func (r records) ListWorkers(ctx context.Context) ([]Worker, error) {
	rows, err := r.db.query(ctx, `SELECT id, node, host, pid, started_at, last_heartbeat_at, concurrency, running, stopped_at,
		COALESCE(reaped_by, '') FROM vigil_worker ORDER BY started_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	defer rows.Close()
	var out []Worker
	for rows.Next() {
		var (
			w                    Worker
			started, beat        int64
			stopped              *int64
			concurrency, running string
		)
		if err := rows.Scan(&w.ID, &w.Node, &w.Host, &w.PID, &started, &beat, &concurrency, &running, &stopped, &w.ReapedBy); err != nil {
			return nil, fmt.Errorf("list workers: %w", err)
		}
		w.StartedAt, w.LastHeartbeatAt = fromMicros(started), fromMicros(beat)
		w.StoppedAt = fromMicrosOrNull(stopped)
		if err := json.Unmarshal([]byte(concurrency), &w.Concurrency); err != nil {
			return nil, fmt.Errorf("list workers: read concurrency of %s: %w", w.ID, err)
		}
		if err := json.Unmarshal([]byte(running), &w.Running); err != nil {
			return nil, fmt.Errorf("list workers: read running jobs of %s: %w", w.ID, err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}
