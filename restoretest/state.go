package restoretest

import (
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
)

// The transitions of a restore test's record, in the order of its life.
// Each is the one place that sets the fields of its step, so that every
// path through the loop (a verdict, an early end, a failed restore, a
// crash) leaves a record of the same shape:
//
//	PENDING ─started─▶ RUNNING ─restored─▶ COMPLETED/VALIDATING ─judged─▶ verdict
//	   │                  │                                             │
//	   └─endedEarly       └─restoreFailed (verdict FAILED, DELETING)    ├─kept (keep_on_failure)
//	     (verdict FAILED,                                               └─deleting ─deleted─▶ SUCCESSFUL/FAILED
//	      nothing created)
//
// interrupted ends a test a crash cut short, from whatever step it was in.

// started records that the test runs on node, restoring rp.
func started(job *vigil.RestoreJob, rp vigil.RecoveryPoint, node string) {
	job.Status = vigil.RestoreRunning
	job.StartedAt = ptr(now())
	job.Node = node
	job.RecoveryPointAgeSeconds = job.StartedAt.Sub(rp.CreatedAt).Seconds()
}

// endedEarly ends a test that never created anything.
func endedEarly(job *vigil.RestoreJob, status vigil.RestoreJobStatus, msg string) {
	restoreEnded(job, status, msg, "the restore did not run: ")
	job.DeletionStatus = vigil.DeletionSuccessful
	job.DeletionMessage = "nothing was created"
}

// restoreFailed ends a test whose restore failed: the verdict is FAILED
// (ABORTED when vigil's stop cut it short), and whatever was created is to
// be deleted.
func restoreFailed(job *vigil.RestoreJob, status vigil.RestoreJobStatus, msg string) {
	restoreEnded(job, status, msg, "the restore did not complete: ")
	if status == vigil.RestoreAborted {
		job.ValidationStatus = vigil.ValidationAborted
	}
	job.TotalSeconds = time.Since(*job.StartedAt).Seconds()
	job.DeletionStatus = vigil.DeletionDeleting
}

// restoreEnded ends the restore of a test that did not get to validation.
func restoreEnded(job *vigil.RestoreJob, status vigil.RestoreJobStatus, msg, why string) {
	job.Status = status
	job.StatusMessage = msg
	job.CompletedAt = ptr(now())
	job.ValidationStatus = vigil.ValidationFailed
	job.ValidationMessage = why + msg
}

// restored records that the data is in the copy, and validation starts.
func restored(job *vigil.RestoreJob, took time.Duration) {
	job.RestoreSeconds = took.Seconds()
	job.Status = vigil.RestoreCompleted
	job.CompletedAt = ptr(now())
	job.ValidationStatus = vigil.ValidationValidating
}

// judged records the verdict. The recovery time observed runs from the
// start of the restore to the verdict.
func judged(job *vigil.RestoreJob, status vigil.ValidationStatus, msg string) {
	job.ValidationStatus = status
	job.ValidationMessage = msg
	job.TotalSeconds = time.Since(*job.StartedAt).Seconds()
}

// kept records that a failed copy stays for inspection until keepFor is
// up, when the sweep deletes it.
func kept(job *vigil.RestoreJob, keepFor time.Duration) {
	job.KeepUntil = ptr(now().Add(keepFor))
	job.DeletionMessage = fmt.Sprintf("kept for inspection at %s until %s (keep_on_failure), then deleted",
		job.CreatedResourceLocation, job.KeepUntil.Format(time.RFC3339))
}

// deleting records that the copy's deletion starts.
func deleting(job *vigil.RestoreJob) { job.DeletionStatus = vigil.DeletionDeleting }

// MaxDeletionAttempts is how many times vigil tries to delete a copy
// before it gives up and says so (RESTORE_TEST_CLEANUP_FAILED).
const MaxDeletionAttempts = 10

// deleted records the outcome of a deletion: detail is what the copy's
// type said it deleted; a failure is retried every retry, until
// MaxDeletionAttempts have failed. It reports whether vigil gives up.
func deleted(job *vigil.RestoreJob, took time.Duration, detail string, err error, retry time.Duration) (gaveUp bool) {
	job.CleanupSeconds = took.Seconds()
	job.KeepUntil = nil
	job.DeletionAttempts++
	if err != nil {
		job.DeletionStatus = vigil.DeletionFailed
		if job.DeletionAttempts >= MaxDeletionAttempts {
			job.DeletionMessage = fmt.Sprintf("deleting the new resource failed %d times, the last with: %v; vigil has given up: delete it by hand (its folder %s and what its log names)",
				job.DeletionAttempts, err, job.CreatedResourceLocation)
			return true
		}
		job.DeletionMessage = fmt.Sprintf("deleting the new resource failed: %v; vigil tries again every %s (attempt %d of %d)", err, retry, job.DeletionAttempts, MaxDeletionAttempts)
		return false
	}
	job.DeletionStatus = vigil.DeletionSuccessful
	job.DeletionMessage = "the new resource was deleted" + detail
	return false
}

// givenUp reports whether vigil no longer tries to delete job's copy.
func givenUp(job vigil.RestoreJob) bool {
	return job.DeletionStatus == vigil.DeletionFailed && job.DeletionAttempts >= MaxDeletionAttempts
}

// interrupted ends a test that vigil's death (or a failed catalog write)
// cut short, ABORTED: nothing was learned about the backup. It reports
// whether the RESTORE_JOB_FAILED of its restore is due too.
func interrupted(job *vigil.RestoreJob) (restoreEnded bool) {
	step := "validation"
	if job.Status == vigil.RestoreRunning {
		step = "the restore"
		job.Status = vigil.RestoreAborted
		job.StatusMessage = "interrupted: vigil stopped during the restore"
		job.CompletedAt = ptr(now())
		restoreEnded = true
	}
	job.ValidationStatus = vigil.ValidationAborted
	job.ValidationMessage = fmt.Sprintf("interrupted: vigil stopped during %s, so the copy was not proven restorable; the next test will tell", step)
	if job.StartedAt != nil {
		job.TotalSeconds = now().Sub(*job.StartedAt).Seconds()
	}
	return restoreEnded
}

// workerDied ends a test whose worker was counted dead, ABORTED: why names
// the worker. Its copy is on that worker's machine, so its deletion is
// pending there until a process of that node starts again and sweeps it.
// It reports whether the RESTORE_JOB_FAILED of its restore is due too.
func workerDied(job *vigil.RestoreJob, why string) (restoreEnded bool) {
	step := "validation"
	if job.Status == vigil.RestoreRunning {
		step = "the restore"
		job.Status = vigil.RestoreAborted
		job.StatusMessage = "interrupted: " + why
		job.CompletedAt = ptr(now())
		restoreEnded = true
	}
	job.ValidationStatus = vigil.ValidationAborted
	job.ValidationMessage = fmt.Sprintf("interrupted during %s: %s; the copy was not proven restorable, and the recovery point is tested again (retry_interrupted)", step, why)
	if job.StartedAt != nil {
		job.TotalSeconds = now().Sub(*job.StartedAt).Seconds()
	}
	job.DeletionStatus = vigil.DeletionDeleting
	job.DeletionMessage = fmt.Sprintf("clean-up pending on node %s: its copy (%s) is on that worker's machine, and is deleted when a vigil process of node %s starts again",
		job.Node, job.CreatedResourceLocation, job.Node)
	return restoreEnded
}
