package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-backup/vigil"
)

// PendingCleanup is a restore test that has its verdict and whose copy is
// still to be deleted. The copy (its folder, cgroup, processes) is on the
// machine of the node that made it, so only a vigil process of that node
// deletes it: while the node is down, the clean-up waits for it.
type PendingCleanup struct {
	JobID    string
	Resource string
	Node     string
	// Location is where the copy is on the node's machine.
	Location string
	// Status is DELETING, or FAILED when a deletion failed and is tried
	// again or was given up; Message says which.
	Status  vigil.DeletionStatus
	Message string
	// Since is when the verdict came, and with it the copy's deletion was
	// due.
	Since time.Time
}

// ListPendingCleanup returns the restore tests whose copy waits to be
// deleted, newest first. A test still validating is not among them: its
// copy is in use, not waiting.
func (r records) ListPendingCleanup(ctx context.Context) ([]PendingCleanup, error) {
	jobs, err := r.ListRestoreJobs(ctx, RestoreJobFilter{NotDeleted: true})
	if err != nil {
		return nil, fmt.Errorf("list pending clean-up: %w", err)
	}
	out := []PendingCleanup{}
	for _, j := range jobs {
		if !j.ValidationStatus.Final() || (j.DeletionStatus != vigil.DeletionDeleting && j.DeletionStatus != vigil.DeletionFailed) {
			continue
		}
		out = append(out, PendingCleanup{JobID: j.ID, Resource: j.Resource, Node: j.Node, Location: j.CreatedResourceLocation,
			Status: j.DeletionStatus, Message: j.DeletionMessage, Since: verdictTime(j)})
	}
	return out, nil
}

// verdictTime is when a restore test got its verdict: TotalSeconds runs
// from its start to the verdict. A test that never started (its restore
// refused) has its verdict when it completed.
func verdictTime(j vigil.RestoreJob) time.Time {
	switch {
	case j.StartedAt != nil:
		return j.StartedAt.Add(time.Duration(j.TotalSeconds * float64(time.Second)))
	case j.CompletedAt != nil:
		return *j.CompletedAt
	}
	return j.CreatedAt
}
