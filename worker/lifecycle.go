package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// ExpireArgs looks for recovery points whose expire_at has passed and
// deletes them. It runs every lifecycle.check_interval.
type ExpireArgs struct{}

func (ExpireArgs) Kind() string { return "vigil.expire" }

// MaintainArgs runs Kopia maintenance on one vault, which reclaims the space
// of deleted recovery points.
type MaintainArgs struct {
	Vault string `json:"vault"`
	Full  bool   `json:"full"`
}

func (MaintainArgs) Kind() string { return "vigil.maintain" }

// maintenanceInterval is how often a full maintenance runs on every vault, in
// addition to the quick one after each expiry.
const maintenanceInterval = 24 * time.Hour

// maintainOpts lets one maintenance of a vault be queued or running at a
// time, across all workers: Kopia's own lock against concurrent maintenance
// is local to one machine. Space freed while one runs is reclaimed by the
// next one (after the next expiry, or the daily full maintenance).
var maintainOpts = &river.InsertOpts{UniqueOpts: river.UniqueOpts{
	ByArgs:  true,
	ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateRetryable},
}}

func (e *Engine) periodicJobs() []*river.PeriodicJob {
	jobs := []*river.PeriodicJob{
		river.NewPeriodicJob(
			river.PeriodicInterval(time.Duration(e.cfg.Current().Lifecycle.CheckInterval)),
			func() (river.JobArgs, *river.InsertOpts) { return ExpireArgs{}, nil },
			&river.PeriodicJobOpts{ID: "expire", RunOnStart: true},
		),
	}
	for _, v := range e.cfg.Current().Vaults {
		if v.Foreign() {
			// Another tool maintains it; vigil lists its snapshots, one
			// sync at a time, the first at start.
			var schedule river.PeriodicSchedule = river.PeriodicInterval(15 * time.Minute) // config.DefaultSyncSchedule
			if v.Sync != nil && v.Sync.Cron != nil {
				schedule = v.Sync.Cron
			}
			jobs = append(jobs, river.NewPeriodicJob(
				schedule,
				func() (river.JobArgs, *river.InsertOpts) { return SyncArgs{Vault: v.Name}, maintainOpts },
				&river.PeriodicJobOpts{ID: "sync:" + v.Name, RunOnStart: true},
			))
		} else {
			jobs = append(jobs, river.NewPeriodicJob(
				river.PeriodicInterval(maintenanceInterval),
				func() (river.JobArgs, *river.InsertOpts) {
					return MaintainArgs{Vault: v.Name, Full: true}, maintainOpts
				},
				&river.PeriodicJobOpts{ID: "maintain:" + v.Name},
			))
		}
		if v.Verify != nil {
			// one night at a time per vault, as for maintenance
			jobs = append(jobs, river.NewPeriodicJob(
				v.Verify.Cron,
				func() (river.JobArgs, *river.InsertOpts) { return RollingVerifyArgs{Vault: v.Name}, maintainOpts },
				&river.PeriodicJobOpts{ID: "verify:" + v.Name},
			))
		}
	}
	for _, j := range planJobs(e.cfg.Current()) {
		jobs = append(jobs, j.job)
	}
	return jobs
}

// planJobs are the periodic jobs of cfg's plans: each backup plan, and
// each restore testing plan with a schedule of its own.
func planJobs(cfg *config.Config) []planJob {
	var jobs []planJob
	for _, p := range cfg.BackupPlans {
		id := "plan:" + p.Name
		jobs = append(jobs, planJob{id, river.NewPeriodicJob(
			p.Cron,
			func() (river.JobArgs, *river.InsertOpts) { return PlanArgs{Plan: p.Name}, nil },
			&river.PeriodicJobOpts{ID: id},
		)})
	}
	for _, p := range cfg.RestoreTesting {
		if p.Cron == nil {
			continue
		}
		id := "test-plan:" + p.Name
		jobs = append(jobs, planJob{id, river.NewPeriodicJob(
			p.Cron,
			func() (river.JobArgs, *river.InsertOpts) { return TestPlanArgs{Plan: p.Name}, nil },
			&river.PeriodicJobOpts{ID: id},
		)})
	}
	return jobs
}

// expireAll expires every recovery point whose expire_at has passed, then
// those no retention rule of their plan keeps, and queues a full
// maintenance of each vault that lost one.
func (e *Engine) expireAll(ctx context.Context, _ ExpireArgs) error {
	rps, err := e.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{
		// DAMAGED ones too: what is left of them leaves the vault on time.
		Status:        []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable, vigil.RecoveryPointDamaged, vigil.RecoveryPointDeleting},
		ExpiredBefore: ptr(now()),
	})
	if err != nil {
		return fmt.Errorf("list expired recovery points: %w", err)
	}
	vaults := map[string]bool{}
	var errs []error
	for _, rp := range rps {
		if err := e.expire(ctx, &rp, expiryReason(&rp)); err != nil {
			// The point stays DELETING and the next pass tries again.
			errs = append(errs, err)
			continue
		}
		vaults[rp.Vault] = true
	}
	errs = append(errs, e.applyRetention(ctx, vaults)...)
	if len(vaults) > 0 {
		err := e.catalog.InTx(ctx, func(tx *catalog.Tx) error {
			for v := range vaults {
				// Full: only a full pass collects the data of deleted snapshots.
				if err := e.insertTx(ctx, tx, MaintainArgs{Vault: v, Full: true}, maintainOpts); err != nil {
					return err
				}
			}
			return nil
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// expire moves one recovery point through DELETING to EXPIRED, deleting its
// snapshot from the vault in between; why says, in its event and its job's
// log, why it went ("it reached its expiry …"). Each step is recorded
// first, so a crash leaves the point DELETING, and the next pass finishes
// it.
func (e *Engine) expire(ctx context.Context, rp *vigil.RecoveryPoint, why string) error {
	if rp.Status != vigil.RecoveryPointDeleting {
		rp.Status = vigil.RecoveryPointDeleting
		if err := e.catalog.UpdateRecoveryPoint(ctx, rp); err != nil {
			return fmt.Errorf("mark recovery point %s deleting: %w", rp.ID, err)
		}
	}
	v, err := e.Vault(ctx, rp.Vault)
	if err != nil {
		return fmt.Errorf("expire recovery point %s: %w", rp.ID, err)
	}
	if err := v.DeleteSnapshot(ctx, rp.SnapshotID); err != nil {
		return fmt.Errorf("delete snapshot of recovery point %s: %w", rp.ID, err)
	}
	rp.Status = vigil.RecoveryPointExpired
	err = e.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRecoveryPoint(ctx, rp) },
		vigil.Event{
			Type: vigil.EventRecoveryPointExpired, Resource: rp.Resource, JobID: rp.JobID(), RecoveryPointID: rp.ID,
			Subject: fmt.Sprintf("Recovery point %s of %s expired", rp.ID, rp.Resource),
			Message: fmt.Sprintf("Recovery point %s of %s %q (backed up %s) was deleted from vault %q: %s.",
				rp.ID, rp.ResourceType, rp.Resource, rp.CreatedAt.Format(time.RFC3339), rp.Vault, why),
		}.WithData(rp))
	if err != nil {
		return fmt.Errorf("mark recovery point %s expired: %w", rp.ID, err)
	}
	e.jobLog(ctx, rp.JobID(), "recovery point %s expired and was deleted from vault %q: %s", rp.ID, rp.Vault, why)
	return nil
}

func (e *Engine) maintain(ctx context.Context, args MaintainArgs) error {
	if _, ok := e.cfg.Current().Vault(args.Vault); !ok {
		return river.JobCancel(fmt.Errorf("vault %q is no longer configured", args.Vault))
	}
	v, err := e.Vault(ctx, args.Vault)
	if err != nil {
		return err
	}
	if err := v.Maintain(ctx, args.Full); err != nil {
		return fmt.Errorf("maintain vault %q: %w", args.Vault, err)
	}
	return nil
}
