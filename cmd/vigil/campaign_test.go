package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/instance"
)

// TestKillCampaign kills vigil with SIGKILL 30 times at seeded random
// moments of restore tests of an isolated app (python3 -m http.server)
// that each backup starts, restarts it each time, and then checks what a
// crash must never leave: no process of any copy, no folder under
// restore-tests/, no cgroup, no test without a verdict, and a SUCCESSFUL
// test of every recovery point (interrupted tests are ABORTED and tried
// again). It logs where the kills fell.
func TestKillCampaign(t *testing.T) {
	const kills = 30
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
    retry_interrupted: 10
`, pythonApp))
	writeSite(t, e.path("site"))
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (set it in the test to replay a campaign)", seed)
	rng := rand.New(rand.NewPCG(seed, 11))

	phases := map[string]int{}
	var points []string
	for round := range kills {
		e.serve()
		b := e.backup("web")
		points = append(points, b.RecoveryPointID)
		time.Sleep(time.Duration(rng.IntN(700)) * time.Millisecond)
		e.kill()
		phases[phaseOfTests(t, e, round)]++
		os.WriteFile(e.path(fmt.Sprintf("site/round-%02d.txt", round)), []byte("a change to back up\n"), 0o644)
	}
	t.Logf("%d kills, by what the newest restore test was doing: %v", kills, phases)

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

// phaseOfTests reads, with vigil down, what the newest restore test was
// doing when it was killed.
func phaseOfTests(t *testing.T, e *testEnv, round int) string {
	t.Helper()
	cat, err := catalog.Open(context.Background(), "", e.path("vigil-data"))
	if err != nil {
		t.Fatalf("round %d: open the catalog: %v", round, err)
	}
	defer cat.Close()
	jobs, err := cat.ListRestoreJobs(context.Background(), catalog.RestoreJobFilter{RestoreTest: true, Limit: 1})
	if err != nil || len(jobs) == 0 {
		return "no test yet"
	}
	j := jobs[0]
	switch {
	case j.Status == vigil.RestorePending:
		return "queued"
	case j.Status == vigil.RestoreRunning:
		return "restore"
	case j.ValidationStatus == vigil.ValidationValidating:
		return "start or validation"
	case j.DeletionStatus == vigil.DeletionDeleting:
		return "clean-up"
	default:
		return "after its end"
	}
}
