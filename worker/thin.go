package worker

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// thin is a River worker that hands its job's args to work: the work
// itself lives in the package that owns it (backup, restoretest, vault).
type thin[A river.JobArgs] struct {
	river.WorkerDefaults[A]
	// timeout bounds one attempt; 0 means River's JobTimeout
	// (workers.job_timeout).
	timeout time.Duration
	work    func(ctx context.Context, args A) error
}

func (w *thin[A]) Timeout(*river.Job[A]) time.Duration { return w.timeout }

func (w *thin[A]) Work(ctx context.Context, rj *river.Job[A]) error { return w.work(ctx, rj.Args) }

func addThin[A river.JobArgs](workers *river.Workers, timeout time.Duration, work func(ctx context.Context, args A) error) {
	river.AddWorker(workers, &thin[A]{timeout: timeout, work: work})
}
