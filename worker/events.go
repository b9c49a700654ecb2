package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/notify"
	"github.com/vigil-backup/vigil/notify/channels"
)

// DeliverArgs sends one event to one notification. It is queued in the
// transaction that records the event, so no event is ever left undelivered
// because vigil died in between; River retries it with the notification's
// backoff.
type DeliverArgs struct {
	Seq          int64  `json:"seq"`
	Notification string `json:"notification"`
}

func (DeliverArgs) Kind() string { return "vigil.deliver" }

// emit records ev in tx and queues its delivery to every notification that
// subscribes to its type.
func (e *Engine) emit(ctx context.Context, tx *catalog.Tx, ev vigil.Event) error {
	if err := tx.InsertEvent(ctx, &ev); err != nil {
		return err
	}
	for _, n := range e.cfg.Current().Notifications {
		if !n.Wants(ev.Type) {
			continue
		}
		d := vigil.Delivery{EventSeq: ev.Seq, Notification: n.Name, Status: vigil.DeliveryPending, UpdatedAt: ev.Time}
		if err := tx.PutDelivery(ctx, &d); err != nil {
			return err
		}
		opts := &river.InsertOpts{MaxAttempts: n.Retry.Attempts, Queue: queueNotify}
		if err := e.insertTx(ctx, tx, DeliverArgs{Seq: ev.Seq, Notification: n.Name}, opts); err != nil {
			return fmt.Errorf("queue delivery of event %d to %s: %w", ev.Seq, n.Name, err)
		}
	}
	return nil
}

// Record runs update and emits the events in one transaction: the state
// change and its events exist together or not at all.
//
// It runs even when ctx is cancelled: a final status must be written while
// vigil stops. In a job's work (jobContext), a transaction the
// catalog was unreachable for is run again until it is written or ctx
// ends: a backup that completed while PostgreSQL restarted is recorded
// COMPLETED when it is back, not lost to a retry that would find it
// RUNNING and end it ABORTED. An API call fails at once instead, and
// the person who made it sees why.
func (e *Engine) Record(ctx context.Context, update func(ctx context.Context, tx *catalog.Tx) error, events ...vigil.Event) error {
	wait := ctx
	ctx = context.WithoutCancel(ctx)
	record := func() error {
		return e.catalog.InTx(ctx, func(tx *catalog.Tx) error {
			if err := update(ctx, tx); err != nil {
				return err
			}
			for _, ev := range events {
				if err := e.emit(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := record()
	defer func() {
		if err == nil {
			e.logJobEvents(events)
		}
	}()
	if !errors.Is(err, catalog.ErrUnreachable) || wait.Value(catalogWaitKey{}) == nil {
		return err
	}
	e.logger.Warn("the catalog is unreachable: a job's record waits for it", "err", err)
	for delay := 100 * time.Millisecond; errors.Is(err, catalog.ErrUnreachable); delay = min(2*delay, 5*time.Second) {
		select {
		case <-wait.Done():
			return err
		case <-time.After(delay):
		}
		err = record()
	}
	return err
}

// catalogWaitKey marks the context of a job's work, whose records wait
// for an unreachable catalog (Record).
type catalogWaitKey struct{}

// jobContext is River middleware around every job this process works: it
// marks the job's context so (catalogWaitKey), and keeps the job in
// Engine.working while it runs, for the heartbeat to list.
type jobContext struct {
	river.WorkerMiddlewareDefaults
	e *Engine
}

func (m *jobContext) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	var args struct {
		JobID string `json:"job_id"`
	}
	id := job.Kind
	if json.Unmarshal(job.EncodedArgs, &args) == nil && args.JobID != "" {
		id = args.JobID
	}
	m.e.workingMu.Lock()
	m.e.working[job.ID] = id
	m.e.workingMu.Unlock()
	defer func() {
		m.e.workingMu.Lock()
		delete(m.e.working, job.ID)
		m.e.workingMu.Unlock()
	}()
	ctx = context.WithValue(ctx, catalogWaitKey{}, true)
	if args.JobID != "" {
		ctx = vigil.WithCancelledBy(ctx, m.e.cancelledBy(ctx, args.JobID))
	}
	return doInner(ctx)
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	e *Engine
}

func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return 2 * time.Minute }

// NextRetry waits as the notification's retry rule says.
func (w *deliverWorker) NextRetry(rj *river.Job[DeliverArgs]) time.Time {
	n, ok := w.e.cfg.Current().Notification(rj.Args.Notification)
	if !ok {
		return time.Now()
	}
	return time.Now().Add(notify.Backoff(n.Retry, rj.Attempt))
}

func (w *deliverWorker) Work(ctx context.Context, rj *river.Job[DeliverArgs]) error {
	e := w.e
	n, ok := e.cfg.Current().Notification(rj.Args.Notification)
	if !ok {
		err := fmt.Errorf("notification %q is no longer configured", rj.Args.Notification)
		d := vigil.Delivery{EventSeq: rj.Args.Seq, Notification: rj.Args.Notification, Attempts: rj.Attempt - 1, Status: vigil.DeliveryFailed, LastError: err.Error()}
		return river.JobCancel(errors.Join(err, e.catalog.PutDelivery(ctx, &d)))
	}
	events, err := e.catalog.ListEvents(ctx, catalog.EventFilter{AfterSeq: rj.Args.Seq - 1, Limit: 1})
	if err != nil {
		return err
	}
	if len(events) == 0 || events[0].Seq != rj.Args.Seq {
		return river.JobCancel(fmt.Errorf("event %d is not in the catalog", rj.Args.Seq))
	}
	notifier, sendErr := channels.New(n)
	if sendErr == nil {
		sendErr = notifier.Notify(ctx, events[0])
	}
	if sendErr != nil && ctx.Err() != nil {
		// vigil is stopping: this attempt does not count.
		return river.JobSnooze(0)
	}
	// Delivery is at least once: should recording the outcome fail after a
	// send succeeded, the retry sends again.
	d := vigil.Delivery{EventSeq: rj.Args.Seq, Notification: n.Name, Attempts: rj.Attempt, Status: vigil.DeliveryDelivered}
	switch {
	case sendErr == nil:
	case rj.Attempt >= rj.MaxAttempts:
		d.Status, d.LastError = vigil.DeliveryFailed, fmt.Sprintf("gave up after %d attempts: %v", rj.Attempt, sendErr)
	default:
		d.Status, d.LastError = vigil.DeliveryRetrying, sendErr.Error()
	}
	if err := e.catalog.PutDelivery(context.WithoutCancel(ctx), &d); err != nil {
		return errors.Join(sendErr, err)
	}
	if sendErr != nil {
		e.logger.Warn("notification delivery failed", "notification", n.Name, "event", rj.Args.Seq, "attempt", rj.Attempt, "err", sendErr)
		if d.Status == vigil.DeliveryFailed {
			return river.JobCancel(sendErr)
		}
	}
	return sendErr
}

// ListEvents returns events after q.AfterSeq, oldest first, with the
// outcome of their deliveries. Without AfterSeq it returns the newest
// q.Limit events.
func (e *Engine) ListEvents(ctx context.Context, q vigil.EventQuery) (vigil.EventPage, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 1000
	}
	for _, t := range q.Types {
		if !validEventType(t) {
			return vigil.EventPage{}, vigil.Invalidf("unknown event type %q (known: %v)", t, vigil.EventTypes)
		}
	}
	f := catalog.EventFilter{AfterSeq: q.AfterSeq, JobID: q.JobID, Resource: q.Resource, Types: q.Types, Limit: q.Limit, Newest: q.AfterSeq == 0}
	deadline := time.Now().Add(q.Wait)
	for {
		events, err := e.catalog.ListEvents(ctx, f)
		if err != nil {
			return vigil.EventPage{}, err
		}
		if len(events) > 0 || !time.Now().Before(deadline) {
			page := vigil.EventPage{Events: events, Deliveries: []vigil.Delivery{}}
			if len(events) > 0 {
				page.Deliveries, err = e.catalog.ListDeliveries(ctx, events[0].Seq, events[len(events)-1].Seq)
			}
			return page, err
		}
		select {
		case <-ctx.Done():
			return vigil.EventPage{Events: []vigil.Event{}, Deliveries: []vigil.Delivery{}}, nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func validEventType(t vigil.EventType) bool {
	for _, k := range vigil.EventTypes {
		if k == t {
			return true
		}
	}
	return false
}

// logJobEvents writes one line to the server's log for each job start and
// end among events, once they are committed: a person reading the journal
// of a systemd unit sees what ran, on which resource, how it ended and how
// long it took. A job that did not succeed is logged as a warning, with
// its message.
func (e *Engine) logJobEvents(events []vigil.Event) {
	for _, ev := range events {
		var started bool
		switch ev.Type {
		case vigil.EventBackupJobStarted, vigil.EventRestoreJobStarted, vigil.EventCopyJobStarted:
			started = true
		case vigil.EventBackupJobCompleted, vigil.EventBackupJobFailed, vigil.EventRestoreJobCompleted, vigil.EventRestoreJobFailed,
			vigil.EventCopyJobCompleted, vigil.EventCopyJobFailed, vigil.EventRestoreTestStatus:
		default:
			continue
		}
		var job struct {
			Status            string     `json:"status"`
			StatusMessage     string     `json:"status_message"`
			RestoreTest       bool       `json:"restore_test"`
			ValidationStatus  string     `json:"validation_status"`
			ValidationMessage string     `json:"validation_message"`
			StartedAt         *time.Time `json:"started_at"`
			CompletedAt       *time.Time `json:"completed_at"`
			TotalSeconds      float64    `json:"total_seconds"`
		}
		json.Unmarshal(ev.Data, &job) //nolint:errcheck // a line with fewer fields beats none
		attrs := []any{"event", string(ev.Type), "job", ev.JobID, "resource", ev.Resource}
		status, msg := job.Status, job.StatusMessage
		if ev.Type == vigil.EventRestoreTestStatus {
			status, msg = job.ValidationStatus, job.ValidationMessage
		}
		attrs = append(attrs, "status", status)
		if started {
			e.logger.Info("job started", attrs...)
			continue
		}
		switch {
		case ev.Type == vigil.EventRestoreTestStatus && job.TotalSeconds > 0:
			attrs = append(attrs, "duration", time.Duration(job.TotalSeconds*float64(time.Second)).Round(time.Millisecond).String())
		case job.StartedAt != nil && job.CompletedAt != nil:
			attrs = append(attrs, "duration", job.CompletedAt.Sub(*job.StartedAt).Round(time.Millisecond).String())
		}
		if ok := status == string(vigil.BackupCompleted) || status == string(vigil.ValidationSuccessful); ok {
			e.logger.Info("job ended", attrs...)
		} else {
			e.logger.Warn("job ended", append(attrs, "message", msg)...)
		}
	}
}
