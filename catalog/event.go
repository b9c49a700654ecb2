package catalog

import (
	"context"
	"fmt"

	"github.com/vigil-backup/vigil"
)

// Every statement on vigil_event and vigil_delivery.
const (
	eventColumns = `seq, type, time, resource, job_id, recovery_point_id, subject, message, data`

	insertEventSQL = `INSERT INTO vigil_event (type, time, resource, job_id, recovery_point_id, subject, message, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`

	// lockEventsSQL serializes event inserts on PostgreSQL until commit, so
	// that seq order is commit order (an identity column alone hands out
	// numbers at insert, and transactions may commit in another order).
	// SQLite needs nothing: its transactions take the write lock at begin.
	lockEventsSQL = `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.vigil_event'))`

	upsertDeliverySQL = `INSERT INTO vigil_delivery (event_seq, notification, status, attempts, last_error, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_seq, notification) DO UPDATE SET
			status = excluded.status, attempts = excluded.attempts,
			last_error = excluded.last_error, updated_at = excluded.updated_at`

	selectDeliveriesSQL = `SELECT event_seq, notification, status, attempts, last_error, updated_at
		FROM vigil_delivery WHERE event_seq >= ? AND event_seq <= ? ORDER BY event_seq, notification`
)

// InsertEvent records ev and sets ev.Seq (and ev.Time when zero). It is a
// method of Tx only: an event is written in the transaction of the state
// change it reports, so neither exists without the other.
func (tx *Tx) InsertEvent(ctx context.Context, ev *vigil.Event) error {
	if ev.Time.IsZero() {
		ev.Time = now()
	}
	if _, ok := tx.db.(pgxDBTX); ok {
		if _, err := tx.db.exec(ctx, lockEventsSQL); err != nil {
			return fmt.Errorf("insert event %s: lock: %w", ev.Type, err)
		}
	}
	var data any
	if len(ev.Data) > 0 {
		data = string(ev.Data)
	}
	err := tx.db.queryRow(ctx, insertEventSQL, string(ev.Type), micros(ev.Time), ev.Resource, ev.JobID,
		ev.RecoveryPointID, ev.Subject, ev.Message, data).Scan(&ev.Seq)
	if err != nil {
		return fmt.Errorf("insert event %s: %w", ev.Type, err)
	}
	return nil
}

// EventFilter selects events; zero fields select everything. Events come
// oldest first.
type EventFilter struct {
	// AfterSeq selects events with a greater seq.
	AfterSeq int64
	Types    []vigil.EventType
	JobID    string
	Resource string
	// Limit caps the number of events (0: no limit). With Newest, the
	// newest Limit events are returned, still oldest first.
	Limit  int
	Newest bool
}

// ListEvents returns the events f selects, in seq order.
func (r records) ListEvents(ctx context.Context, f EventFilter) ([]vigil.Event, error) {
	var w filter
	if f.AfterSeq > 0 {
		w.conditions = append(w.conditions, "seq > ?")
		w.args = append(w.args, f.AfterSeq)
	}
	in(&w, "type", f.Types)
	w.equal("job_id", f.JobID)
	w.equal("resource", f.Resource)
	query := `SELECT ` + eventColumns + ` FROM vigil_event`
	if len(w.conditions) > 0 {
		query += " WHERE " + joinAnd(w.conditions)
	}
	order := " ORDER BY seq"
	if f.Newest {
		order = " ORDER BY seq DESC"
	}
	query += order
	args := w.args
	if f.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := r.db.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	events := []vigil.Event{}
	for rows.Next() {
		var (
			ev   vigil.Event
			typ  string
			t    int64
			data *string
		)
		if err := rows.Scan(&ev.Seq, &typ, &t, &ev.Resource, &ev.JobID, &ev.RecoveryPointID, &ev.Subject, &ev.Message, &data); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		ev.Type = vigil.EventType(typ)
		ev.Time = fromMicros(t)
		if data != nil {
			ev.Data = []byte(*data)
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	if f.Newest {
		for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
			events[i], events[j] = events[j], events[i]
		}
	}
	return events, nil
}

// PutDelivery records the outcome so far of delivering an event to a
// notification, replacing the previous one.
func (r records) PutDelivery(ctx context.Context, d *vigil.Delivery) error {
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = now()
	}
	_, err := r.db.exec(ctx, upsertDeliverySQL, d.EventSeq, d.Notification, string(d.Status), d.Attempts, d.LastError, micros(d.UpdatedAt))
	if err != nil {
		return fmt.Errorf("record delivery of event %d to %s: %w", d.EventSeq, d.Notification, err)
	}
	return nil
}

// ListDeliveries returns the deliveries of events fromSeq to toSeq.
func (r records) ListDeliveries(ctx context.Context, fromSeq, toSeq int64) ([]vigil.Delivery, error) {
	rows, err := r.db.query(ctx, selectDeliveriesSQL, fromSeq, toSeq)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	out := []vigil.Delivery{}
	for rows.Next() {
		var (
			d       vigil.Delivery
			status  string
			updated int64
		)
		if err := rows.Scan(&d.EventSeq, &d.Notification, &status, &d.Attempts, &d.LastError, &updated); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.Status = vigil.DeliveryStatus(status)
		d.UpdatedAt = fromMicros(updated)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}
