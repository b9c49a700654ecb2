package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// TestRestoreTestOutsideStartWindow: a scheduled test that could not start
// within its plan's start window is abandoned, with a verdict and its
// events, and creates nothing.
func TestRestoreTestOutsideStartWindow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &config.Config{
		DataDir: dir, Node: "node-a", Lifecycle: config.Lifecycle{CheckInterval: config.Duration(time.Hour)},
		Resources: []config.Resource{{Name: "docs", Type: vigil.ResourceDirectory, Path: dir}},
		RestoreTesting: []config.RestoreTestPlan{{Name: "nightly", Schedule: "0 5 * * *", Resources: []string{"docs"},
			StartWindow: config.Duration(time.Hour), ValidationWindow: config.Duration(time.Minute)}},
	}
	e, cat := newTestEngine(t, cfg)
	job := vigil.RestoreJob{ID: vigil.NewID(vigil.PrefixRestoreJob), Status: vigil.RestorePending, RestoreTest: true,
		Resource: "docs", ResourceType: vigil.ResourceDirectory, RecoveryPointID: "rp-1", CreatedBy: "nightly",
		CreatedAt: time.Now().UTC().Add(-2 * time.Hour)}
	if err := cat.InsertRestoreJob(ctx, &job); err != nil {
		t.Fatal(err)
	}
	if err := e.runRestoreTest(ctx, &job); err != nil {
		t.Fatal(err)
	}
	got, _ := cat.GetRestoreJob(ctx, job.ID)
	if got.Status != vigil.RestoreAborted || got.ValidationStatus != vigil.ValidationFailed ||
		!strings.Contains(got.ValidationMessage, "start window of 1h0m0s") || got.DeletionStatus != vigil.DeletionSuccessful {
		t.Errorf("abandoned test: %+v", got)
	}
	events, _ := cat.ListEvents(ctx, catalog.EventFilter{JobID: job.ID})
	if len(events) != 2 || events[0].Type != vigil.EventRestoreJobFailed || events[1].Type != vigil.EventRestoreTestStatus {
		t.Errorf("events: %+v", events)
	}
}
