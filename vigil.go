// Package vigil holds the domain of a backup service whose every backup is
// proven restorable: resources, vaults, recovery points, backup and restore
// jobs, their statuses, and the interfaces the core consumes. It depends on
// nothing outside the standard library; adapters (catalog, vault, resource
// types, API) import it, never the reverse.
package vigil

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// BackupJobStatus is the life cycle of a backup job, in AWS Backup's words.
type BackupJobStatus string

const (
	BackupCreated   BackupJobStatus = "CREATED"
	BackupPending   BackupJobStatus = "PENDING"
	BackupRunning   BackupJobStatus = "RUNNING"
	BackupCompleted BackupJobStatus = "COMPLETED"
	BackupFailed    BackupJobStatus = "FAILED"
	BackupAborted   BackupJobStatus = "ABORTED"
	BackupExpired   BackupJobStatus = "EXPIRED"
)

// Final reports whether no further transition can happen.
func (s BackupJobStatus) Final() bool {
	switch s {
	case BackupCompleted, BackupFailed, BackupAborted, BackupExpired:
		return true
	}
	return false
}

// RestoreJobStatus is the life cycle of a restore job.
type RestoreJobStatus string

const (
	RestorePending   RestoreJobStatus = "PENDING"
	RestoreRunning   RestoreJobStatus = "RUNNING"
	RestoreCompleted RestoreJobStatus = "COMPLETED"
	RestoreFailed    RestoreJobStatus = "FAILED"
	RestoreAborted   RestoreJobStatus = "ABORTED"
)

// Final reports whether no further transition can happen.
func (s RestoreJobStatus) Final() bool {
	switch s {
	case RestoreCompleted, RestoreFailed, RestoreAborted:
		return true
	}
	return false
}

// RecoveryPointStatus is the life cycle of a recovery point. A recovery point
// is AVAILABLE only once all its data is durable in its vault.
type RecoveryPointStatus string

const (
	RecoveryPointCreating  RecoveryPointStatus = "CREATING"
	RecoveryPointAvailable RecoveryPointStatus = "AVAILABLE"
	RecoveryPointExpired   RecoveryPointStatus = "EXPIRED"
	RecoveryPointDeleting  RecoveryPointStatus = "DELETING"
)

// BackupJob is one backup of one resource into one vault.
type BackupJob struct {
	ID              string          `json:"id"`
	Status          BackupJobStatus `json:"status"`
	StatusMessage   string          `json:"status_message"`
	Resource        string          `json:"resource"`
	ResourceType    string          `json:"resource_type"`
	Vault           string          `json:"vault"`
	RecoveryPointID string          `json:"recovery_point_id"`
	Bytes           int64           `json:"bytes"`
	Files           int64           `json:"files"`
	PercentDone     float64         `json:"percent_done"`
	CreatedBy       string          `json:"created_by"`
	Node            string          `json:"node,omitempty"`
	// ExpireAt is the lifecycle the recovery point will get; nil keeps it forever.
	ExpireAt    *time.Time `json:"expire_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
}

// RestoreJob is one restore of a recovery point into a new resource.
type RestoreJob struct {
	ID                      string            `json:"id"`
	Status                  RestoreJobStatus  `json:"status"`
	StatusMessage           string            `json:"status_message"`
	RecoveryPointID         string            `json:"recovery_point_id"`
	Resource                string            `json:"resource"`
	ResourceType            string            `json:"resource_type"`
	CreatedResourceID       string            `json:"created_resource_id"`
	CreatedResourceLocation string            `json:"created_resource_location"`
	CreatedBy               string            `json:"created_by"`
	Node                    string            `json:"node,omitempty"`
	Metadata                map[string]string `json:"metadata"`
	CreatedAt               time.Time         `json:"created_at"`
	StartedAt               *time.Time        `json:"started_at"`
	CompletedAt             *time.Time        `json:"completed_at"`
}

// RecoveryPoint is one backup of one resource in one vault. SnapshotID is the
// vault's own identifier for the data (a Kopia manifest id).
type RecoveryPoint struct {
	ID           string              `json:"id"`
	Vault        string              `json:"vault"`
	Resource     string              `json:"resource"`
	ResourceType string              `json:"resource_type"`
	Status       RecoveryPointStatus `json:"status"`
	SizeBytes    int64               `json:"size_bytes"`
	Files        int64               `json:"files"`
	BackupJobID  string              `json:"backup_job_id"`
	SnapshotID   string              `json:"snapshot_id"`
	CreatedAt    time.Time           `json:"created_at"`
	CompletedAt  *time.Time          `json:"completed_at"`
	ExpireAt     *time.Time          `json:"expire_at"`
}

// LogLine is one timestamped line of a job's own log.
type LogLine struct {
	JobID   string    `json:"job_id"`
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// Job types, as `vigil jobs list --type` names them.
const (
	JobTypeBackup  = "backup"
	JobTypeRestore = "restore"
)

// Resource types.
const (
	ResourceDirectory = "directory"
)

// ErrNotFound is returned (possibly wrapped) when a record does not exist.
var ErrNotFound = errors.New("not found")

// NewID returns a new random identifier with the given prefix, such as
// "bj-3f9a0c2d51e84b7a". The prefix tells a person what kind of record an id
// names when it shows up alone in a log or a shell history.
func NewID(prefix string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("read random bytes: " + err.Error()) // crypto/rand never fails on Linux
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// Id prefixes.
const (
	PrefixBackupJob     = "bj"
	PrefixRestoreJob    = "rj"
	PrefixRecoveryPoint = "rp"
)
