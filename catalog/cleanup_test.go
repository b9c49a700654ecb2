package catalog_test

import (
	"context"
	"testing"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
)

// TestListPendingCleanup: a restore test is pending clean-up once it has
// its verdict and its copy is not deleted yet, on the node that made it,
// since its verdict; one still validating, one deleted, and a plain
// restore are not.
func TestListPendingCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	forEachDialect(t, func(t *testing.T, db testDatabase) {
		c := db.open(t)
		for _, j := range []vigil.RestoreJob{
			{ID: "rj-aborted", Resource: "app", Node: "w1", RestoreTest: true, Status: vigil.RestoreCompleted, CreatedAt: at(1), StartedAt: new(at(2)),
				TotalSeconds: 180, CreatedResourceLocation: "/srv/copies/1", ValidationStatus: vigil.ValidationAborted,
				DeletionStatus: vigil.DeletionDeleting, DeletionMessage: "clean-up pending on node w1"},
			{ID: "rj-retrying", Resource: "db", Node: "w2", RestoreTest: true, Status: vigil.RestoreCompleted, CreatedAt: at(3), StartedAt: new(at(3)),
				TotalSeconds: 60, ValidationStatus: vigil.ValidationSuccessful, DeletionStatus: vigil.DeletionFailed, DeletionMessage: "attempt 1 of 10"},
			{ID: "rj-refused", Resource: "db", Node: "w2", RestoreTest: true, Status: vigil.RestoreFailed, CreatedAt: at(4), CompletedAt: new(at(5)),
				ValidationStatus: vigil.ValidationFailed, DeletionStatus: vigil.DeletionDeleting},
			{ID: "rj-validating", Resource: "app", Node: "w1", RestoreTest: true, Status: vigil.RestoreCompleted, CreatedAt: at(6), StartedAt: new(at(6)),
				ValidationStatus: vigil.ValidationValidating, DeletionStatus: vigil.DeletionDeleting},
			{ID: "rj-deleted", Resource: "app", Node: "w1", RestoreTest: true, Status: vigil.RestoreCompleted, CreatedAt: at(7), StartedAt: new(at(7)),
				ValidationStatus: vigil.ValidationSuccessful, DeletionStatus: vigil.DeletionSuccessful},
			{ID: "rj-plain", Resource: "app", Node: "w1", Status: vigil.RestoreCompleted, CreatedAt: at(8), StartedAt: new(at(8))},
			// Nodes before, between and after those with a copy waiting,
			// with none: the walk from node to node passes them.
			{ID: "rj-a-deleted", Resource: "app", Node: "a", RestoreTest: true, Status: vigil.RestoreCompleted, CreatedAt: at(9),
				ValidationStatus: vigil.ValidationSuccessful, DeletionStatus: vigil.DeletionSuccessful},
			{ID: "rj-w15-queued", Resource: "app", Node: "w15", RestoreTest: true, Status: vigil.RestorePending, CreatedAt: at(9),
				ValidationStatus: vigil.ValidationFailed, DeletionStatus: vigil.DeletionDeleting},
			{ID: "rj-z-plain", Resource: "app", Node: "z", Status: vigil.RestoreCompleted, CreatedAt: at(9)},
			// A plain restore ended with its dead worker: its partial
			// files wait for node w3, since it was ended.
			{ID: "rj-w3-partial", Resource: "docs", Node: "w3", Status: vigil.RestoreAborted, CreatedAt: at(10), StartedAt: new(at(10)),
				CompletedAt: new(at(12)), CreatedResourceLocation: "/srv/restored", DeletionStatus: vigil.DeletionDeleting, DeletionMessage: "clean-up pending on node w3"},
			// Same instant as rj-refused, on another node: id breaks the tie.
			{ID: "rj-refused2", Resource: "db", Node: "", RestoreTest: true, Status: vigil.RestoreFailed, CreatedAt: at(4), CompletedAt: new(at(5)),
				ValidationStatus: vigil.ValidationFailed, DeletionStatus: vigil.DeletionDeleting},
		} {
			requireNoError(t, c.InsertRestoreJob(ctx, &j))
		}
		got, err := c.ListPendingCleanup(ctx)
		requireNoError(t, err)
		requireEqual(t, got, []catalog.PendingCleanup{
			{JobID: "rj-w3-partial", Resource: "docs", Node: "w3", Location: "/srv/restored", Status: vigil.DeletionDeleting,
				Message: "clean-up pending on node w3", Since: at(12)},
			{JobID: "rj-refused2", RestoreTest: true, Resource: "db", Node: "", Status: vigil.DeletionDeleting, Since: at(5)},
			{JobID: "rj-refused", RestoreTest: true, Resource: "db", Node: "w2", Status: vigil.DeletionDeleting, Since: at(5)},
			{JobID: "rj-retrying", RestoreTest: true, Resource: "db", Node: "w2", Status: vigil.DeletionFailed, Message: "attempt 1 of 10", Since: at(4)},
			{JobID: "rj-aborted", RestoreTest: true, Resource: "app", Node: "w1", Location: "/srv/copies/1", Status: vigil.DeletionDeleting,
				Message: "clean-up pending on node w1", Since: at(5)},
		})
	})
}
