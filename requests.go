package vigil

import "time"

// The requests of vigil's operations, shared by the API, the console and
// the engine that carries them out.

// MaxExpiry is the longest expiry a backup may ask for (100 years): beyond
// it a time.Duration would wrap around.
const MaxExpiry = 100 * 365 * 24 * time.Hour

// MaxExpiryDays is MaxExpiry in days, the unit of the CLI's, the
// console's and the config's expiries.
const MaxExpiryDays = int64(MaxExpiry / (24 * time.Hour))

// ExpiryOf returns n units (time.Second, 24*time.Hour) as an expiry, or an
// InvalidError naming field. It checks n before multiplying, which is the
// point: n × unit wraps around for large or negative n (-18446744073
// seconds is a few seconds), so the product cannot be checked afterwards.
// The API and the CLI take expiries through it; the console's form and
// the config check the same bounds (MaxExpiryDays) field by field, to say
// what is wrong in their own words.
func ExpiryOf(field string, n int64, unit time.Duration) (time.Duration, error) {
	if limit := int64(MaxExpiry / unit); n < 0 || n > limit {
		return 0, Invalidf("%s %d is out of range: give a whole number from 0 to %d (100 years); 0 keeps the recovery point forever", field, n, limit)
	}
	return time.Duration(n) * unit, nil
}

// BackupRequest asks for one on-demand or planned backup.
type BackupRequest struct {
	Resource string
	Vault    string
	// Expiry is how long the recovery point is kept; 0 keeps it forever.
	Expiry    time.Duration
	CreatedBy string
	// OnDemand marks a backup a person asked for: with Expiry 0 it takes
	// its vault's default expiry (expire_days or expire_after on the
	// vault), where a plan's backup keeps the plan's own.
	OnDemand bool
}

// CopyRequest asks for a copy of one recovery point into another vault.
type CopyRequest struct {
	RecoveryPointID string
	Vault           string
	// Expiry is how long the copy is kept, from the copy job's creation;
	// 0 keeps it forever.
	Expiry    time.Duration
	CreatedBy string
}

// RestoreRequest asks for a restore of one recovery point.
type RestoreRequest struct {
	RecoveryPointID string
	// Metadata overrides the recovery point's restore metadata defaults.
	Metadata  map[string]string
	CreatedBy string
}

// RestoreTestRequest asks for an on-demand restore test.
type RestoreTestRequest struct {
	Resource string
	// RecoveryPointID picks the recovery point; empty means the resource's
	// latest AVAILABLE one.
	RecoveryPointID string
	// Plan names the restore testing plan whose settings (validation
	// window, keep on failure, targets) the test uses; empty means the
	// on-demand defaults.
	Plan string
}

// EventQuery selects events.
type EventQuery struct {
	AfterSeq int64
	JobID    string
	Resource string
	Types    []EventType
	Limit    int
	// Wait, when no event matches, waits up to this long for one (a long
	// poll, for `vigil events tail`).
	Wait time.Duration
}

// EventPage is a page of events, oldest first, with the outcome of their
// deliveries to notifications.
type EventPage struct {
	Events     []Event    `json:"events"`
	Deliveries []Delivery `json:"deliveries"`
}

// VaultInfo describes one configured vault.
type VaultInfo struct {
	Name string `json:"name"`
	// Kind is "" for vigil's own vault, restic or kopia for a foreign
	// one, which another tool writes.
	Kind           string `json:"kind,omitempty"`
	Storage        string `json:"storage"`
	RecoveryPoints int    `json:"recovery_points"`
}

// VaultSync is what a sync of a foreign vault found: its snapshots, the
// recovery points it listed anew and those whose snapshot is gone, and
// the snapshots that no resource's source matches ("2 of /home/ann"), so
// that a person can add a resource for them.
type VaultSync struct {
	Vault     string    `json:"vault"`
	SyncedAt  time.Time `json:"synced_at"`
	Snapshots int       `json:"snapshots"`
	Added     int       `json:"added"`
	Gone      int       `json:"gone"`
	Unmatched []string  `json:"unmatched,omitempty"`
	// Skipped are the matching snapshots that could not be listed, each
	// with why (a restic snapshot of several paths).
	Skipped []string `json:"skipped,omitempty"`
}

// VaultCoverage is how much of a vault has been read back and checked
// within a window: its rolling verification's read_back_within, or 30
// days for a vault without one. The unit is the pack, the file stored
// contents are packed into.
type VaultCoverage struct {
	Vault         string  `json:"vault"`
	WindowSeconds float64 `json:"window_seconds"`
	Packs         int     `json:"packs"`
	PacksRead     int     `json:"packs_read"`
	// Bytes is what the packs take in storage; BytesRead what of it was
	// read back within the window, UnverifiedBytes the rest.
	Bytes           int64 `json:"bytes"`
	BytesRead       int64 `json:"bytes_read"`
	UnverifiedBytes int64 `json:"unverified_bytes"`
	// GapBytes is what was stored longer ago than the window and not read
	// back within it; OldestUnverifiedAt is since when the longest
	// unchecked pack has gone unchecked (its last read, or its writing).
	GapBytes           int64      `json:"gap_bytes"`
	OldestUnverifiedAt *time.Time `json:"oldest_unverified_at"`
	Percent            float64    `json:"percent"`
	// NeverRead counts packs never read back; OldestReadAt is the oldest
	// read of the others, nil when there are none.
	NeverRead    int        `json:"never_read"`
	OldestReadAt *time.Time `json:"oldest_read_at"`
	// Damaged lists the packs whose latest read found damage, each with
	// its first problem.
	Damaged []string `json:"damaged"`
}

// NewRestoreJob returns a new PENDING restore job of rp, asked for by
// createdBy, into a new resource (created resource id "res-…").
func NewRestoreJob(rp RecoveryPoint, createdBy string) RestoreJob {
	return RestoreJob{
		ID:                NewID(PrefixRestoreJob),
		Status:            RestorePending,
		RecoveryPointID:   rp.ID,
		Resource:          rp.Resource,
		ResourceType:      rp.ResourceType,
		CreatedResourceID: NewID("res"),
		CreatedBy:         createdBy,
		CreatedAt:         time.Now().UTC(),
	}
}

// Reload is what a reload of a running vigil's config did: `vigil reload`,
// SIGHUP, POST /api/v1/reload.
type Reload struct {
	// Config is the file read.
	Config string `json:"config"`
	// Changed lists what changed, one line each (`resource "db2"
	// added`); empty when the file says what the running config said.
	Changed []string `json:"changed"`
	// Warnings are what the start-up checks found in the new config that
	// did not refuse it.
	Warnings []Problem `json:"warnings"`
	At       time.Time `json:"at"`
}
