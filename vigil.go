// Package vigil holds the domain of a backup service whose every backup is
// proven restorable: resources, vaults, recovery points, backup and restore
// jobs, their statuses, and the interfaces the core consumes. It depends on
// nothing outside the standard library; adapters (catalog, vault, resource
// types, API) import it, never the reverse.
package vigil

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	// RecoveryPointDamaged: a vault verify or repair found the point's data
	// damaged or gone (StatusMessage says what). It is never picked as the
	// latest good one; a person may still restore it by its id, which
	// restores what is left.
	RecoveryPointDamaged RecoveryPointStatus = "DAMAGED"
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

// CopyJob copies one recovery point into another vault, where it becomes a
// recovery point of its own (RecoveryPointID, chosen when the job is
// created, so that a retried job never makes a second one). Its statuses
// are a backup job's: PENDING → RUNNING → COMPLETED / FAILED / ABORTED.
type CopyJob struct {
	ID            string          `json:"id"`
	Status        BackupJobStatus `json:"status"`
	StatusMessage string          `json:"status_message"`
	Resource      string          `json:"resource"`
	ResourceType  string          `json:"resource_type"`
	// SourceVault and SourceRecoveryPointID are what is copied; Vault is
	// where to, and RecoveryPointID the copy's id there.
	SourceVault           string  `json:"source_vault"`
	SourceRecoveryPointID string  `json:"source_recovery_point_id"`
	Vault                 string  `json:"vault"`
	RecoveryPointID       string  `json:"recovery_point_id"`
	Bytes                 int64   `json:"bytes"`
	Files                 int64   `json:"files"`
	PercentDone           float64 `json:"percent_done"`
	CreatedBy             string  `json:"created_by"`
	Node                  string  `json:"node,omitempty"`
	// ExpireAt is the lifecycle the copy will get; nil keeps it forever.
	ExpireAt    *time.Time `json:"expire_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
}

// ValidationStatus is the verdict of a restore test on its restored copy.
type ValidationStatus string

const (
	ValidationValidating ValidationStatus = "VALIDATING"
	ValidationSuccessful ValidationStatus = "SUCCESSFUL"
	ValidationFailed     ValidationStatus = "FAILED"
	ValidationTimedOut   ValidationStatus = "TIMED_OUT"
	// ValidationAborted: vigil stopped or died during the test, so nothing
	// was learned about the backup; a new test of the recovery point is
	// queued (restore_testing[].retry_interrupted times at most).
	ValidationAborted ValidationStatus = "ABORTED"
)

// Final reports whether the verdict is in.
func (s ValidationStatus) Final() bool {
	return s == ValidationSuccessful || s == ValidationFailed || s == ValidationTimedOut || s == ValidationAborted
}

// DeletionStatus is the clean-up of a restore test's restored copy.
type DeletionStatus string

const (
	DeletionDeleting   DeletionStatus = "DELETING"
	DeletionSuccessful DeletionStatus = "SUCCESSFUL"
	DeletionFailed     DeletionStatus = "FAILED"
)

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

	// RestoreTest is set when the restore is a restore test: its copy is
	// validated and then deleted. The fields below belong to restore tests.
	RestoreTest bool `json:"restore_test"`
	// Plan is the restore testing plan the test runs under ("on-demand"
	// for one started by hand); CreatedBy says who asked for it.
	Plan              string           `json:"plan,omitempty"`
	ValidationStatus  ValidationStatus `json:"validation_status,omitempty"`
	ValidationMessage string           `json:"validation_message,omitempty"`
	DeletionStatus    DeletionStatus   `json:"deletion_status,omitempty"`
	DeletionMessage   string           `json:"deletion_message,omitempty"`
	// DeletionAttempts counts the deletions of the copy that were tried.
	DeletionAttempts int `json:"deletion_attempts,omitempty"`
	// KeepUntil is set when a failed copy is kept for inspection.
	KeepUntil *time.Time `json:"keep_until,omitempty"`
	// Measured durations, in seconds. RestoreSeconds is the data restore,
	// StartSeconds starting the copy (an app's process), ValidationSeconds
	// from the start of validation to the verdict, CleanupSeconds the
	// deletion. TotalSeconds is the recovery time observed: from the job's
	// creation to the verdict. RecoveryPointAgeSeconds is the age of the
	// restored data when the restore started: the recovery point objective
	// as it stood.
	RestoreSeconds          float64 `json:"restore_seconds,omitempty"`
	StartSeconds            float64 `json:"start_seconds,omitempty"`
	ValidationSeconds       float64 `json:"validation_seconds,omitempty"`
	CleanupSeconds          float64 `json:"cleanup_seconds,omitempty"`
	TotalSeconds            float64 `json:"total_seconds,omitempty"`
	RecoveryPointAgeSeconds float64 `json:"recovery_point_age_seconds,omitempty"`
	// VaultReadBytes counts the bytes of file content a restore test read
	// from the vault: its restore's, and its checksum validators' when
	// they compared files with the vault rather than with the digests
	// the restore took (a file read twice counts twice). WrittenBytes
	// counts the bytes of file content its restore wrote into the copy.
	// Both are 0 for a type that does not count them (the databases).
	VaultReadBytes int64 `json:"vault_read_bytes,omitempty"`
	WrittenBytes   int64 `json:"written_bytes,omitempty"`
	// ExternalValidation is a verdict reported through the API (PUT
	// /api/v1/restore-jobs/{id}/validation), waiting for the loop to read it.
	ExternalValidation *ExternalValidation `json:"external_validation,omitempty"`
}

// Ended reports whether nothing more will happen to the job: its status is
// final and, for a restore test, its verdict is in and its copy deleted
// (or deleting failed) or kept for inspection.
func (j RestoreJob) Ended() bool {
	if !j.RestoreTest {
		return j.Status.Final()
	}
	deleted := j.DeletionStatus == DeletionSuccessful || j.DeletionStatus == DeletionFailed
	return j.ValidationStatus.Final() && (deleted || j.KeepUntil != nil)
}

// ExternalValidation is a verdict reported by validation logic outside vigil.
type ExternalValidation struct {
	Status  ValidationStatus `json:"status"`
	Message string           `json:"message"`
	Time    time.Time        `json:"time"`
}

// RecoveryPoint is one backup of one resource in one vault. SnapshotID is the
// vault's own identifier for the data (a Kopia manifest id).
type RecoveryPoint struct {
	ID           string              `json:"id"`
	Vault        string              `json:"vault"`
	Resource     string              `json:"resource"`
	ResourceType string              `json:"resource_type"`
	Status       RecoveryPointStatus `json:"status"`
	// StatusMessage says why a DAMAGED point is damaged.
	StatusMessage string     `json:"status_message,omitempty"`
	SizeBytes     int64      `json:"size_bytes"`
	Files         int64      `json:"files"`
	BackupJobID   string     `json:"backup_job_id"`
	SnapshotID    string     `json:"snapshot_id"`
	CreatedAt     time.Time  `json:"created_at"`
	CompletedAt   *time.Time `json:"completed_at"`
	ExpireAt      *time.Time `json:"expire_at"`
	// Database describes a database recovery point: what the dump holds,
	// counted at backup time. Restore tests check a restored copy against it.
	Database *DatabaseInfo `json:"database,omitempty"`
	// SourceRecoveryPointID and CopyJobID are set on a copy: the
	// recovery point it was copied from, and the copy job that made it.
	// BackupJobID stays the backup that took the data.
	SourceRecoveryPointID string `json:"source_recovery_point_id,omitempty"`
	CopyJobID             string `json:"copy_job_id,omitempty"`
	// Skipped is what the backup left out of a folder because no
	// snapshot holds it (named pipes, sockets, device files); nil when
	// nothing was.
	Skipped *Skipped `json:"skipped,omitempty"`
	// Foreign is set on a point listed from a foreign vault: the snapshot
	// another tool (restic, Kopia) made, as that tool recorded it.
	Foreign *ForeignSnapshot `json:"foreign,omitempty"`
	// KeptBy names the retention rules of the plan that made the point
	// which keep it ("keep_daily", "last good", …), as they decide now.
	// Listings set it for the points of plans with retention rules; it
	// is not stored.
	KeptBy []string `json:"kept_by,omitempty"`
}

// ForeignSnapshot is a snapshot that another tool wrote into a foreign
// vault, as it recorded it: vigil lists it as a recovery point of the
// resource whose source it matches, and restore-tests it.
type ForeignSnapshot struct {
	// Tool is the vault's kind: restic or kopia.
	Tool string `json:"tool"`
	// ID is the tool's own id of the snapshot (restic's full id,
	// Kopia's manifest id), to find it with that tool.
	ID       string   `json:"id"`
	Host     string   `json:"host"`
	Username string   `json:"username,omitempty"`
	Path     string   `json:"path"`
	Tags     []string `json:"tags,omitempty"`
}

// RetentionPreview is what a backup plan's retention rules decide now:
// the points they keep, each with its rules, and those the lifecycle job
// removes at its next pass. Both lists are newest first.
type RetentionPreview struct {
	Plan string `json:"plan"`
	// Rules are the plan's rules as in the config ("keep_last 3,
	// keep_daily 7"); Timezone the zone its days are counted in (the
	// plan's timezone, else "the server's time zone (CET)").
	Rules    string          `json:"rules"`
	Timezone string          `json:"timezone"`
	Keep     []RecoveryPoint `json:"keep"`
	Remove   []RecoveryPoint `json:"remove"`
}

// JobID is the job that made the recovery point: its copy job for a copy,
// else its backup job. Its log is where what happens to the point is told.
func (rp RecoveryPoint) JobID() string {
	if rp.CopyJobID != "" {
		return rp.CopyJobID
	}
	return rp.BackupJobID
}

// Skipped counts the entries a backup left out, by kind ("named pipe",
// "socket", "device", "character device"), and names the first of them.
type Skipped struct {
	Total  int64            `json:"total"`
	ByKind map[string]int64 `json:"by_kind"`
	// Entries are the first 100, their paths relative to the resource's
	// folder.
	Entries []SkippedEntry `json:"entries"`
}

// SkippedEntry is one entry a backup left out.
type SkippedEntry struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
}

// DatabaseInfo is what a database backup recorded about its source, in the
// same consistent view of the data as the dump itself.
type DatabaseInfo struct {
	// Engine is postgres, mysql or sqlite; Server the server's version.
	Engine   string `json:"engine"`
	Server   string `json:"server,omitempty"`
	Database string `json:"database,omitempty"`
	// Encoding, Collate and Ctype are a PostgreSQL database's settings, so
	// that a restore creates its new database with the same ones.
	Encoding string `json:"encoding,omitempty"`
	Collate  string `json:"collate,omitempty"`
	Ctype    string `json:"ctype,omitempty"`
	// JournalMode and FileMode are an SQLite database file's journal mode
	// ("wal", "delete") and permissions, in octal ("0640"): a restore
	// gives the new file the same, so WAL stays WAL.
	JournalMode string      `json:"journal_mode,omitempty"`
	FileMode    string      `json:"file_mode,omitempty"`
	Tables      []TableRows `json:"tables"`
}

// TableRows is one table and the number of rows it held. Name is
// schema-qualified where the engine has schemas ("public.orders").
type TableRows struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

// LogLine is one timestamped line of a job's own log.
type LogLine struct {
	JobID   string    `json:"job_id"`
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// EventType names a state change that subscribers can be told about.
type EventType string

const (
	EventBackupJobStarted     EventType = "BACKUP_JOB_STARTED"
	EventBackupJobCompleted   EventType = "BACKUP_JOB_COMPLETED"
	EventBackupJobFailed      EventType = "BACKUP_JOB_FAILED"
	EventRestoreJobStarted    EventType = "RESTORE_JOB_STARTED"
	EventRestoreJobCompleted  EventType = "RESTORE_JOB_COMPLETED"
	EventRestoreJobFailed     EventType = "RESTORE_JOB_FAILED"
	EventRecoveryPointExpired EventType = "RECOVERY_POINT_EXPIRED"
	// EventRecoveryPointDamaged: a vault verify or repair found a recovery
	// point's data damaged or gone.
	EventRecoveryPointDamaged EventType = "RECOVERY_POINT_DAMAGED"
	EventRestoreTestStatus    EventType = "RESTORE_TEST_STATUS"
	EventCopyJobStarted       EventType = "COPY_JOB_STARTED"
	EventCopyJobCompleted     EventType = "COPY_JOB_COMPLETED"
	// EventCopyJobFailed is also for an ABORTED copy job.
	EventCopyJobFailed EventType = "COPY_JOB_FAILED"
	// EventRestoreTestCleanupFailed: vigil gave up deleting a restore
	// test's copy; a person must.
	EventRestoreTestCleanupFailed EventType = "RESTORE_TEST_CLEANUP_FAILED"
	// EventVaultDamaged: a vault's rolling verification read back a pack
	// that is damaged.
	EventVaultDamaged EventType = "VAULT_DAMAGED"
	// EventVaultCoverageGap: after a night of rolling verification, some
	// of the vault's data older than read_back_within has not been read
	// back within it.
	EventVaultCoverageGap EventType = "VAULT_COVERAGE_GAP"
)

// EventTypes lists every event type, in the order of a job's life.
var EventTypes = []EventType{
	EventBackupJobStarted, EventBackupJobCompleted, EventBackupJobFailed,
	EventRestoreJobStarted, EventRestoreJobCompleted, EventRestoreJobFailed,
	EventRecoveryPointExpired, EventRestoreTestStatus, EventRestoreTestCleanupFailed,
	EventRecoveryPointDamaged,
	EventCopyJobStarted, EventCopyJobCompleted, EventCopyJobFailed,
	EventVaultDamaged, EventVaultCoverageGap,
}

// Event is one persisted state change. Seq numbers events in the order they
// were committed, so a reader that remembers the last Seq it saw misses
// nothing.
type Event struct {
	Seq             int64     `json:"seq"`
	Type            EventType `json:"type"`
	Time            time.Time `json:"time"`
	Resource        string    `json:"resource,omitempty"`
	JobID           string    `json:"job_id,omitempty"`
	RecoveryPointID string    `json:"recovery_point_id,omitempty"`
	// Subject is a one-line summary, Message the human text (the body of a
	// notification e-mail).
	Subject string `json:"subject"`
	Message string `json:"message"`
	// Data is the record the event is about (a job or a recovery point), as
	// the API shows it.
	Data json.RawMessage `json:"data,omitempty"`
}

// DeliveryStatus is how far the delivery of an event to a notification got.
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "PENDING"
	DeliveryRetrying  DeliveryStatus = "RETRYING"
	DeliveryDelivered DeliveryStatus = "DELIVERED"
	DeliveryFailed    DeliveryStatus = "FAILED"
)

// Delivery is the outcome of sending one event to one notification.
type Delivery struct {
	EventSeq     int64          `json:"event_seq"`
	Notification string         `json:"notification"`
	Status       DeliveryStatus `json:"status"`
	Attempts     int            `json:"attempts"`
	LastError    string         `json:"last_error,omitempty"`
	UpdatedAt    time.Time      `json:"updated_at"`
}

// Job types, as `vigil jobs list --type` names them.
const (
	JobTypeBackup  = "backup"
	JobTypeRestore = "restore"
	JobTypeCopy    = "copy"
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
	PrefixCopyJob       = "cj"
)

// PlanKind tells a backup plan from a restore testing plan, which may
// share a name.
type PlanKind string

const (
	BackupPlanKind      PlanKind = "backup"
	RestoreTestPlanKind PlanKind = "restore_test"
)

// PlanRef names one plan.
type PlanRef struct {
	Kind PlanKind `json:"kind"`
	Name string   `json:"name"`
}

// PlanPause is a paused plan's record: who paused it and when, and the
// scheduled runs it skipped since.
type PlanPause struct {
	PausedAt      time.Time  `json:"paused_at"`
	PausedBy      string     `json:"paused_by"`
	SkippedRuns   int64      `json:"skipped_runs"`
	LastSkippedAt *time.Time `json:"last_skipped_at,omitempty"`
}

// Plan is a configured backup plan or restore testing plan, with its
// next scheduled run and whether it is paused. A paused plan starts
// nothing by itself: its scheduled runs, and a restore testing plan's
// tests on each completed backup, are skipped until it is resumed.
type Plan struct {
	PlanRef
	Schedule string `json:"schedule,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	// OnBackupCompleted: a restore testing plan that tests each new
	// recovery point; it has no next run of its own.
	OnBackupCompleted bool     `json:"on_backup_completed,omitempty"`
	Resources         []string `json:"resources"`
	// Vault is a backup plan's vault.
	Vault string `json:"vault,omitempty"`
	// NextRun is when the schedule next starts the plan; nil without a
	// schedule, and while the plan is paused.
	NextRun *time.Time `json:"next_run,omitempty"`
	Paused  *PlanPause `json:"paused,omitempty"`
}
