// Package api is vigil's HTTP API under /api/v1: the server's handlers, the
// request and response types, and the client the CLI uses. Server and client
// share the types in this package, so they cannot drift apart.
package api

import (
	"time"

	"github.com/vigil-backup/vigil"
)

// StartBackupRequest is the body of POST /api/v1/backup-jobs.
type StartBackupRequest struct {
	Resource string `json:"resource"`
	Vault    string `json:"vault"`
	// ExpireAfterSeconds sets the recovery point's expire_at; 0 keeps it.
	ExpireAfterSeconds int64 `json:"expire_after_seconds,omitempty"`
}

// StartCopyRequest is the body of POST /api/v1/copy-jobs: a copy of a
// recovery point into another vault.
type StartCopyRequest struct {
	RecoveryPointID string `json:"recovery_point_id"`
	Vault           string `json:"vault"`
	// ExpireAfterSeconds sets the copy's expire_at, from the copy job's
	// creation; 0 keeps it.
	ExpireAfterSeconds int64 `json:"expire_after_seconds,omitempty"`
}

// StartRestoreRequest is the body of POST /api/v1/restore-jobs.
type StartRestoreRequest struct {
	RecoveryPointID string            `json:"recovery_point_id"`
	Metadata        map[string]string `json:"metadata,omitempty"`
}

// StartRestoreTestRequest is the body of POST /api/v1/restore-tests.
type StartRestoreTestRequest struct {
	Resource string `json:"resource"`
	// RecoveryPointID picks the recovery point; empty tests the latest.
	RecoveryPointID string `json:"recovery_point_id,omitempty"`
	// Plan is the restore testing plan whose settings the test uses; empty
	// means the on-demand defaults (5 minute validation window).
	Plan string `json:"plan,omitempty"`
}

// ValidationReport is the body of PUT /api/v1/restore-jobs/{id}/validation:
// a verdict from validation logic outside vigil.
type ValidationReport struct {
	Status  vigil.ValidationStatus `json:"status"`
	Message string                 `json:"message"`
}

// CancelRequest is the optional body of POST /api/v1/jobs/{id}/cancel.
// Reason goes into the job's status message: "cancelled through the API:
// <reason>".
type CancelRequest struct {
	Reason string `json:"reason"`
}

// CancelResponse answers POST /api/v1/jobs/{id}/cancel with the job's
// status once the request is made: ABORTED for a job that was queued,
// still RUNNING for one that its worker is stopping (poll the job until
// it ends).
type CancelResponse struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	StatusMessage string `json:"status_message"`
}

// VerifyRequest is the body of POST /api/v1/vaults/{name}/verify.
type VerifyRequest struct {
	ReadDataPercent float64 `json:"read_data_percent"`
}

// VerifyResult is what a vault verification found. OK is true only when
// every check passed.
type VerifyResult struct {
	Vault string `json:"vault"`
	OK    bool   `json:"ok"`
	// Summary says what was checked and what was found, such as "index and
	// pack sizes checked …; 10% of file contents (322 of 3043 files) read
	// back: no damage found".
	Summary string `json:"summary"`
	// Advice says what to do about the errors; "" when there are none.
	Advice    string   `json:"advice,omitempty"`
	Snapshots int64    `json:"snapshots"`
	Files     int64    `json:"files"`
	Dirs      int64    `json:"dirs"`
	FilesRead int64    `json:"files_read"`
	BytesRead int64    `json:"bytes_read"`
	Errors    []string `json:"errors"`
}

// RepairResult is what POST /api/v1/vaults/{name}/repair found and changed.
type RepairResult struct {
	Vault string `json:"vault"`
	// Contents were read back; DamagedContents of them were dropped from
	// the vault's index, so that the next backup stores them again.
	Contents        int `json:"contents"`
	DamagedContents int `json:"damaged_contents"`
	// RecoveredPacks lost their index blob and had it read back.
	RecoveredPacks int                `json:"recovered_packs"`
	Snapshots      []RepairedSnapshot `json:"snapshots"`
}

// RepairedSnapshot is one snapshot repair rewrote without its damaged
// entries, or deleted (NewID "") when its root folder was damaged.
type RepairedSnapshot struct {
	OldID         string   `json:"old_id"`
	NewID         string   `json:"new_id"`
	Resource      string   `json:"resource"`
	RecoveryPoint string   `json:"recovery_point_id"`
	Removed       []string `json:"removed"`
}

// Vault is one configured vault.
type Vault struct {
	Name           string `json:"name"`
	Kind           string `json:"kind,omitempty"`
	Storage        string `json:"storage"`
	RecoveryPoints int    `json:"recovery_points"`
}

// Worker is a process that runs jobs, with its state (ALIVE, STOPPED, or
// DEAD: no heartbeat within workers.heartbeat_timeout) and the vigil jobs
// it ran at its last heartbeat.
type Worker struct {
	ID              string         `json:"id"`
	Node            string         `json:"node"`
	Host            string         `json:"host"`
	PID             int            `json:"pid"`
	StartedAt       time.Time      `json:"started_at"`
	LastHeartbeatAt time.Time      `json:"last_heartbeat_at"`
	Concurrency     map[string]int `json:"concurrency"`
	Running         []string       `json:"running"`
	StoppedAt       *time.Time     `json:"stopped_at,omitempty"`
	ReapedBy        string         `json:"reaped_by,omitempty"`
	State           string         `json:"state"`
	// PendingCleanup lists the restore jobs whose files wait to be
	// deleted on this worker's node (its machine, its data dir): a restore
	// test's copy a dead worker left, or whose deletion failed and is
	// retried, and the partial files of a plain restore a dead worker was
	// running. Only the latest worker of each node carries them.
	PendingCleanup []string `json:"pending_cleanup,omitempty"`
}

// Resource is one configured resource.
type Resource struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Path string `json:"path"`
}

// Error is the body of every error response.
type Error struct {
	// Message says what went wrong and what to do next.
	Message string `json:"error"`
	// Unknown is, in a 404 for a name the server's config does not have,
	// that name: a client whose own config has it knows the server runs
	// an older config.
	Unknown *UnknownName `json:"unknown,omitempty"`
}

// UnknownName is a name of a kind ("resource", "vault", "backup plan") that
// the server does not know.
type UnknownName struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// EventPage is the body of GET /api/v1/events: events oldest first, and
// the outcome of their deliveries to notifications.
type EventPage = vigil.EventPage

// FileEntry is one file, folder or symbolic link of a recovery point.
type FileEntry struct {
	// Path is the entry's path from the recovery point's root, "/"
	// between names ("" for the root itself).
	Path string `json:"path"`
	Name string `json:"name"`
	// Type is file, dir or symlink.
	Type string `json:"type"`
	// Mode is the permission bits in octal, such as "0644"; ModeString
	// is it as ls -l writes it, such as "-rw-r--r--".
	Mode       string `json:"mode"`
	ModeString string `json:"mode_string"`
	// Size is a file's size in bytes; for a folder, the total size of
	// the files below it.
	Size       int64     `json:"size"`
	ModTime    time.Time `json:"mod_time"`
	LinkTarget string    `json:"link_target,omitempty"`
}

// FileListing is the answer of GET /api/v1/recovery-points/{id}/files.
type FileListing struct {
	RecoveryPointID string `json:"recovery_point_id"`
	Resource        string `json:"resource"`
	ResourceType    string `json:"resource_type"`
	// Path is the listed path, as vigil reads it ("" for the root).
	Path string `json:"path"`
	// Entry is the entry at Path; Entries, when it is a folder, what it
	// holds (everything below it with recursive=true), sorted by path.
	Entry   FileEntry   `json:"entry"`
	Entries []FileEntry `json:"entries"`
	// Note says what the listing is when it is not a resource's files:
	// a database's recovery point holds a dump.
	Note string `json:"note,omitempty"`
}

// FileChange is one difference between two recovery points.
type FileChange struct {
	Path string `json:"path"`
	// Change is added, removed or changed.
	Change string `json:"change"`
	Type   string `json:"type"`
	// What lists what changed: type, contents, link target, mode, time.
	What []string `json:"what,omitempty"`
	Size int64    `json:"size"`
}

// RecoveryPointDiff is the answer of GET /api/v1/recovery-points/{id}/diff?to=ID.
type RecoveryPointDiff struct {
	From    string       `json:"from"`
	To      string       `json:"to"`
	Changes []FileChange `json:"changes"`
	// Added, Removed and Changed count the changes of each kind.
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
}
