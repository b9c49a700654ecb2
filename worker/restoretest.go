package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/database"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/validate"
	"github.com/vigil-backup/vigil/vault"
)

// The restore-test loop. A restore test is a restore job with RestoreTest
// set. Its worker restores the recovery point into a new instance (a
// marked folder under data_dir/restore-tests, and for an app a process on
// a new port), runs the resource's validators, deletes the instance and
// emits RESTORE_TEST_STATUS. Every step is recorded before the next one
// starts, so that after a crash sweepRestoreTests knows what was created
// and deletes it.

// stopGrace is how long an app gets to exit after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// StartRestoreTest queues a restore test of a resource.
func (e *Engine) StartRestoreTest(ctx context.Context, req vigil.RestoreTestRequest) (vigil.RestoreJob, error) {
	res, ok := e.cfg.Resource(req.Resource)
	if !ok {
		return vigil.RestoreJob{}, &vigil.UnknownNameError{Kind: "resource", Name: req.Resource, Known: e.cfg.ResourceNames()}
	}
	if req.Plan != "" {
		if _, ok := e.cfg.RestoreTestPlan(req.Plan); !ok {
			var known []string
			for _, p := range e.cfg.RestoreTesting {
				known = append(known, p.Name)
			}
			return vigil.RestoreJob{}, &vigil.UnknownNameError{Kind: "restore testing plan", Name: req.Plan, Known: known}
		}
	}
	var rp vigil.RecoveryPoint
	if req.RecoveryPointID != "" {
		var err error
		if rp, err = e.restorableRecoveryPoint(ctx, req.RecoveryPointID); err != nil {
			return vigil.RestoreJob{}, err
		}
		if rp.Resource != res.Name {
			return vigil.RestoreJob{}, vigil.Invalidf("recovery point %s is a backup of %q, not %q: leave out --recovery-point to test the latest one", rp.ID, rp.Resource, res.Name)
		}
	} else {
		rps, err := e.catalog.ListRecoveryPoints(ctx, catalog.RecoveryPointFilter{
			Resource: res.Name, Status: []vigil.RecoveryPointStatus{vigil.RecoveryPointAvailable}, Limit: 1})
		if err != nil {
			return vigil.RestoreJob{}, fmt.Errorf("list recovery points of %s: %w", res.Name, err)
		}
		if len(rps) == 0 {
			return vigil.RestoreJob{}, vigil.Invalidf("resource %q has no AVAILABLE recovery point to test: back it up first (vigil backup start --resource %s --vault NAME)", res.Name, res.Name)
		}
		rp = rps[0]
	}
	var job vigil.RestoreJob
	err := e.catalog.InTx(ctx, func(tx *catalog.Tx) error {
		var err error
		job, err = e.queueRestoreTest(ctx, tx, rp, req.Plan)
		return err
	})
	if err != nil {
		return vigil.RestoreJob{}, fmt.Errorf("queue restore test: %w", err)
	}
	return job, nil
}

// queueRestoreTest records a restore test of rp by plan ("" for on-demand)
// and queues it, in tx.
func (e *Engine) queueRestoreTest(ctx context.Context, tx *catalog.Tx, rp vigil.RecoveryPoint, plan string) (vigil.RestoreJob, error) {
	if plan == "" {
		plan = "on-demand"
	}
	job := vigil.RestoreJob{
		ID:                vigil.NewID(vigil.PrefixRestoreJob),
		Status:            vigil.RestorePending,
		RecoveryPointID:   rp.ID,
		Resource:          rp.Resource,
		ResourceType:      rp.ResourceType,
		CreatedResourceID: vigil.NewID("res"),
		CreatedBy:         plan,
		CreatedAt:         now(),
		RestoreTest:       true,
	}
	dir := filepath.Join(e.testsDir(), job.ID, "data")
	job.Metadata = map[string]string{MetaTargetPath: dir}
	job.CreatedResourceLocation = dir
	if res, ok := e.cfg.Resource(rp.Resource); ok && vigil.IsDatabase(rp.ResourceType) && res.Type == rp.ResourceType {
		// The new database: a file in the instance folder, or a database
		// on the resource's own server named after the test.
		job.Metadata = e.databaseDefaults(res, rp)
		switch rp.ResourceType {
		case vigil.ResourceSQLite:
			job.Metadata[MetaTargetPath] = filepath.Join(dir, filepath.Base(job.Metadata[MetaTargetPath]))
			job.CreatedResourceLocation = job.Metadata[MetaTargetPath]
		default:
			job.Metadata[MetaTargetDatabase] = strings.ReplaceAll(job.Metadata[MetaTargetDatabase], restoreJobPlaceholder, job.ID)
			if srv := res.Server; srv.Engine != "" {
				job.CreatedResourceLocation = srv.WithDatabase(job.Metadata[MetaTargetDatabase]).String()
			}
		}
	}
	if err := tx.InsertRestoreJob(ctx, &job); err != nil {
		return job, err
	}
	return job, e.insertTx(ctx, tx, RestoreArgs{JobID: job.ID}, nil)
}

// queueTestsOnBackup queues the restore tests that plans with
// on_backup_completed want for a new recovery point.
func (e *Engine) queueTestsOnBackup(ctx context.Context, tx *catalog.Tx, rp *vigil.RecoveryPoint) error {
	for _, plan := range e.cfg.RestoreTesting {
		if !plan.OnBackupCompleted || !slices.Contains(e.cfg.TestPlanResources(plan), rp.Resource) {
			continue
		}
		job, err := e.queueRestoreTest(ctx, tx, *rp, plan.Name)
		if err != nil {
			return fmt.Errorf("queue restore test of plan %s: %w", plan.Name, err)
		}
		if err := tx.AppendLog(ctx, rp.BackupJobID, fmt.Sprintf("restore testing plan %s queued restore test %s of recovery point %s", plan.Name, job.ID, rp.ID)); err != nil {
			return err
		}
	}
	return nil
}

// testsDir is where restore tests create their instances.
func (e *Engine) testsDir() string { return filepath.Join(e.cfg.DataDir, "restore-tests") }

// testPlan returns the settings a restore test runs with: its plan's, or
// the on-demand defaults.
func (e *Engine) testPlan(name string) config.RestoreTestPlan {
	if p, ok := e.cfg.RestoreTestPlan(name); ok {
		return p
	}
	return config.DefaultRestoreTestPlan()
}

// runRestoreTest carries one restore test through restore, validation and
// clean-up.
func (e *Engine) runRestoreTest(ctx context.Context, job *vigil.RestoreJob) error {
	if job.Status != vigil.RestorePending {
		// Already run, or interrupted: sweepRestoreTests finishes it.
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // vigil is stopping: River runs the test again later
	}
	if !e.claimTests(job.ID) {
		return nil
	}
	defer e.releaseTests(job.ID)
	plan := e.testPlan(job.CreatedBy)
	res, ok := e.cfg.Resource(job.Resource)
	switch {
	case !ok:
		return e.endTestEarly(ctx, job, vigil.RestoreFailed, fmt.Sprintf("resource %q is no longer in the configuration: add it back to test it", job.Resource))
	case plan.StartWindow > 0 && time.Since(job.CreatedAt) > time.Duration(plan.StartWindow):
		return e.endTestEarly(ctx, job, vigil.RestoreAborted, fmt.Sprintf("not started within the plan's start window of %s (queued at %s): the next run of plan %s tests again",
			time.Duration(plan.StartWindow), job.CreatedAt.Format(time.RFC3339), plan.Name))
	}
	rp, err := e.catalog.GetRecoveryPoint(ctx, job.RecoveryPointID)
	switch {
	case errors.Is(err, vigil.ErrNotFound):
		return e.endTestEarly(ctx, job, vigil.RestoreFailed, fmt.Sprintf("recovery point %s is not in the catalog", job.RecoveryPointID))
	case err != nil:
		return err // the catalog is unreachable: River tries again
	case rp.Status != vigil.RecoveryPointAvailable:
		return e.endTestEarly(ctx, job, vigil.RestoreFailed, fmt.Sprintf("recovery point %s is %s, not AVAILABLE: it expired before it could be tested; test a newer one", rp.ID, rp.Status))
	}

	// Step 1: record RUNNING, then create the marked instance folder.
	job.Status = vigil.RestoreRunning
	job.StartedAt = ptr(now())
	job.Node = e.cfg.Node
	job.RecoveryPointAgeSeconds = job.StartedAt.Sub(rp.CreatedAt).Seconds()
	err = e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) },
		restoreEvent(vigil.EventRestoreJobStarted, job))
	if err != nil {
		return err
	}
	e.jobLog(ctx, job.ID, "restore test (plan %s) of recovery point %s (%s %q, vault %q, %s old) started on node %s",
		plan.Name, rp.ID, rp.ResourceType, rp.Resource, rp.Vault, seconds(job.RecoveryPointAgeSeconds), e.cfg.Node)

	inst, err := instance.Create(e.testsDir(), job.ID)
	if err != nil {
		return e.failTestRestore(ctx, job, nil, fmt.Sprintf("create the new resource's folder: %v", err))
	}
	job.CreatedResourceLocation = inst.Dir

	// Step 2: restore the data.
	restoreStart := time.Now()
	v, err := e.Vault(ctx, rp.Vault)
	if err != nil {
		return e.failTestRestore(ctx, job, inst, err.Error())
	}
	var restored string
	if vigil.IsDatabase(rp.ResourceType) {
		var t database.Target
		var size int64
		t, err = e.databaseTarget(job, &rp)
		t.DisableEvents = true // the copy is checked, not run
		if err == nil {
			size, _, err = e.restoreDatabase(ctx, v, rp, t)
			job.CreatedResourceLocation = t.String()
		}
		restored = fmt.Sprintf("loaded a %d-byte dump into the new database %s", size, t)
	} else {
		var result vault.RestoreResult
		result, err = v.Restore(ctx, rp.SnapshotID, inst.Dir, nil)
		restored = fmt.Sprintf("restored %d files, %d folders, %d bytes into %s", result.Files, result.Dirs, result.Bytes, inst.Dir)
	}
	if err != nil {
		if ctx.Err() != nil {
			return e.failTestRestore(ctx, job, inst, "interrupted: vigil was stopped during the restore")
		}
		return e.failTestRestore(ctx, job, inst, err.Error())
	}
	job.RestoreSeconds = time.Since(restoreStart).Seconds()
	job.Status = vigil.RestoreCompleted
	job.CompletedAt = ptr(now())
	job.ValidationStatus = vigil.ValidationValidating
	err = e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) },
		restoreEvent(vigil.EventRestoreJobCompleted, job))
	if err != nil {
		return err
	}
	e.jobLog(ctx, job.ID, "%s in %s", restored, seconds(job.RestoreSeconds))

	// Step 3: start the app, then validate.
	verdict := e.validateInstance(ctx, job, inst, res, rp, plan)
	job.ValidationStatus = verdict.Status
	job.ValidationMessage = verdict.Message
	job.TotalSeconds = time.Since(*job.StartedAt).Seconds()
	e.jobLog(ctx, job.ID, "validation %s in %s: %s", verdict.Status, seconds(job.ValidationSeconds), verdict.Message)

	// Step 4: delete the instance, unless a failed one is kept to look at
	// (a test that vigil's stop cut short proves nothing worth keeping).
	if plan.KeepOnFailure && verdict.Status != vigil.ValidationSuccessful && ctx.Err() == nil {
		job.KeepUntil = ptr(now().Add(time.Duration(plan.KeepFor)))
		job.DeletionMessage = fmt.Sprintf("kept for inspection at %s until %s (keep_on_failure), then deleted", job.CreatedResourceLocation, job.KeepUntil.Format(time.RFC3339))
		return e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) },
			e.testStatusEvent(job, plan))
	}
	job.DeletionStatus = vigil.DeletionDeleting
	if err := e.catalog.UpdateRestoreJob(context.WithoutCancel(ctx), job); err != nil {
		return fmt.Errorf("record verdict of restore test %s: %w", job.ID, err)
	}
	return e.deleteInstance(ctx, job, inst, plan, true)
}

// validateInstance starts an app's process when the resource is an app,
// and runs the validators within the plan's window.
func (e *Engine) validateInstance(ctx context.Context, job *vigil.RestoreJob, inst *instance.Instance, res config.Resource, rp vigil.RecoveryPoint, plan config.RestoreTestPlan) validate.Result {
	target := validate.Target{
		JobID:           job.ID,
		RecoveryPointID: rp.ID,
		Resource:        res.Name,
		Dir:             inst.Dir,
		Log:             func(format string, args ...any) { e.jobLog(ctx, job.ID, format, args...) },
		Checksum: func(ctx context.Context, pct float64) error {
			return e.compareWithRecoveryPoint(ctx, job.ID, rp, inst.Dir, pct)
		},
		External: func(ctx context.Context) (vigil.ValidationStatus, string, bool, error) {
			j, err := e.catalog.GetRestoreJob(ctx, job.ID)
			if err != nil || j.ExternalValidation == nil {
				return "", "", false, err
			}
			return j.ExternalValidation.Status, j.ExternalValidation.Message, true, nil
		},
	}
	window := time.Duration(plan.ValidationWindow)
	begin := time.Now()
	defer func() { job.ValidationSeconds = time.Since(begin).Seconds() - job.StartSeconds }()
	if vigil.IsDatabase(res.Type) {
		return stopped(ctx, e.validateDatabase(ctx, job, res, rp, target, window))
	}
	if res.Type != vigil.ResourceApp {
		return stopped(ctx, validate.Run(ctx, res.Validate, target, window))
	}

	// An app's checksum checks run first, on the files as restored: what
	// the app writes into its folder once it runs is not a difference.
	var files, others []config.Validator
	var filesAt, othersAt []int
	for i, v := range res.Validate {
		if v.Checksum != nil {
			files, filesAt = append(files, v), append(filesAt, i+1)
		} else {
			others, othersAt = append(others, v), append(othersAt, i+1)
		}
	}
	var filesPassed string
	if len(files) > 0 {
		target.Positions = filesAt
		r := validate.Run(ctx, files, target, window)
		if r.Status != vigil.ValidationSuccessful {
			return stopped(ctx, r)
		}
		filesPassed = r.Message
	}

	startAt := time.Now()
	proc, err := inst.Start(res, e.appLog(ctx, job.ID))
	job.StartSeconds = time.Since(startAt).Seconds()
	if err != nil {
		return validate.Result{Status: vigil.ValidationFailed, Message: fmt.Sprintf("the app could not be started: %v", err)}
	}
	target.Host, target.Port, target.URL = proc.Host(), proc.Port(), proc.URL()
	job.CreatedResourceLocation = proc.URL()
	// The instance's location is recorded at once, so a person looking at
	// a running test can open it.
	if err := e.catalog.UpdateRestoreJob(ctx, job); err != nil {
		e.logger.Warn("record app location", "job", job.ID, "err", err)
	}
	e.jobLog(ctx, job.ID, "app started in %s at %s (%s)", seconds(job.StartSeconds), proc.URL(), inst.Dir)
	if len(others) == 0 {
		return validate.Result{Status: vigil.ValidationSuccessful, Message: filesPassed}
	}
	vctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-proc.Exited():
			cancel(fmt.Errorf("the app %s before validation passed; its last output:\n%s", proc.ExitReason(), strings.Join(proc.LastLines(), "\n")))
		case <-vctx.Done():
		}
	}()
	target.Positions = othersAt
	verdict := validate.Run(vctx, others, target, max(window-time.Since(begin), time.Millisecond))
	if verdict.Status == vigil.ValidationSuccessful && filesPassed != "" {
		// One summary, as if the checks had run in one go.
		verdict.Message = fmt.Sprintf("all %d checks passed in %s: %s; %s", len(res.Validate),
			time.Since(begin).Round(time.Millisecond), passedDetail(filesPassed), passedDetail(verdict.Message))
	}
	return stopped(ctx, verdict)
}

// passedDetail is the list of what passed in a successful verdict's message
// ("1 check passed in 3ms: http GET / (status 200)").
func passedDetail(msg string) string {
	if _, detail, ok := strings.Cut(msg, ": "); ok {
		return detail
	}
	return msg
}

// stopped rewords a verdict that vigil's own stop cut short: the test did
// not pass, and the message says it was interrupted rather than failed.
func stopped(ctx context.Context, verdict validate.Result) validate.Result {
	if ctx.Err() != nil && verdict.Status != vigil.ValidationSuccessful {
		return validate.Result{Status: vigil.ValidationFailed, Message: "interrupted: vigil was stopped during validation (" + verdict.Message + "): the next test will tell"}
	}
	return verdict
}

// maxAppLogLines caps how much of an app's output goes into the job log: a
// chatty app (one line per request) must not fill the catalog. The last
// lines are kept apart for the verdict when the app dies.
const maxAppLogLines = 500

// appLog returns the sink of a restored app's output lines.
func (e *Engine) appLog(ctx context.Context, jobID string) func(string) {
	n := 0
	return func(line string) {
		n++
		switch {
		case n <= maxAppLogLines:
			e.jobLog(ctx, jobID, "%s", line)
		case n == maxAppLogLines+1:
			e.jobLog(ctx, jobID, "(the app's further output is not logged: %d lines is the limit)", maxAppLogLines)
		}
	}
}

// compareWithRecoveryPoint is the checksum validator: the restored files
// against the vault's own record of them.
func (e *Engine) compareWithRecoveryPoint(ctx context.Context, jobID string, rp vigil.RecoveryPoint, dir string, pct float64) error {
	v, err := e.Vault(ctx, rp.Vault)
	if err != nil {
		return err
	}
	cmp, err := v.Compare(ctx, rp.SnapshotID, dir, pct)
	if err != nil {
		return fmt.Errorf("compare with recovery point %s: %w", rp.ID, err)
	}
	if len(cmp.Mismatches) > 0 {
		return fmt.Errorf("the restored files differ from recovery point %s: %s", rp.ID, strings.Join(cmp.Mismatches, "; "))
	}
	e.jobLog(ctx, jobID, "checksum: %d files, %d folders, %d symlinks match recovery point %s; content of %d files (%d bytes) compared",
		cmp.Files, cmp.Dirs, cmp.Symlinks, rp.ID, cmp.Compared, cmp.Bytes)
	return nil
}

// deleteInstance terminates and deletes a restore test's instance and
// records the outcome. announce emits the test's RESTORE_TEST_STATUS with
// it: once per test, when its verdict is new (not when a kept copy's time
// is up or a failed deletion is retried: those only go to the job's log).
func (e *Engine) deleteInstance(ctx context.Context, job *vigil.RestoreJob, inst *instance.Instance, plan config.RestoreTestPlan, announce bool) error {
	ctx = context.WithoutCancel(ctx)
	start := time.Now()
	var err error
	if inst == nil {
		inst, err = instance.Open(e.testsDir(), job.ID)
		if errors.Is(err, os.ErrNotExist) {
			inst, err = nil, nil // nothing was created, or it is already gone
		}
	}
	var dropped string
	if err == nil && vigil.IsDatabase(job.ResourceType) && job.Metadata[MetaTargetDatabase] != "" {
		dropped, err = e.dropDatabase(ctx, job)
	}
	if err == nil && inst != nil {
		err = inst.Remove(stopGrace)
	}
	job.CleanupSeconds = time.Since(start).Seconds()
	job.KeepUntil = nil
	if err != nil {
		job.DeletionStatus = vigil.DeletionFailed
		job.DeletionMessage = fmt.Sprintf("deleting the new resource failed: %v; vigil tries again every %s", err, time.Duration(e.cfg.Lifecycle.CheckInterval))
	} else {
		job.DeletionStatus = vigil.DeletionSuccessful
		job.DeletionMessage = "the new resource was deleted"
		if job.ResourceType == vigil.ResourceApp {
			job.DeletionMessage = "the new resource was deleted: its processes were terminated and its folder removed"
		}
		job.DeletionMessage += dropped
	}
	e.jobLog(ctx, job.ID, "clean-up %s in %s: %s", job.DeletionStatus, seconds(job.CleanupSeconds), job.DeletionMessage)
	var events []event
	if announce {
		events = append(events, e.testStatusEvent(job, plan))
	}
	return e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) }, events...)
}

// failTestRestore ends a restore test whose restore failed: the verdict is
// FAILED, and whatever was created is deleted.
func (e *Engine) failTestRestore(ctx context.Context, job *vigil.RestoreJob, inst *instance.Instance, msg string) error {
	status := vigil.RestoreFailed
	if ctx.Err() != nil {
		status = vigil.RestoreAborted
	}
	job.Status = status
	job.StatusMessage = msg
	job.CompletedAt = ptr(now())
	job.ValidationStatus = vigil.ValidationFailed
	job.ValidationMessage = "the restore did not complete: " + msg
	job.TotalSeconds = time.Since(*job.StartedAt).Seconds()
	job.DeletionStatus = vigil.DeletionDeleting
	err := e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) },
		restoreEvent(vigil.EventRestoreJobFailed, job))
	if err != nil {
		return err
	}
	e.jobLog(ctx, job.ID, "%s: %s", status, msg)
	return e.deleteInstance(ctx, job, inst, e.testPlan(job.CreatedBy), true)
}

// endTestEarly ends a restore test that never created anything.
func (e *Engine) endTestEarly(ctx context.Context, job *vigil.RestoreJob, status vigil.RestoreJobStatus, msg string) error {
	job.Status = status
	job.StatusMessage = msg
	job.CompletedAt = ptr(now())
	job.ValidationStatus = vigil.ValidationFailed
	job.ValidationMessage = "the restore did not run: " + msg
	job.DeletionStatus = vigil.DeletionSuccessful
	job.DeletionMessage = "nothing was created"
	e.jobLog(ctx, job.ID, "%s: %s", status, msg)
	return e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) },
		restoreEvent(vigil.EventRestoreJobFailed, job), e.testStatusEvent(job, e.testPlan(job.CreatedBy)))
}

// sweepRestoreTests finishes this node's restore tests that no worker of
// this process is running and whose copy is not known deleted: tests a
// crash (or a failed catalog write) interrupted end with a verdict, failed
// deletions are retried, and kept copies whose time is up are deleted. At
// start-up it also removes instance folders that no unfinished test owns.
func (e *Engine) sweepRestoreTests(ctx context.Context, startup bool) error {
	e.testsMu.Lock()
	jobs, err := e.catalog.ListRestoreJobs(ctx, catalog.RestoreJobFilter{NotDeleted: true, Node: e.cfg.Node})
	if err != nil {
		e.testsMu.Unlock()
		return fmt.Errorf("list restore tests to clean up: %w", err)
	}
	var mine []vigil.RestoreJob
	for _, job := range jobs {
		kept := job.DeletionStatus == "" && job.KeepUntil != nil && job.ValidationStatus.Final()
		if e.testsRunning[job.ID] || kept && now().Before(*job.KeepUntil) {
			continue // running here, or still kept (its app survives restarts)
		}
		e.testsRunning[job.ID] = true
		mine = append(mine, job)
	}
	e.testsMu.Unlock()

	var errs []error
	for i := range mine {
		job := &mine[i]
		err := e.finishTest(ctx, job)
		e.releaseTests(job.ID)
		errs = append(errs, err)
	}
	if startup {
		// Instances whose job says they are deleted, or that no job knows,
		// were left between two steps: vigil made them (they carry its
		// mark), so they go too.
		removed, err := instance.Sweep(e.testsDir(), func(jobID string) bool {
			j, err := e.catalog.GetRestoreJob(ctx, jobID)
			if err != nil {
				return !errors.Is(err, vigil.ErrNotFound)
			}
			return j.DeletionStatus != vigil.DeletionSuccessful
		}, stopGrace)
		for _, id := range removed {
			e.logger.Info("removed a restore test's leftover instance", "job", id)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// finishTest ends a restore test no worker is running, and deletes its copy.
func (e *Engine) finishTest(ctx context.Context, job *vigil.RestoreJob) error {
	var events []event
	announce := !job.ValidationStatus.Final()
	if announce {
		// Interrupted: the test ends with a verdict now.
		step := "validation"
		if job.Status == vigil.RestoreRunning {
			step = "the restore"
			job.Status = vigil.RestoreAborted
			job.StatusMessage = "interrupted: vigil stopped during the restore"
			job.CompletedAt = ptr(now())
			events = append(events, restoreEvent(vigil.EventRestoreJobFailed, job))
		}
		job.ValidationStatus = vigil.ValidationFailed
		job.ValidationMessage = fmt.Sprintf("interrupted: vigil stopped during %s, so the copy was not proven restorable; the next test will tell", step)
		if job.StartedAt != nil {
			job.TotalSeconds = now().Sub(*job.StartedAt).Seconds()
		}
		e.jobLog(ctx, job.ID, "%s", job.ValidationMessage)
	} else if job.KeepUntil != nil && job.DeletionStatus == "" {
		e.jobLog(ctx, job.ID, "the kept copy's time is up (%s): deleting it", job.KeepUntil.Format(time.RFC3339))
	}
	job.DeletionStatus = vigil.DeletionDeleting
	if err := e.record(ctx, func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) }, events...); err != nil {
		return err
	}
	return e.deleteInstance(ctx, job, nil, e.testPlan(job.CreatedBy), announce)
}

// claimTests marks restore tests as run by this process, so that the
// sweep leaves them alone; it reports false when one already is.
func (e *Engine) claimTests(ids ...string) bool {
	e.testsMu.Lock()
	defer e.testsMu.Unlock()
	for _, id := range ids {
		if e.testsRunning[id] {
			return false
		}
	}
	for _, id := range ids {
		e.testsRunning[id] = true
	}
	return true
}

func (e *Engine) releaseTests(ids ...string) {
	e.testsMu.Lock()
	defer e.testsMu.Unlock()
	for _, id := range ids {
		delete(e.testsRunning, id)
	}
}

// cleanupLoop runs sweepRestoreTests every lifecycle.check_interval until
// ctx ends. It runs in every vigil process for its own node's tests, which
// is why it is not a River periodic job (those run on the leader only).
func (e *Engine) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(e.cfg.Lifecycle.CheckInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.sweepRestoreTests(ctx, false); err != nil && ctx.Err() == nil {
				e.logger.Error("clean up restore tests", "err", err)
			}
		}
	}
}

// testStatusEvent is the RESTORE_TEST_STATUS of a finished restore test:
// what was restored into what, the verdict and why, and the clean-up.
func (e *Engine) testStatusEvent(job *vigil.RestoreJob, plan config.RestoreTestPlan) event {
	var b strings.Builder
	fmt.Fprintf(&b, "Restore Test Status: %s\n\n", job.ValidationStatus)
	fmt.Fprintf(&b, "Restore testing plan: %s\n", plan.Name)
	fmt.Fprintf(&b, "Resource:             %s (%s)\n", job.Resource, job.ResourceType)
	fmt.Fprintf(&b, "Recovery point:       %s, %s old when tested\n", job.RecoveryPointID, seconds(job.RecoveryPointAgeSeconds))
	fmt.Fprintf(&b, "Restore job:          %s (%s)\n", job.ID, job.Status)
	fmt.Fprintf(&b, "New resource:         %s at %s\n", job.CreatedResourceID, job.CreatedResourceLocation)
	fmt.Fprintf(&b, "Validation:           %s: %s\n", job.ValidationStatus, job.ValidationMessage)
	switch job.DeletionStatus {
	case "":
		fmt.Fprintf(&b, "Clean-up:             %s\n", job.DeletionMessage)
	default:
		fmt.Fprintf(&b, "Clean-up:             %s: %s\n", job.DeletionStatus, job.DeletionMessage)
	}
	fmt.Fprintf(&b, "Timings:              restore %s, start %s, validation %s, clean-up %s; recovery time %s\n",
		seconds(job.RestoreSeconds), seconds(job.StartSeconds), seconds(job.ValidationSeconds), seconds(job.CleanupSeconds), seconds(job.TotalSeconds))
	if t := plan.Targets; t.RTO > 0 || t.RPO > 0 {
		var parts []string
		if t.RTO > 0 {
			if job.ValidationStatus == vigil.ValidationSuccessful {
				parts = append(parts, fmt.Sprintf("RTO %s %s (%s)", time.Duration(t.RTO), metOrMissed(job.TotalSeconds, t.RTO), seconds(job.TotalSeconds)))
			} else {
				// Nothing was recovered, so no recovery time was met.
				parts = append(parts, fmt.Sprintf("RTO %s MISSED (the copy did not pass validation)", time.Duration(t.RTO)))
			}
		}
		if t.RPO > 0 {
			parts = append(parts, fmt.Sprintf("RPO %s %s (%s)", time.Duration(t.RPO), metOrMissed(job.RecoveryPointAgeSeconds, t.RPO), seconds(job.RecoveryPointAgeSeconds)))
		}
		fmt.Fprintf(&b, "Targets:              %s\n", strings.Join(parts, "; "))
	}
	return event{vigil.Event{
		Type:            vigil.EventRestoreTestStatus,
		Resource:        job.Resource,
		JobID:           job.ID,
		RecoveryPointID: job.RecoveryPointID,
		Subject:         fmt.Sprintf("Restore test %s: %s (recovery point %s)", job.ValidationStatus, job.Resource, job.RecoveryPointID),
		Message:         b.String(),
	}, job}
}

func metOrMissed(secs float64, target config.Duration) string {
	if secs <= time.Duration(target).Seconds() {
		return "met"
	}
	return "MISSED"
}

// seconds formats a duration in seconds for people.
func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

// pickRecoveryPoint chooses what a scheduled restore test restores.
func pickRecoveryPoint(rps []vigil.RecoveryPoint, how string) vigil.RecoveryPoint {
	if how == config.RandomWithinWindow {
		return rps[rand.IntN(len(rps))]
	}
	return rps[0] // newest first
}

// ReportValidation takes a verdict from validation logic outside vigil
// (AWS's PutRestoreValidationResult) for a restore test that is validating
// and has an external validator.
func (e *Engine) ReportValidation(ctx context.Context, id string, status vigil.ValidationStatus, message string) (vigil.RestoreJob, error) {
	if status != vigil.ValidationSuccessful && status != vigil.ValidationFailed {
		return vigil.RestoreJob{}, vigil.Invalidf("status %q: report SUCCESSFUL or FAILED", status)
	}
	job, err := e.catalog.GetRestoreJob(ctx, id)
	if errors.Is(err, vigil.ErrNotFound) {
		return job, fmt.Errorf("%w: no restore job %s; list restore tests with 'vigil jobs list --type restore'", vigil.ErrNotFound, id)
	}
	if err != nil {
		return job, err
	}
	if !job.RestoreTest {
		return job, vigil.Invalidf("restore job %s is a plain restore, not a restore test: nothing validates it", id)
	}
	res, _ := e.cfg.Resource(job.Resource)
	if !slices.ContainsFunc(res.Validate, func(v config.Validator) bool { return v.External != nil }) {
		return job, vigil.Invalidf("resource %q has no external validator: add `- external: {}` to its validate list to report verdicts for it", job.Resource)
	}
	ok, err := e.catalog.SetExternalValidation(ctx, id, vigil.ExternalValidation{Status: status, Message: message, Time: now()})
	if err != nil {
		return job, err
	}
	if !ok {
		job, _ = e.catalog.GetRestoreJob(ctx, id)
		if job.ExternalValidation != nil {
			return job, &vigil.ConflictError{Msg: fmt.Sprintf("restore test %s already has a reported verdict (%s): a verdict is reported once", id, job.ExternalValidation.Status)}
		}
		return job, &vigil.ConflictError{Msg: fmt.Sprintf("restore test %s is not validating (restore %s, validation %q): report a verdict while its validation status is VALIDATING", id, job.Status, job.ValidationStatus)}
	}
	e.jobLog(ctx, id, "external validation reported %s: %s", status, message)
	return e.catalog.GetRestoreJob(ctx, id)
}
