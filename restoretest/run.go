package restoretest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/internal/disk"
	"github.com/vigil-backup/vigil/internal/units"
	"github.com/vigil-backup/vigil/mount"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/validate"
	"github.com/vigil-backup/vigil/vault"
)

// Run carries restore test job through restore, validation and clean-up.
// A test that is not PENDING was run already, or was interrupted and is
// Sweep's to finish. An error means the catalog could not be written:
// the caller runs the job again later.
func (t *Tester) Run(ctx context.Context, job *vigil.RestoreJob) error {
	if job.Status != vigil.RestorePending {
		return nil
	}
	if who, ok := vigil.CancelledBy(ctx); ok {
		// Cancelled as it was taken from the queue.
		return t.EndPending(context.WithoutCancel(ctx), job, vigil.CancelledMessage(who, "it had not started: nothing was restored"))
	}
	if ctx.Err() != nil {
		return ctx.Err() // vigil is stopping: the job runs again later
	}
	if !t.claim(job.ID) {
		return nil
	}
	defer t.release(job.ID)
	defer t.listings.Delete(job.ID) // a listing read for a check that did not run
	plan := t.plan(job)
	if _, ok := t.cfg.Current().Resource(job.Resource); !ok {
		return t.endEarly(ctx, job, vigil.RestoreFailed, fmt.Sprintf("resource %q is not in the config of node %s (%s): add it back to test it, or, if it was just added, reload this node's vigil (vigil reload, or SIGHUP to vigil worker)",
			job.Resource, t.cfg.Current().Node, t.cfg.Current().Path))
	}
	if plan.StartWindow > 0 && time.Since(job.CreatedAt) > time.Duration(plan.StartWindow) {
		return t.endEarly(ctx, job, vigil.RestoreAborted, fmt.Sprintf("not started within the plan's start window of %s (queued at %s): the next run of plan %s tests again",
			time.Duration(plan.StartWindow), job.CreatedAt.Format(time.RFC3339), plan.Name))
	}
	rp, err := t.catalog.GetRecoveryPoint(ctx, job.RecoveryPointID)
	switch {
	case errors.Is(err, vigil.ErrNotFound):
		return t.endEarly(ctx, job, vigil.RestoreFailed, fmt.Sprintf("recovery point %s is not in the catalog", job.RecoveryPointID))
	case err != nil:
		return err // the catalog is unreachable: the job runs again
	case rp.Status != vigil.RecoveryPointAvailable && rp.Status != vigil.RecoveryPointDamaged:
		// A DAMAGED point is still tested: the test shows what is left.
		return t.endEarly(ctx, job, vigil.RestoreFailed, fmt.Sprintf("recovery point %s is %s, not AVAILABLE: it expired before it could be tested; test a newer one", rp.ID, rp.Status))
	}

	// Step 1: record RUNNING, then create the marked instance folder.
	started(job, rp, t.cfg.Current().Node)
	// The test was queued by whichever node listed its recovery point,
	// with that node's folders in its record; its copy lives in the
	// instance folder of the node that runs it, so the record gets this
	// node's before anything is restored. Otherwise, on many workers, an
	// SQLite copy would be written into another worker's folder and be
	// left there when this node removes its own.
	if res, err := t.resources.Resource(rp.Resource, rp.ResourceType); err == nil {
		res.PrepareTest(job, rp, filepath.Join(t.Dir(), job.ID, instance.DataDir))
	}
	if err := t.journal.Record(ctx, updateJob(job), vigil.RestoreJobEvent(vigil.EventRestoreJobStarted, job)); err != nil {
		return err
	}
	t.jobLog(ctx, job.ID, "restore test (plan %s) of recovery point %s (%s %q, vault %q, %s old) started on node %s",
		plan.Name, rp.ID, rp.ResourceType, rp.Resource, rp.Vault, seconds(job.RecoveryPointAgeSeconds), t.cfg.Current().Node)

	inst, err := instance.Create(t.Dir(), job.ID)
	if err != nil {
		return t.failRestore(ctx, job, nil, nil, fmt.Sprintf("create the new resource's folder: %v", err))
	}
	job.CreatedResourceLocation = inst.Dir

	// Step 2: restore the data into the copy.
	t.pause(ctx, job.ID, "restore")
	begin := time.Now()
	res, err := t.resources.Resource(rp.Resource, rp.ResourceType)
	var cp resource.Copy
	if err == nil {
		cp, err = res.Copy(job, inst)
	}
	if err != nil {
		return t.failRestore(ctx, job, inst, nil, err.Error())
	}
	defer cp.Close()
	storageCtx := vault.WithStorageLog(ctx, func(line string) { t.jobLog(ctx, job.ID, "%s", line) })
	var (
		v       *vault.Vault
		summary string
		full    bool
	)
	if t.resticVault(rp.Vault) {
		summary, err = t.restoreFromRestic(storageCtx, job, cp, rp, res.Config(), config.RestoreMode(plan, res.Config()))
	} else {
		if v, err = t.vaults.Vault(storageCtx, rp.Vault); err != nil {
			return t.failRestore(ctx, job, inst, cp, err.Error())
		}
		summary, full, err = t.makeCopy(storageCtx, job, cp, v, rp, config.RestoreMode(plan, res.Config()))
	}
	if loc := cp.Location(); loc != "" {
		job.CreatedResourceLocation = loc
	}
	if err != nil {
		if who, ok := vigil.CancelledBy(ctx); ok {
			return t.failRestore(ctx, job, inst, cp, vigil.CancelledMessage(who, "the copy was not proven restorable, and what was restored is deleted"))
		}
		if ctx.Err() != nil {
			return t.failRestore(ctx, job, inst, cp, "interrupted: vigil was stopped during the restore")
		}
		if disk.Full(err) {
			t.free(ctx, job, inst, cp)
		}
		return t.failRestore(ctx, job, inst, cp, err.Error())
	}
	from := catalog.StepOf(job)
	restored(job, time.Since(begin))
	if full && v != nil {
		// once the test has ended, outside its times
		defer t.countReads(ctx, job, v, rp, *job.CompletedAt)
	}
	var result vault.RestoreResult
	if r, ok := cp.(resource.Restored); ok {
		result = r.Restored()
		// What is restored is read from the vault once and written once.
		job.VaultReadBytes, job.WrittenBytes = result.Bytes, result.Bytes
	}
	err = t.journal.Record(ctx, updateFrom(job, from), vigil.RestoreJobEvent(vigil.EventRestoreJobCompleted, job))
	if errors.Is(err, errEndedElsewhere) {
		return t.endedElsewhere(ctx, job, inst, cp, "restore")
	}
	if err != nil {
		return err
	}
	t.jobLog(ctx, job.ID, "%s in %s", summary, seconds(job.RestoreSeconds))

	// Step 3: check, start and validate the copy.
	t.pause(ctx, job.ID, "start")
	verdict := t.validate(ctx, job, inst, res.Config(), cp, rp, plan, result.Digests)
	from = catalog.StepOf(job)
	judged(job, verdict.Status, verdict.Message)
	t.jobLog(ctx, job.ID, "validation %s in %s: %s", verdict.Status, seconds(job.ValidationSeconds), verdict.Message)
	if job.VaultReadBytes > 0 || job.WrittenBytes > 0 {
		t.jobLog(ctx, job.ID, "read %d bytes of file content from vault %q, wrote %d bytes into the copy", job.VaultReadBytes, rp.Vault, job.WrittenBytes)
	}
	cp.Close() // before the copy is deleted: a database is dropped with no connection left

	// Step 4: delete the copy, unless a failed one is kept to look at (a
	// test that vigil's stop cut short proves nothing worth keeping).
	if plan.KeepOnFailure && verdict.Status != vigil.ValidationSuccessful && ctx.Err() == nil {
		kept(job, time.Duration(plan.KeepFor))
		err := t.journal.Record(ctx, updateFrom(job, from), t.statusEvent(job, plan))
		if errors.Is(err, errEndedElsewhere) {
			return t.endedElsewhere(ctx, job, inst, cp, "verdict")
		}
		return err
	}
	deleting(job)
	// Through the journal, which in a job waits out a catalog that is
	// restarting: a verdict lost there would leave the test to the sweep,
	// which could only call it interrupted.
	if err := t.journal.Record(ctx, updateFrom(job, from)); err != nil {
		if errors.Is(err, errEndedElsewhere) {
			return t.endedElsewhere(ctx, job, inst, cp, "verdict")
		}
		return fmt.Errorf("record verdict of restore test %s: %w", job.ID, err)
	}
	t.pause(ctx, job.ID, "cleanup")
	return t.delete(ctx, job, inst, cp, plan, true)
}

// makeCopy restores rp into the copy or, with restore: instant, mounts
// it; where this machine cannot mount, it restores in full and the job's
// log says why. full says that the whole recovery point was read.
func (t *Tester) makeCopy(ctx context.Context, job *vigil.RestoreJob, cp resource.Copy, v *vault.Vault, rp vigil.RecoveryPoint, mode string) (summary string, full bool, err error) {
	m, ok := cp.(resource.Mounter)
	if mode != config.RestoreInstant || !ok {
		summary, err = cp.Restore(ctx, v, rp)
		return summary, true, err
	}
	summary, err = m.Mount(ctx, v, rp)
	if errors.Is(err, mount.ErrUnavailable) {
		t.jobLog(ctx, job.ID, "restore: instant is not possible on node %s (%v): the copy is restored in full instead", t.cfg.Current().Node, err)
		summary, err = cp.Restore(ctx, v, rp)
		return summary, true, err
	}
	return summary, false, err
}

// countReads records, for the vault's coverage, the packs a restore of the
// whole recovery point (completed at at) read every content of: kopia authenticated each
// as it read it, so the rolling verification need not read them again
// soon. A failure here is logged; it changes nothing of the test.
func (t *Tester) countReads(ctx context.Context, job *vigil.RestoreJob, v *vault.Vault, rp vigil.RecoveryPoint, at time.Time) {
	if ctx.Err() != nil {
		return
	}
	packs, err := v.PacksReadBy(ctx, rp.SnapshotID)
	if err == nil {
		reads := make([]catalog.PackRead, len(packs))
		for i, p := range packs {
			reads[i] = catalog.PackRead{Pack: p.ID, Length: p.Length, ReadAt: at, ReadBy: "restore test " + job.ID}
		}
		err = t.catalog.RecordPackReads(ctx, rp.Vault, reads)
	}
	if err != nil {
		t.logger.Warn("count a restore test's reads toward the vault's coverage", "job", job.ID, "vault", rp.Vault, "err", err)
	}
}

// updateJob is the catalog write of a test's new state.
func updateJob(job *vigil.RestoreJob) func(ctx context.Context, tx *catalog.Tx) error {
	return func(ctx context.Context, tx *catalog.Tx) error { return tx.UpdateRestoreJob(ctx, job) }
}

// errEndedElsewhere is what updateFrom returns for a test that is no
// longer at the step this process last left it at.
var errEndedElsewhere = errors.New("the restore test was ended by another worker")

// updateFrom is the catalog write of a test's new state, which this
// process moves on from step from: it fails with errEndedElsewhere when
// another moved the test on meanwhile (a worker that counted this one
// dead ended it), and then writes nothing.
func updateFrom(job *vigil.RestoreJob, from catalog.RestoreStep) func(ctx context.Context, tx *catalog.Tx) error {
	return func(ctx context.Context, tx *catalog.Tx) error { return writeFrom(ctx, tx, job, from) }
}

// writeFrom is updateFrom outside a transaction of the caller's.
func writeFrom(ctx context.Context, w interface {
	UpdateRestoreJobAt(context.Context, *vigil.RestoreJob, catalog.RestoreStep) (bool, error)
}, job *vigil.RestoreJob, from catalog.RestoreStep) error {
	ok, err := w.UpdateRestoreJobAt(ctx, job, from)
	if err == nil && !ok {
		err = errEndedElsewhere
	}
	return err
}

// endedElsewhere is the end of an attempt whose test another worker
// ended while it ran: this worker was cut off long enough to be counted
// dead, and carried on. That worker's verdict and event stand, and what
// this attempt found (what, for the log) is not recorded over them; but
// the copy is on this machine, where that worker could not delete it, so
// this attempt deletes it and records that.
func (t *Tester) endedElsewhere(ctx context.Context, job *vigil.RestoreJob, inst *instance.Instance, cp resource.Copy, what string) error {
	ctx = context.WithoutCancel(ctx)
	t.jobLog(ctx, job.ID, "this attempt's %s on node %s is not recorded: the test was ended by another worker while it ran (this worker was counted dead); its copy is deleted here", what, t.cfg.Current().Node)
	if cp != nil {
		cp.Close()
	}
	ended, err := t.catalog.GetRestoreJob(ctx, job.ID)
	if err != nil {
		return fmt.Errorf("read restore test %s, ended by another worker: %w", job.ID, err)
	}
	if ended.DeletionStatus != vigil.DeletionDeleting || ended.Node != t.cfg.Current().Node {
		return nil // not this node's copy to delete, or deleted already
	}
	return t.delete(ctx, &ended, inst, cp, t.plan(&ended), false)
}

// validate runs the copy's own check, starts it when it runs something,
// and runs the resource's validators, all within the plan's window.
//
// digests are the restored files' digests, taken as the restore wrote
// them; nil when it took none, and then checksum validators read the
// recovery point's contents from the vault.
func (t *Tester) validate(ctx context.Context, job *vigil.RestoreJob, inst *instance.Instance, res config.Resource, cp resource.Copy, rp vigil.RecoveryPoint, plan config.RestoreTestPlan, digests *vault.Digests) validate.Result {
	var vaultRead atomic.Int64 // by checksum validators, which may run on another goroutine
	defer func() { job.VaultReadBytes += vaultRead.Load() }()
	target := validate.Target{
		JobID:           job.ID,
		RecoveryPointID: rp.ID,
		Resource:        res.Name,
		Dir:             inst.Dir,
		Log:             func(format string, args ...any) { t.jobLog(ctx, job.ID, format, args...) },
		Checksum: func(ctx context.Context, pct float64) error {
			n, err := t.compareWithRecoveryPoint(ctx, job.ID, rp, inst.Dir, pct, digests)
			vaultRead.Add(n)
			return err
		},
		External: func(ctx context.Context) (vigil.ValidationStatus, string, bool, error) {
			j, err := t.catalog.GetRestoreJob(ctx, job.ID)
			if err != nil || j.ExternalValidation == nil {
				return "", "", false, err
			}
			return j.ExternalValidation.Status, j.ExternalValidation.Message, true, nil
		},
	}
	window := time.Duration(plan.ValidationWindow)
	begin := time.Now()
	var paused time.Duration // a test's pause (EnvPause) is no time of the copy's
	defer func() { job.ValidationSeconds = (time.Since(begin) - paused).Seconds() - job.StartSeconds }()
	remaining := func() time.Duration { return max(window-time.Since(begin)+paused, time.Millisecond) }
	pause := func(step string) { paused += t.pause(ctx, job.ID, step) }

	checked, err := cp.Check(ctx, rp, &target)
	if err != nil {
		return stopped(ctx, validate.Result{Status: vigil.ValidationFailed, Message: err.Error()})
	}
	verdict := t.runValidators(ctx, job, inst, res, cp, target, begin, remaining, pause)
	if checked != "" && verdict.Status == vigil.ValidationSuccessful {
		verdict.Message = strings.TrimSuffix(checked+"; "+verdict.Message, "; ")
	}
	return stopped(ctx, verdict)
}

// runValidators runs the resource's validators against the copy, after
// starting it if it runs something.
func (t *Tester) runValidators(ctx context.Context, job *vigil.RestoreJob, inst *instance.Instance, res config.Resource, cp resource.Copy, target validate.Target, begin time.Time, remaining func() time.Duration, pause func(step string)) validate.Result {
	starter, starts := cp.(resource.Starter)
	if !starts {
		if len(res.Validate) == 0 {
			return validate.Result{Status: vigil.ValidationSuccessful}
		}
		return validate.Run(ctx, res.Validate, target, remaining())
	}

	// A started copy's checksum checks run first, on the files as
	// restored: what it writes into its folder once it runs is not a
	// difference.
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
		r := validate.Run(ctx, files, target, remaining())
		if r.Status != vigil.ValidationSuccessful {
			return r
		}
		filesPassed = r.Message
	}

	startAt := time.Now()
	opts := resource.StartOptions{Isolation: res.Isolation, Limits: res.Limits}
	if p, ok := t.cfg.Current().RestoreTestPlan(job.Plan); ok {
		if p.Isolation != nil {
			opts.Isolation = *p.Isolation
		}
		opts.Limits = res.Limits.Over(p.Limits)
	}
	proc, err := starter.Start(t.appLog(ctx, job.ID), opts)
	job.StartSeconds = time.Since(startAt).Seconds()
	if err != nil {
		return validate.Result{Status: vigil.ValidationFailed, Message: fmt.Sprintf("the app could not be started: %v", err)}
	}
	target.Host, target.Port, target.URL, target.Reach = proc.Host(), proc.Port(), proc.URL(), proc.Reach()
	job.CreatedResourceLocation = proc.URL()
	// The copy's location is recorded at once, so a person looking at a
	// running test can open it.
	if err := writeFrom(ctx, t.catalog, job, catalog.StepOf(job)); err != nil {
		t.logger.Warn("record app location", "job", job.ID, "err", err)
	}
	t.jobLog(ctx, job.ID, "app started in %s at %s (%s), %s", seconds(job.StartSeconds), proc.URL(), inst.Dir, proc.Confinement())
	pause("validate")
	if len(others) == 0 {
		return validate.Result{Status: vigil.ValidationSuccessful, Message: filesPassed}
	}
	vctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-proc.Exited():
			cancel(exitedEarly(proc))
		case <-vctx.Done():
		}
	}()
	target.Positions = othersAt
	verdict := validate.Run(vctx, others, target, remaining())
	if hit := proc.LimitsHit(); hit != "" && verdict.Status != vigil.ValidationSuccessful && !strings.Contains(verdict.Message, hit) {
		// A copy held at its limits fails in its own words (a 500, a
		// refused connection): the cause is the limit.
		verdict.Message += " (" + hit + ")"
	}
	if _, exited := proc.MainExited(); exited && verdict.Status == vigil.ValidationSuccessful {
		if err := exitedEarly(proc); errors.Is(err, errDaemonized) {
			// What answered was a daemon the app left behind, which
			// vigil does not supervise: the copy did not run as
			// configured.
			return validate.Result{Status: vigil.ValidationFailed, Message: err.Error()}
		}
	}
	if verdict.Status == vigil.ValidationSuccessful && filesPassed != "" {
		// One summary, as if the checks had run in one go.
		verdict.Message = fmt.Sprintf("all %d checks passed in %s: %s; %s", len(res.Validate),
			time.Since(begin).Round(time.Millisecond), passedDetail(filesPassed), passedDetail(verdict.Message))
	}
	return verdict
}

// errDaemonized marks an app whose main process exited with status 0 and
// left processes running: a daemon.
var errDaemonized = errors.New("run it in the foreground (for Redis: --daemonize no; nginx: daemon off;)")

// exitedEarly says why a started copy ended before validation passed.
func exitedEarly(proc resource.Running) error {
	reason, _ := proc.MainExited()
	if n := proc.Left(); reason == "exited with status 0" && n > 0 {
		what := "1 process"
		if n > 1 {
			what = fmt.Sprintf("%d processes", n)
		}
		return fmt.Errorf("the app's main process exited with status 0 and left %s running (%s): %w", what, proc.Confinement(), errDaemonized)
	}
	if hit := proc.LimitsHit(); hit != "" {
		reason += " (" + hit + ")"
	}
	last := proc.LastLines()
	if len(last) == 0 {
		return fmt.Errorf("the app %s before validation passed, and wrote nothing", reason)
	}
	return fmt.Errorf("the app %s before validation passed; its last output:\n%s", reason, strings.Join(last, "\n"))
}

// passedDetail is the list of what passed in a successful verdict's message
// ("1 check passed in 3ms: http GET / (status 200)").
func passedDetail(msg string) string {
	if _, detail, ok := strings.Cut(msg, ": "); ok {
		return detail
	}
	return msg
}

// stopped rewords a verdict that vigil's own stop cut short: the test is
// ABORTED, not failed, and the message says it was interrupted.
func stopped(ctx context.Context, verdict validate.Result) validate.Result {
	if who, ok := vigil.CancelledBy(ctx); ok && verdict.Status != vigil.ValidationSuccessful {
		return validate.Result{Status: vigil.ValidationAborted, Message: vigil.CancelledMessage(who, "validation was cut short, so the copy was not proven restorable; it is deleted, and no new test is queued")}
	}
	if ctx.Err() != nil && verdict.Status != vigil.ValidationSuccessful {
		return validate.Result{Status: vigil.ValidationAborted, Message: "interrupted: vigil was stopped during validation (" + verdict.Message + "): the next test will tell"}
	}
	return verdict
}

// maxAppLogLines caps how much of an app's output goes into the job log: a
// chatty app (one line per request) must not fill the catalog. The last
// lines are kept apart for the verdict when the app dies.
const maxAppLogLines = 500

// appLog returns the sink of a restored app's output lines.
func (t *Tester) appLog(ctx context.Context, jobID string) func(string) {
	n := 0
	return func(line string) {
		n++
		switch {
		case n <= maxAppLogLines:
			t.jobLog(ctx, jobID, "%s", line)
		case n == maxAppLogLines+1:
			t.jobLog(ctx, jobID, "(the app's further output is not logged: %d lines is the limit)", maxAppLogLines)
		}
	}
}

// compareWithRecoveryPoint is the checksum validator: the restored files
// against the vault's own record of them. Their contents are checked
// against digests, the ones the restore took as it wrote them, read back
// from the folder; without digests, against the vault's contents. It
// returns the bytes of content it read from the vault.
func (t *Tester) compareWithRecoveryPoint(ctx context.Context, jobID string, rp vigil.RecoveryPoint, dir string, pct float64, digests *vault.Digests) (int64, error) {
	if t.resticVault(rp.Vault) {
		return 0, t.compareWithRestic(ctx, jobID, rp, dir)
	}
	v, err := t.vaults.Vault(ctx, rp.Vault)
	if err != nil {
		return 0, err
	}
	cmp, err := v.CompareDigests(ctx, rp.SnapshotID, dir, pct, digests)
	if err != nil {
		return 0, fmt.Errorf("compare with recovery point %s: %w", rp.ID, err)
	}
	if len(cmp.Mismatches) > 0 {
		return cmp.VaultBytes, fmt.Errorf("the restored files differ from recovery point %s: %s", rp.ID, strings.Join(cmp.Mismatches, "; "))
	}
	how := fmt.Sprintf("read from vault %q and compared byte by byte", rp.Vault)
	switch {
	case cmp.Compared == 0:
		how = "there is no file to read"
	case cmp.Digested == cmp.Compared:
		how = "read back from the copy and checked against the digests taken as the restore wrote them, with nothing read from the vault again"
	case cmp.Digested > 0:
		how = fmt.Sprintf("%d checked against the digests taken as the restore wrote them, %d (%d bytes) read from vault %q and compared byte by byte",
			cmp.Digested, cmp.Compared-cmp.Digested, cmp.VaultBytes, rp.Vault)
	}
	t.jobLog(ctx, jobID, "checksum: %d files, %d folders, %d symlinks match recovery point %s; content of %d files (%d bytes) compared: %s",
		cmp.Files, cmp.Dirs, cmp.Symlinks, rp.ID, cmp.Compared, cmp.Bytes, how)
	return cmp.VaultBytes, nil
}

// delete deletes a restore test's copy and its instance and records the
// outcome. inst and cp are nil when the test is finished by another run
// than the one that restored it: they are rebuilt from the record.
// announce emits the test's RESTORE_TEST_STATUS with it: once per test,
// when its verdict is new (not when a kept copy's time is up or a failed
// deletion is retried: those only go to the job's log).
func (t *Tester) delete(ctx context.Context, job *vigil.RestoreJob, inst *instance.Instance, cp resource.Copy, plan config.RestoreTestPlan, announce bool) error {
	ctx = context.WithoutCancel(ctx)
	begin := time.Now()
	var err error
	if inst == nil {
		inst, err = instance.Open(t.Dir(), job.ID)
		if errors.Is(err, os.ErrNotExist) {
			inst, err = nil, nil // nothing was created, or it is already gone
		}
	}
	if err == nil && cp == nil {
		cp, err = t.reopen(job, inst)
	}
	var detail string
	if err == nil && cp != nil {
		detail, err = cp.Delete(ctx)
	}
	if err == nil && inst != nil {
		err = inst.Remove(stopGrace)
	}
	from := catalog.StepOf(job)
	gaveUp := deleted(job, time.Since(begin), detail, err, time.Duration(t.cfg.Current().Lifecycle.CheckInterval))
	t.jobLog(ctx, job.ID, "clean-up %s in %s: %s", job.DeletionStatus, seconds(job.CleanupSeconds), job.DeletionMessage)
	var events []vigil.Event
	if announce {
		events = append(events, t.statusEvent(job, plan))
	}
	if gaveUp {
		events = append(events, vigil.Event{
			Type: vigil.EventRestoreTestCleanupFailed, Resource: job.Resource, JobID: job.ID, RecoveryPointID: job.RecoveryPointID,
			Subject: fmt.Sprintf("Restore test %s: its copy of %s could not be deleted", job.ID, job.Resource),
			Message: fmt.Sprintf("vigil gave up deleting the copy that restore test %s made of %s %q (recovery point %s) after %d attempts.\n\n%s\n\nLook at 'vigil logs %s' and delete what is left by hand.",
				job.ID, job.ResourceType, job.Resource, job.RecoveryPointID, job.DeletionAttempts, job.DeletionMessage, job.ID),
		}.WithData(job))
	}
	err = t.journal.Record(ctx, func(ctx context.Context, tx *catalog.Tx) error {
		if err := updateFrom(job, from)(ctx, tx); err != nil {
			return err
		}
		// A test a person cancelled is not retried: they stopped it.
		if _, cancelled := vigil.CancelledBy(ctx); announce && job.ValidationStatus == vigil.ValidationAborted && !cancelled {
			return t.retry(ctx, tx, job, plan)
		}
		return nil
	}, events...)
	if errors.Is(err, errEndedElsewhere) {
		// Another worker ended the test meanwhile; the deletion is done,
		// and whoever finds the record says so.
		t.jobLog(ctx, job.ID, "this clean-up's outcome is not recorded: the test was ended by another worker meanwhile")
		return nil
	}
	return err
}

// retry queues a new test of an interrupted test's recovery point, in the
// transaction that records the interruption, unless the plan's
// retry_interrupted is used up or the recovery point is gone: every
// recovery point a plan selected gets a verdict, and a test that keeps
// being interrupted does not loop.
func (t *Tester) retry(ctx context.Context, tx *catalog.Tx, job *vigil.RestoreJob, plan config.RestoreTestPlan) error {
	tests, err := tx.ListRestoreJobs(ctx, catalog.RestoreJobFilter{RecoveryPointID: job.RecoveryPointID, RestoreTest: true})
	if err != nil {
		return fmt.Errorf("count the interrupted tests of recovery point %s: %w", job.RecoveryPointID, err)
	}
	aborted := 0
	for _, j := range tests {
		if j.Plan == job.Plan && (j.ValidationStatus == vigil.ValidationAborted || j.ID == job.ID) {
			aborted++
		}
	}
	limit := config.DefaultRetryInterrupted
	if plan.RetryInterrupted != nil {
		limit = *plan.RetryInterrupted
	}
	if aborted > limit {
		return tx.AppendLog(ctx, job.ID, fmt.Sprintf("not tested again: %d tests of recovery point %s were interrupted, and plan %s retries %d times (retry_interrupted)",
			aborted, job.RecoveryPointID, plan.Name, limit))
	}
	rp, err := tx.GetRecoveryPoint(ctx, job.RecoveryPointID)
	if err != nil || rp.Status != vigil.RecoveryPointAvailable {
		return tx.AppendLog(ctx, job.ID, fmt.Sprintf("not tested again: recovery point %s is no longer available", job.RecoveryPointID))
	}
	again, err := t.Queue(ctx, tx, rp, job.Plan)
	if err != nil {
		return fmt.Errorf("queue a new test of interrupted restore test %s: %w", job.ID, err)
	}
	if err := tx.AppendLog(ctx, again.ID, fmt.Sprintf("queued again after restore test %s was interrupted (retry %d of %d)", job.ID, aborted, limit)); err != nil {
		return err
	}
	return tx.AppendLog(ctx, job.ID, fmt.Sprintf("restore test %s of the same recovery point was queued (retry %d of %d)", again.ID, aborted, limit))
}

// reopen rebuilds the copy of a test from its record, to delete it. A
// test whose restore never started made no copy outside its folder.
func (t *Tester) reopen(job *vigil.RestoreJob, inst *instance.Instance) (resource.Copy, error) {
	if job.StartedAt == nil {
		return nil, nil
	}
	res, err := t.resources.Resource(job.Resource, job.ResourceType)
	if err != nil {
		return nil, err
	}
	return res.Copy(job, inst)
}

// free deletes the copy of a test whose restore filled its disk before
// anything is recorded: on the data dir's disk, the catalog cannot record
// the failure until the partial copy is gone. The deletion that follows
// finds it deleted, and records it; should vigil die in between, the
// sweep does.
func (t *Tester) free(ctx context.Context, job *vigil.RestoreJob, inst *instance.Instance, cp resource.Copy) {
	ctx = context.WithoutCancel(ctx)
	cp.Close()
	if _, err := cp.Delete(ctx); err != nil {
		t.logger.Warn("delete the copy of a restore test that filled its disk", "job", job.ID, "err", err)
	}
	if err := inst.Remove(stopGrace); err != nil {
		t.logger.Warn("remove the instance of a restore test that filled its disk", "job", job.ID, "err", err)
	}
}

// failRestore ends a restore test whose restore failed: the verdict is
// FAILED, and whatever was created is deleted (cp is nil when the copy
// was not made yet).
func (t *Tester) failRestore(ctx context.Context, job *vigil.RestoreJob, inst *instance.Instance, cp resource.Copy, msg string) error {
	status := vigil.RestoreFailed
	if ctx.Err() != nil {
		status = vigil.RestoreAborted
	}
	from := catalog.StepOf(job)
	restoreFailed(job, status, msg)
	err := t.journal.Record(ctx, updateFrom(job, from), vigil.RestoreJobEvent(vigil.EventRestoreJobFailed, job))
	if errors.Is(err, errEndedElsewhere) {
		return t.endedElsewhere(ctx, job, inst, cp, "failed restore ("+msg+")")
	}
	if err != nil {
		return err
	}
	t.jobLog(ctx, job.ID, "%s: %s", status, msg)
	return t.delete(ctx, job, inst, cp, t.plan(job), true)
}

// endEarly ends a restore test that never created anything.
func (t *Tester) endEarly(ctx context.Context, job *vigil.RestoreJob, status vigil.RestoreJobStatus, msg string) error {
	endedEarly(job, status, msg)
	return t.recordEarly(ctx, job, status, msg)
}

// recordEarly records the end of a test that never created anything.
func (t *Tester) recordEarly(ctx context.Context, job *vigil.RestoreJob, status vigil.RestoreJobStatus, msg string) error {
	t.jobLog(ctx, job.ID, "%s: %s", status, msg)
	return t.journal.Record(ctx, updateJob(job),
		vigil.RestoreJobEvent(vigil.EventRestoreJobFailed, job), t.statusEvent(job, t.plan(job)))
}

// statusEvent is the RESTORE_TEST_STATUS of a finished restore test:
// what was restored into what, the verdict and why, and the clean-up.
func (t *Tester) statusEvent(job *vigil.RestoreJob, plan config.RestoreTestPlan) vigil.Event {
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
	if tg := plan.Targets; tg.RTO > 0 || tg.RPO > 0 {
		var parts []string
		if tg.RTO > 0 {
			if job.ValidationStatus == vigil.ValidationSuccessful {
				parts = append(parts, fmt.Sprintf("RTO %s %s (%s)", time.Duration(tg.RTO), metOrMissed(job.TotalSeconds, tg.RTO), seconds(job.TotalSeconds)))
			} else {
				// Nothing was recovered, so no recovery time was met.
				parts = append(parts, fmt.Sprintf("RTO %s MISSED (the copy did not pass validation)", time.Duration(tg.RTO)))
			}
		}
		if tg.RPO > 0 {
			parts = append(parts, fmt.Sprintf("RPO %s %s (%s)", time.Duration(tg.RPO), metOrMissed(job.RecoveryPointAgeSeconds, tg.RPO), seconds(job.RecoveryPointAgeSeconds)))
		}
		fmt.Fprintf(&b, "Targets:              %s\n", strings.Join(parts, "; "))
	}
	return vigil.Event{
		Type:            vigil.EventRestoreTestStatus,
		Resource:        job.Resource,
		JobID:           job.ID,
		RecoveryPointID: job.RecoveryPointID,
		Subject:         fmt.Sprintf("Restore test %s: %s (recovery point %s)", job.ValidationStatus, job.Resource, job.RecoveryPointID),
		Message:         b.String(),
	}.WithData(job)
}

func metOrMissed(secs float64, target config.Duration) string {
	if secs <= time.Duration(target).Seconds() {
		return "met"
	}
	return "MISSED"
}

// seconds formats a duration in seconds for people.
func seconds(s float64) string {
	return units.Duration(time.Duration(s * float64(time.Second)))
}

// EndPending ends ABORTED with msg a restore test that never ran, whose
// job was cancelled in the queue.
// Its verdict is ABORTED: nothing was learned about the backup.
func (t *Tester) EndPending(ctx context.Context, job *vigil.RestoreJob, msg string) error {
	endedEarly(job, vigil.RestoreAborted, msg)
	job.ValidationStatus, job.ValidationMessage = vigil.ValidationAborted, msg
	return t.recordEarly(ctx, job, vigil.RestoreAborted, msg)
}
