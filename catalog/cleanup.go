package catalog

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-backup/vigil"
)

// PendingCleanup is a restore test that has its verdict and whose copy is
// still to be deleted, or a plain restore, ended with its worker, whose
// partial files are still to be removed. Either is on the machine of the
// node that made it, so only a vigil process of that node deletes it:
// while the node is down, the clean-up waits for it.
type PendingCleanup struct {
	JobID    string
	Resource string
	Node     string
	// RestoreTest is false for a plain restore's partial files.
	RestoreTest bool
	// Location is where the copy is on the node's machine.
	Location string
	// Status is DELETING, or FAILED when a deletion failed and is tried
	// again or was given up; Message says which.
	Status  vigil.DeletionStatus
	Message string
	// Since is when the verdict came, and with it the copy's deletion was
	// due; for a plain restore, when it was ended.
	Since time.Time
}

// listPendingCleanupSQL selects the restore tests whose copy may wait,
// node by node from vigil_restore_job_cleanup (node, restore_test,
// deletion_status): the CTE walks the index's nodes one seek each (a
// loose index scan, which neither SQLite nor PostgreSQL does by itself), so
// the answer costs a few seeks however many tests the catalog holds. The
// same conditions without the nodes read every restore test: 76 ms on
// SQLite and 210 ms on PostgreSQL at 100,000 tests, on every overview,
// workers page and workers list. No ORDER BY: with one, SQLite walks the
// created_at index instead; the few rows are sorted after.
const listPendingCleanupSQL = `WITH RECURSIVE nodes(node) AS (
		SELECT MIN(node) FROM vigil_restore_job
		UNION ALL
		SELECT (SELECT MIN(j.node) FROM vigil_restore_job j WHERE j.node > nodes.node) FROM nodes WHERE nodes.node IS NOT NULL
	) ` + selectRestoreJobSQL + ` WHERE node IN (SELECT node FROM nodes) AND restore_test IN (0, 1)
		AND deletion_status IN ('DELETING', 'FAILED') AND status <> 'PENDING'`

// ListPendingCleanup returns the restore tests whose copy waits to be
// deleted, and the plain restores whose partial files wait to be removed,
// newest first. A test still validating is not among them: its copy is in
// use, not waiting.
func (r records) ListPendingCleanup(ctx context.Context) ([]PendingCleanup, error) {
	rows, err := r.db.query(ctx, listPendingCleanupSQL)
	if err != nil {
		return nil, fmt.Errorf("list pending clean-up: %w", err)
	}
	defer rows.Close()
	var jobs []vigil.RestoreJob
	for rows.Next() {
		j, err := scanRestoreJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list pending clean-up: %w", err)
		}
		if !j.RestoreTest || j.ValidationStatus.Final() {
			jobs = append(jobs, j)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pending clean-up: %w", err)
	}
	// Newest first, as the lists are.
	slices.SortFunc(jobs, func(a, b vigil.RestoreJob) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	out := []PendingCleanup{}
	for _, j := range jobs {
		out = append(out, PendingCleanup{JobID: j.ID, Resource: j.Resource, Node: j.Node, RestoreTest: j.RestoreTest, Location: j.CreatedResourceLocation,
			Status: j.DeletionStatus, Message: j.DeletionMessage, Since: verdictTime(j)})
	}
	return out, nil
}

// verdictTime is when a restore test got its verdict: TotalSeconds runs
// from its start to the verdict. A test that never started (its restore
// refused) has its verdict when it completed.
func verdictTime(j vigil.RestoreJob) time.Time {
	switch {
	case !j.RestoreTest && j.CompletedAt != nil:
		return *j.CompletedAt
	case j.StartedAt != nil:
		return j.StartedAt.Add(time.Duration(j.TotalSeconds * float64(time.Second)))
	case j.CompletedAt != nil:
		return *j.CompletedAt
	}
	return j.CreatedAt
}
