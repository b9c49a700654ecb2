package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/instance"
)

// TestKillCampaign kills vigil with SIGKILL 32 times during restore tests
// of an isolated app (python3 -m http.server) that each backup starts:
// 8 times at each of the steps restore, start, validate and clean-up
// (held there by VIGIL_TEST_PAUSE, and killed once the test's log says it
// is there), after a seeded random delay into the step. It restarts vigil
// each time, and then checks what a crash must never leave: no process of
// any copy, no folder under restore-tests/, no cgroup, no test without a
// verdict, and a SUCCESSFUL test of every recovery point (interrupted tests
// are ABORTED and tried again).
func TestKillCampaign(t *testing.T) {
	steps := []string{"restore", "start", "validate", "cleanup"}
	const kills = 32
	e := newTestEnv(t, fmt.Sprintf(`  - name: web
    type: app
    path: ./site
    run: %s
    validate:
      - http: {path: /, expect_body: "Welcome"}
      - checksum: {}
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: [web]
    validation_window: 1m
    retry_interrupted: 100  # every restart kills the retries running then too
`, pythonApp))
	writeSite(t, e.path("site"))
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (set it in the test to replay a campaign)", seed)
	rng := rand.New(rand.NewPCG(seed, 11))

	phases := map[string]int{}
	var points []string
	plain := e.env
	for round := range kills {
		step := steps[round%len(steps)]
		e.env = append(plain, "VIGIL_TEST_PAUSE="+step+"=1m")
		// Retries of earlier rounds' tests pause too: enough workers that
		// they never hold up this round's test.
		e.serve("--workers", "16")
		b := e.backup("web")
		points = append(points, b.RecoveryPointID)
		job := e.testOf(b.RecoveryPointID)
		waitFor(t, time.Minute, "restore test "+job.ID+" to reach "+step, func() bool {
			return strings.Contains(e.logText(job.ID), "before "+step+" (VIGIL_TEST_PAUSE)")
		})
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		e.kill()
		phases[phaseOfTests(t, e, job.ID)]++
		os.WriteFile(e.path(fmt.Sprintf("site/round-%02d.txt", round)), []byte("a change to back up\n"), 0o644)
	}
	t.Logf("%d kills, by the step the record of the killed test shows: %v", kills, phases)

	e.env = plain
	e.serve()
	var tests []vigil.RestoreJob
	waitFor(t, 5*time.Minute, "every restore test to end", func() bool {
		e.mustJSON(&tests, "jobs", "list", "--type", "restore")
		return !slices.ContainsFunc(tests, func(j vigil.RestoreJob) bool { return !j.Ended() })
	})
	verdicts := map[vigil.ValidationStatus]int{}
	passed := map[string]bool{}
	for _, j := range tests {
		verdicts[j.ValidationStatus]++
		if j.ValidationStatus == vigil.ValidationSuccessful {
			passed[j.RecoveryPointID] = true
		}
		if j.DeletionStatus != vigil.DeletionSuccessful {
			t.Errorf("test %s: deletion %s (%s)", j.ID, j.DeletionStatus, j.DeletionMessage)
		}
		if j.ValidationStatus == vigil.ValidationFailed || j.ValidationStatus == vigil.ValidationTimedOut {
			t.Errorf("test %s of a good backup: %s (%s)", j.ID, j.ValidationStatus, j.ValidationMessage)
		}
	}
	t.Logf("%d restore tests for %d recovery points: %v", len(tests), len(points), verdicts)
	for _, rp := range points {
		if !passed[rp] {
			t.Errorf("recovery point %s never got a SUCCESSFUL test", rp)
		}
	}
	e.requireNoLeak()
	if left, _ := filepath.Glob(filepath.Join(instance.CgroupScope(e.instancesDir()), "*", "cgroup.procs")); len(left) > 0 {
		t.Errorf("copies' cgroups left: %v", left)
	}
	e.stop()
}

// phaseOfTests reads, with vigil down, the step test id's record shows it
// was in when vigil was killed.
func phaseOfTests(t *testing.T, e *testEnv, id string) string {
	t.Helper()
	cat, err := catalog.Open(context.Background(), "", e.path("vigil-data"))
	if err != nil {
		t.Fatalf("open the catalog: %v", err)
	}
	defer cat.Close()
	j, err := cat.GetRestoreJob(context.Background(), id)
	if err != nil {
		t.Fatalf("read restore test %s: %v", id, err)
	}
	switch {
	case j.Status == vigil.RestorePending:
		return "queued"
	case j.Status == vigil.RestoreRunning:
		return "restore"
	case j.ValidationStatus == vigil.ValidationValidating && j.StartSeconds == 0:
		return "start"
	case j.ValidationStatus == vigil.ValidationValidating:
		return "validation"
	case j.DeletionStatus == vigil.DeletionDeleting:
		return "clean-up"
	default:
		return "after its end"
	}
}
