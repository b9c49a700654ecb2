// Package restoretest is the restore-test loop: select a recovery point,
// restore it into a new copy, start the copy if it runs something,
// validate it, delete it, and report the verdict with the recovery time
// and the recovery point's age against the plan's targets
// (RESTORE_TEST_STATUS). It knows resources only through the resource
// package's interfaces.
//
// A restore test is a restore job with RestoreTest set. Every step is
// recorded before the next one starts, and the copy lives in a marked
// instance folder, so that after a crash Sweep knows what was created and
// deletes it (resource.Resource.Copy rebuilds the copy from the job).
package restoretest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/internal/testpause"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/vault"
)

// stopGrace is how long an app gets to exit after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// OnDemand names the plan of restore tests started by hand.
const OnDemand = "on-demand"

// Journal records the loop's state changes and carries its jobs on.
type Journal interface {
	catalog.Recorder
	// QueueRestoreTest queues the job that runs restore test jobID (Run),
	// in tx, the transaction that records the test.
	QueueRestoreTest(ctx context.Context, tx *catalog.Tx, jobID string) error
}

// Resources opens the resource of a recovery point: the configured one of
// that name and type, or, when it left the configuration, one of which
// only the name and type are known (the type may refuse that).
type Resources interface {
	Resource(name, typ string) (resource.Resource, error)
}

// Options is what a Tester works with.
type Options struct {
	Config  config.Source
	Catalog *catalog.Catalog
	Journal Journal
	Vaults  vault.Opener
	// Restic opens restic vaults; nil where none is configured.
	Restic    ResticOpener
	Resources Resources
	// Logger receives the loop's own log; nil discards it.
	Logger *slog.Logger
}

// Tester runs restore tests.
type Tester struct {
	cfg       config.Source
	catalog   *catalog.Catalog
	journal   Journal
	vaults    vault.Opener
	restic    ResticOpener
	resources Resources
	logger    *slog.Logger

	// running holds the restore tests a worker of this process is
	// running, or the sweep is finishing; the sweep leaves those alone.
	mu      sync.Mutex
	running map[string]bool

	// listings are the restic listings read for running restore tests'
	// checksum validators, by job id (restoreFromRestic).
	listings sync.Map

	// pauses are the test-only pauses of EnvPause.
	pauses testpause.Steps
}

// New returns a Tester, or says which option is missing.
func New(o Options) (*Tester, error) {
	switch {
	case o.Config == nil, o.Catalog == nil, o.Journal == nil, o.Vaults == nil, o.Resources == nil:
		return nil, errors.New("restoretest.New: Config, Catalog, Journal, Vaults and Resources are all needed")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	pauses, err := pauses()
	if err != nil {
		return nil, err
	}
	return &Tester{cfg: o.Config, catalog: o.Catalog, journal: o.Journal, vaults: o.Vaults, restic: o.Restic, resources: o.Resources,
		logger: o.Logger, running: map[string]bool{}, pauses: pauses}, nil
}

// Dir is where restore tests create their instances.
func (t *Tester) Dir() string { return filepath.Join(t.cfg.Current().DataDir, "restore-tests") }

// Start queues an on-demand restore test of a resource.
func (t *Tester) Start(ctx context.Context, req vigil.RestoreTestRequest) (vigil.RestoreJob, error) {
	res, ok := t.cfg.Current().Resource(req.Resource)
	if !ok {
		return vigil.RestoreJob{}, &vigil.UnknownNameError{Kind: "resource", Name: req.Resource, Known: t.cfg.Current().ResourceNames()}
	}
	plan := config.DefaultRestoreTestPlan()
	if req.Plan != "" {
		var ok bool
		if plan, ok = t.cfg.Current().RestoreTestPlan(req.Plan); !ok {
			var known []string
			for _, p := range t.cfg.Current().RestoreTesting {
				known = append(known, p.Name)
			}
			return vigil.RestoreJob{}, &vigil.UnknownNameError{Kind: "restore testing plan", Name: req.Plan, Known: known}
		}
	}
	var rp vigil.RecoveryPoint
	if req.RecoveryPointID != "" {
		var err error
		if rp, err = Restorable(ctx, t.catalog, req.RecoveryPointID); err != nil {
			return vigil.RestoreJob{}, err
		}
		if rp.Resource != res.Name {
			return vigil.RestoreJob{}, vigil.Invalidf("recovery point %s is a backup of %q, not %q: leave out --recovery-point to test the latest one", rp.ID, rp.Resource, res.Name)
		}
	} else {
		// The latest in each of the plan's vaults, when it names some,
		// else the latest in any; then the latest of those.
		vaults := plan.Vaults
		if len(vaults) == 0 {
			vaults = []string{""}
		}
		var rps []vigil.RecoveryPoint
		for _, v := range vaults {
			latest, err := t.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{
				Resource: res.Name, Vault: v, Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}, Limit: 1})
			if err != nil {
				return vigil.RestoreJob{}, fmt.Errorf("list recovery points of %s: %w", res.Name, err)
			}
			rps = append(rps, latest...)
		}
		slices.SortFunc(rps, func(a, b vigil.RecoveryPoint) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		if len(rps) == 0 {
			if len(plan.Vaults) > 0 {
				return vigil.RestoreJob{}, vigil.Invalidf("resource %q has no AVAILABLE recovery point in the vaults of plan %s (%v) to test: back it up or copy it there first", res.Name, plan.Name, plan.Vaults)
			}
			return vigil.RestoreJob{}, vigil.Invalidf("resource %q has no AVAILABLE recovery point to test: back it up first (vigil backup start --resource %s --vault NAME)", res.Name, res.Name)
		}
		rp = rps[0]
	}
	var job vigil.RestoreJob
	err := t.catalog.InTx(ctx, func(tx *catalog.Tx) error {
		var err error
		job, err = t.Queue(ctx, tx, rp, req.Plan)
		return err
	})
	if err != nil {
		return vigil.RestoreJob{}, fmt.Errorf("queue restore test: %w", err)
	}
	return job, nil
}

// Restorable returns recovery point id if a restore can read it. A DAMAGED
// point is restorable when a person names it: what is left of it may be
// all there is. It is never picked without being named.
func Restorable(ctx context.Context, cat *catalog.Catalog, id string) (vigil.RecoveryPoint, error) {
	rp, err := cat.GetRecoveryPoint(ctx, id)
	if errors.Is(err, vigil.ErrNotFound) {
		return rp, &vigil.UnknownNameError{Kind: "recovery point", Name: id, Known: recentRecoveryPointIDs(ctx, cat)}
	}
	if err != nil {
		return rp, fmt.Errorf("read recovery point: %w", err)
	}
	if rp.Status != vigil.RecoveryPointAvailable && rp.Status != vigil.RecoveryPointDamaged {
		return rp, vigil.Invalidf("recovery point %s is %s, not AVAILABLE: restore another one (vigil recovery-points list)", id, rp.Status)
	}
	return rp, nil
}

func recentRecoveryPointIDs(ctx context.Context, cat *catalog.Catalog) []string {
	rps, err := cat.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}, Limit: 10})
	if err != nil {
		return nil
	}
	var ids []string
	for _, rp := range rps {
		ids = append(ids, rp.ID)
	}
	return ids
}

// Queue records a restore test of rp by plan ("" for on-demand) and
// queues it, in tx.
func (t *Tester) Queue(ctx context.Context, tx *catalog.Tx, rp vigil.RecoveryPoint, plan string) (vigil.RestoreJob, error) {
	if plan == "" {
		plan = OnDemand
	}
	job := vigil.NewRestoreJob(rp, plan)
	job.RestoreTest, job.Plan = true, plan
	dir := filepath.Join(t.Dir(), job.ID, instance.DataDir)
	if res, err := t.resources.Resource(rp.Resource, rp.ResourceType); err == nil {
		res.PrepareTest(&job, rp, dir)
	} else {
		// The test ends early when it runs (the resource is gone); its
		// record still says where its copy would have been.
		job.Metadata = map[string]string{resource.MetaTargetPath: dir}
		job.CreatedResourceLocation = dir
	}
	if err := tx.InsertRestoreJob(ctx, &job); err != nil {
		return job, err
	}
	return job, t.journal.QueueRestoreTest(ctx, tx, job.ID)
}

// QueueOnBackup queues the restore tests that plans with
// on_backup_completed want for a new recovery point, in the transaction
// that lists it. A backup's recovery point is tested by the plans of its
// vault (a plan without vaults takes every vault's); a copy only by the
// plans that name its vault, so that a plan without vaults tests each
// backup once, not once more per copy.
func (t *Tester) QueueOnBackup(ctx context.Context, tx *catalog.Tx, rp *vigil.RecoveryPoint) error {
	for _, plan := range t.cfg.Current().RestoreTesting {
		if !plan.OnBackupCompleted || !slices.Contains(t.cfg.Current().TestPlanResources(plan), rp.Resource) || !plan.TestsVault(rp.Vault) {
			continue
		}
		if rp.SourceRecoveryPointID != "" && len(plan.Vaults) == 0 {
			continue
		}
		paused, err := tx.SkipIfPaused(ctx, vigil.PlanRef{Kind: vigil.RestoreTestPlanKind, Name: plan.Name}, now())
		if err != nil {
			return err
		}
		if paused {
			if err := logTo(ctx, tx, rp, fmt.Sprintf("restore testing plan %s is paused: no restore test of recovery point %s (vigil plans resume %s)", plan.Name, rp.ID, plan.Name)); err != nil {
				return err
			}
			continue
		}
		job, err := t.Queue(ctx, tx, *rp, plan.Name)
		if err != nil {
			return fmt.Errorf("queue restore test of plan %s: %w", plan.Name, err)
		}
		if err := logTo(ctx, tx, rp, fmt.Sprintf("restore testing plan %s queued restore test %s of recovery point %s", plan.Name, job.ID, rp.ID)); err != nil {
			return err
		}
	}
	return nil
}

// logTo appends line to the log of the job that made rp; a point listed
// from a foreign vault has no job of vigil's, and the line goes nowhere.
func logTo(ctx context.Context, tx *catalog.Tx, rp *vigil.RecoveryPoint, line string) error {
	if rp.JobID() == "" {
		return nil
	}
	return tx.AppendLog(ctx, rp.JobID(), line)
}

// plan returns the settings a restore test runs with: its plan's, or the
// on-demand defaults.
func (t *Tester) plan(job *vigil.RestoreJob) config.RestoreTestPlan {
	if p, ok := t.cfg.Current().RestoreTestPlan(job.Plan); ok {
		return p
	}
	return config.DefaultRestoreTestPlan()
}

// jobLog appends a line to a job's own log. A failure to log is reported
// to the logger but never fails the test.
func (t *Tester) jobLog(ctx context.Context, jobID, format string, args ...any) {
	if err := t.catalog.AppendLog(context.WithoutCancel(ctx), jobID, fmt.Sprintf(format, args...)); err != nil {
		t.logger.Error("append job log", "job", jobID, "err", err)
	}
}

// claim marks restore tests as run by this process, so that the sweep
// leaves them alone; it reports false when one already is.
func (t *Tester) claim(ids ...string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if t.running[id] {
			return false
		}
	}
	for _, id := range ids {
		t.running[id] = true
	}
	return true
}

func (t *Tester) release(ids ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		delete(t.running, id)
	}
}

// ReportValidation takes a verdict from validation logic outside vigil
// (AWS's PutRestoreValidationResult) for a restore test that is validating
// and has an external validator.
func (t *Tester) ReportValidation(ctx context.Context, id string, status vigil.ValidationStatus, message string) (vigil.RestoreJob, error) {
	if status != vigil.ValidationSuccessful && status != vigil.ValidationFailed {
		return vigil.RestoreJob{}, vigil.Invalidf("status %q: report SUCCESSFUL or FAILED", status)
	}
	job, err := t.catalog.GetRestoreJob(ctx, id)
	if errors.Is(err, vigil.ErrNotFound) {
		return job, fmt.Errorf("%w: no restore job %s; list restore tests with 'vigil jobs list --type restore'", vigil.ErrNotFound, id)
	}
	if err != nil {
		return job, err
	}
	if !job.RestoreTest {
		return job, vigil.Invalidf("restore job %s is a plain restore, not a restore test: nothing validates it", id)
	}
	res, _ := t.cfg.Current().Resource(job.Resource)
	if !slices.ContainsFunc(res.Validate, func(v config.Validator) bool { return v.External != nil }) {
		return job, vigil.Invalidf("resource %q has no external validator: add `- external: {}` to its validate list to report verdicts for it", job.Resource)
	}
	ok, err := t.catalog.SetExternalValidation(ctx, id, vigil.ExternalValidation{Status: status, Message: message, Time: now()})
	if err != nil {
		return job, err
	}
	if !ok {
		job, _ = t.catalog.GetRestoreJob(ctx, id)
		if job.ExternalValidation != nil {
			return job, &vigil.ConflictError{Msg: fmt.Sprintf("restore test %s already has a reported verdict (%s): a verdict is reported once", id, job.ExternalValidation.Status)}
		}
		return job, &vigil.ConflictError{Msg: fmt.Sprintf("restore test %s is not validating (restore %s, validation %q): report a verdict while its validation status is VALIDATING", id, job.Status, job.ValidationStatus)}
	}
	t.jobLog(ctx, id, "external validation reported %s: %s", status, message)
	return t.catalog.GetRestoreJob(ctx, id)
}

func ptr[T any](v T) *T { return &v }

func now() time.Time { return time.Now().UTC() }
