package vigil

import (
	"encoding/json"
	"fmt"
	"time"
)

// WithData returns the event with data, the record it is about, stored
// with it as JSON (as the API shows that record).
func (ev Event) WithData(data any) Event {
	b, err := json.Marshal(data)
	if err != nil {
		// Records are plain structs of strings, numbers and times.
		panic(fmt.Sprintf("encode the record of event %s: %v", ev.Type, err))
	}
	ev.Data = b
	return ev
}

// BackupJobEvent reports a backup job's change of status.
func BackupJobEvent(t EventType, job *BackupJob) Event {
	ev := Event{Type: t, Resource: job.Resource, JobID: job.ID, RecoveryPointID: job.RecoveryPointID}
	switch t {
	case EventBackupJobStarted:
		ev.Subject = fmt.Sprintf("Backup of %s started", job.Resource)
		ev.Message = fmt.Sprintf("Backup job %s of %s %q into vault %q started on node %s (created by %s).",
			job.ID, job.ResourceType, job.Resource, job.Vault, job.Node, job.CreatedBy)
	case EventBackupJobCompleted:
		ev.Subject = fmt.Sprintf("Backup of %s completed: recovery point %s", job.Resource, job.RecoveryPointID)
		ev.Message = fmt.Sprintf("Backup job %s of %s %q into vault %q completed: recovery point %s, %d files, %d bytes, in %s.",
			job.ID, job.ResourceType, job.Resource, job.Vault, job.RecoveryPointID, job.Files, job.Bytes, jobDuration(job.StartedAt, job.CompletedAt))
	default:
		ev.Subject = fmt.Sprintf("Backup of %s %s", job.Resource, job.Status)
		ev.Message = fmt.Sprintf("Backup job %s of %s %q into vault %q ended %s: %s\nNo recovery point was made.",
			job.ID, job.ResourceType, job.Resource, job.Vault, job.Status, job.StatusMessage)
	}
	return ev.WithData(job)
}

// RestoreJobEvent reports a restore job's change of status.
func RestoreJobEvent(t EventType, job *RestoreJob) Event {
	ev := Event{Type: t, Resource: job.Resource, JobID: job.ID, RecoveryPointID: job.RecoveryPointID}
	kind := "Restore"
	if job.RestoreTest {
		kind = "Restore test"
	}
	switch t {
	case EventRestoreJobStarted:
		ev.Subject = fmt.Sprintf("Restore of %s started", job.Resource)
		ev.Message = fmt.Sprintf("%s job %s of recovery point %s (%s %q) into new resource %s started on node %s (created by %s).",
			kind, job.ID, job.RecoveryPointID, job.ResourceType, job.Resource, job.CreatedResourceID, job.Node, job.CreatedBy)
	case EventRestoreJobCompleted:
		ev.Subject = fmt.Sprintf("Restore of %s completed", job.Resource)
		ev.Message = fmt.Sprintf("%s job %s restored recovery point %s (%s %q) into new resource %s at %s in %s.",
			kind, job.ID, job.RecoveryPointID, job.ResourceType, job.Resource, job.CreatedResourceID, job.CreatedResourceLocation,
			jobDuration(job.StartedAt, job.CompletedAt))
	default:
		ev.Subject = fmt.Sprintf("Restore of %s %s", job.Resource, job.Status)
		ev.Message = fmt.Sprintf("%s job %s of recovery point %s (%s %q) ended %s: %s",
			kind, job.ID, job.RecoveryPointID, job.ResourceType, job.Resource, job.Status, job.StatusMessage)
	}
	return ev.WithData(job)
}

// CopyJobEvent reports a copy job's change of status.
func CopyJobEvent(t EventType, job *CopyJob) Event {
	ev := Event{Type: t, Resource: job.Resource, JobID: job.ID, RecoveryPointID: job.RecoveryPointID}
	switch t {
	case EventCopyJobStarted:
		ev.Subject = fmt.Sprintf("Copy of %s into %s started", job.Resource, job.Vault)
		ev.Message = fmt.Sprintf("Copy job %s of recovery point %s (%s %q) from vault %q into vault %q started on node %s (created by %s).",
			job.ID, job.SourceRecoveryPointID, job.ResourceType, job.Resource, job.SourceVault, job.Vault, job.Node, job.CreatedBy)
	case EventCopyJobCompleted:
		ev.Subject = fmt.Sprintf("Copy of %s into %s completed: recovery point %s", job.Resource, job.Vault, job.RecoveryPointID)
		ev.Message = fmt.Sprintf("Copy job %s copied recovery point %s (%s %q) from vault %q into vault %q: recovery point %s, %d files, %d bytes, in %s.",
			job.ID, job.SourceRecoveryPointID, job.ResourceType, job.Resource, job.SourceVault, job.Vault, job.RecoveryPointID, job.Files, job.Bytes,
			jobDuration(job.StartedAt, job.CompletedAt))
	default:
		ev.Subject = fmt.Sprintf("Copy of %s into %s %s", job.Resource, job.Vault, job.Status)
		ev.Message = fmt.Sprintf("Copy job %s of recovery point %s (%s %q) from vault %q into vault %q ended %s: %s\nNo recovery point was made in vault %q.",
			job.ID, job.SourceRecoveryPointID, job.ResourceType, job.Resource, job.SourceVault, job.Vault, job.Status, job.StatusMessage, job.Vault)
	}
	return ev.WithData(job)
}

func jobDuration(start, end *time.Time) string {
	if start == nil || end == nil {
		return "?"
	}
	return end.Sub(*start).Round(time.Millisecond).String()
}
