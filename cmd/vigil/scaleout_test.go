package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/api"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/internal/testsvc"
)

// s3VaultYAML is the config of a vault named name in bucket of srv,
// reached at srv's endpoint, its keys in TEST_S3_ACCESS_KEY and
// TEST_S3_SECRET_KEY.
func s3VaultYAML(srv *testsvc.S3, name, bucket string) string {
	return fmt.Sprintf(`  - name: %s
    storage: s3://%s/vigil/%s
    endpoint: %s
    path_style: true
    insecure: true
    access_key_env: TEST_S3_ACCESS_KEY
    secret_key_env: TEST_S3_SECRET_KEY
    password_env: VIGIL_VAULT_PASSWORD
`, name, bucket, name, srv.Endpoint)
}

// TestScaleOutEndToEnd is vigil scaled out as docs/deploy.md describes it:
// `serve --workers 0` and three `vigil worker` processes on PostgreSQL,
// vaults in S3-compatible storage (versitygw). A backup plan backs up 30
// resources of four types (folders, web apps, PostgreSQL and SQLite
// databases) into one bucket and copies each recovery point into a
// second; restore testing plans prove every recovery point and every copy
// restorable. Half-way through, one worker is killed with kill -9.
//
// Every job must reach a final status exactly once; the backups the dead
// worker ran end ABORTED and list no recovery point, every other backup
// COMPLETES with one recovery point and one COMPLETED copy; every recovery
// point and copy gets one SUCCESSFUL restore test (a test the dead worker
// ran ends ABORTED and is retried); when the dead worker's node starts
// again it deletes what it left, so no copy process, folder, cgroup or
// database remains; and both vaults verify with every content read back.
func TestScaleOutEndToEnd(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartS3(t)
	const offsiteBucket = "vigil-offsite"
	if err := srv.Client(t).MakeBucket(t.Context(), offsiteBucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make the second bucket: %v", err)
	}
	dsn, schema, conn := postgresSchema(t)

	// The resources and what each restore test checks.
	var names []string
	var resources strings.Builder
	dir := t.TempDir()
	for i := range 10 {
		name := fmt.Sprintf("folder-%02d", i)
		makeTree(t, filepath.Join(dir, name))
		os.WriteFile(filepath.Join(dir, name, "which.txt"), []byte(name+"\n"), 0o644)
		fmt.Fprintf(&resources, "  - name: %s\n    type: directory\n    path: %s\n", name, filepath.Join(dir, name))
		names = append(names, name)
	}
	for i := range 8 {
		name := fmt.Sprintf("web-%02d", i)
		writeSite(t, filepath.Join(dir, name))
		fmt.Fprintf(&resources, "  - name: %s\n    type: app\n    path: %s\n    run: %s\n    validate:\n      - http: {path: /, expect_body: \"Welcome\"}\n",
			name, filepath.Join(dir, name), pythonApp)
		names = append(names, name)
	}
	admin := sqlDB(t, "pgx", e2ePostgres)
	for i := range 6 {
		name := fmt.Sprintf("pg-%02d", i)
		db := dbName(t, fmt.Sprintf("scaleout%d", i))
		execAll(t, admin, "CREATE DATABASE "+db)
		t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)") })
		rows := 100 * (i + 1)
		pg := sqlDB(t, "pgx", strings.Replace(e2ePostgres, "/test?", "/"+db+"?", 1))
		execAll(t, pg, `CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)`,
			fmt.Sprintf(`INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, %d) n`, rows))
		pg.Close()
		fmt.Fprintf(&resources, "  - name: %s\n    type: postgres\n    dsn: postgres://postgres@127.0.0.1:5432/%s?sslmode=disable\n    validate:\n      - sql: {query: \"select count(*) from items\", expect: \"%d\"}\n",
			name, db, rows)
		names = append(names, name)
	}
	for i := range 6 {
		name := fmt.Sprintf("lite-%02d", i)
		path := filepath.Join(dir, name+".db")
		rows := 50 * (i + 1)
		lite := sqlDB(t, "sqlite", "file:"+path)
		execAll(t, lite, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`,
			fmt.Sprintf(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < %d) INSERT INTO notes (body) SELECT 'note ' || n FROM g`, rows))
		lite.Close()
		fmt.Fprintf(&resources, "  - name: %s\n    type: sqlite\n    path: %s\n    validate:\n      - sql: {query: \"select count(*) from notes\", expect: \"%d\"}\n",
			name, path, rows)
		names = append(names, name)
	}
	if len(names) != 30 {
		t.Fatalf("%d resources, want 30", len(names))
	}

	// The plan fires once, far enough ahead for serve and the workers to
	// be up; it names each field of the time, so it never fires again.
	at := time.Now().UTC().Add(40 * time.Second).Truncate(time.Second)
	e := newEnv(t, envOptions{catalog: dsn, extra: resources.String() + fmt.Sprintf(`backup_plans:
  - name: nightly
    schedule: "%d %d %d %d %d *"
    timezone: UTC
    resources: [%s]
    vault: main
    expire_days: 7
    copy_to: [{vault: offsite, expire_days: 90}]
restore_testing:
  - name: every-backup
    on_backup_completed: true
    resources: ["*"]
    validation_window: 1m
  - name: offsite-proof
    on_backup_completed: true
    resources: ["*"]
    vaults: [offsite]
    validation_window: 1m
node: api-node
workers: {backup: 1, restore_test: 3, heartbeat_timeout: 10s}
`, at.Second(), at.Minute(), at.Hour(), at.Day(), int(at.Month()), strings.Join(names, ", "))})
	t.Cleanup(e.killLeaks)
	cfg := strings.Replace(string(must(os.ReadFile(e.config))), "resources:\n", s3VaultYAML(srv, "main", srv.Bucket)+s3VaultYAML(srv, "offsite", offsiteBucket)+"resources:\n", 1)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "TEST_S3_ACCESS_KEY="+srv.AccessKey, "TEST_S3_SECRET_KEY="+srv.SecretKey)
	nodes := []string{"w1", "w2", "w3"}
	nodeDir := func(node string) string { return e.path("vigil-data/workers/" + node + "/restore-tests") }
	for _, node := range nodes {
		t.Cleanup(func() { killProcessesUnder(nodeDir(node)) })
	}

	e.mustRun("migrate")
	// serve and the workers start at once, and open the two new S3
	// vaults together: one process creates each, the others wait for it.
	workers := map[string]*workerProc{}
	for _, node := range nodes {
		workers[node] = e.startWorker("--node", node)
	}
	e.serve("--workers", "0")
	waitFor(t, 30*time.Second, "serve and three workers to be listed ALIVE", func() bool { return len(e.aliveWorkers()) == 4 })
	if time.Now().After(at) {
		t.Fatalf("serve and the workers took until %s to start, past the plan's one time %s", time.Now().UTC(), at)
	}

	// list returns every job of the run.
	list := func() (backups []vigil.BackupJob, copies []vigil.CopyJob, tests []vigil.RestoreJob) {
		e.mustJSON(&backups, "jobs", "list", "--type", "backup")
		e.mustJSON(&copies, "jobs", "list", "--type", "copy")
		var restores []vigil.RestoreJob
		e.mustJSON(&restores, "jobs", "list", "--type", "restore")
		for _, r := range restores {
			if r.RestoreTest {
				tests = append(tests, r)
			}
		}
		return backups, copies, tests
	}
	// Expected: 30 backups, 30 copies and 60 tests, less what the kill
	// takes away. Half-way is when half the jobs have ended; the worker
	// killed is one that runs a restore test then, and a backup or a
	// copy too if one does.
	var victim string
	var ran map[string][]string // by node: what it runs
	waitFor(t, 5*time.Minute, "half the jobs to end and a worker to run a restore test", func() bool {
		backups, copies, tests := list()
		ended := 0
		ran = map[string][]string{}
		for _, j := range backups {
			if j.Status.Final() {
				ended++
			} else if j.Node != "" {
				ran[j.Node] = append(ran[j.Node], "backup "+j.ID)
			}
		}
		for _, j := range copies {
			if j.Status.Final() {
				ended++
			} else if j.Node != "" {
				ran[j.Node] = append(ran[j.Node], "copy "+j.ID)
			}
		}
		testing := map[string]bool{}
		for _, j := range tests {
			if j.ValidationStatus.Final() {
				ended++
			} else if j.Node != "" {
				testing[j.Node] = true // restoring, starting or validating there
				ran[j.Node] = append(ran[j.Node], "restore test "+j.ID)
			}
		}
		if ended < 60 {
			return false
		}
		victim = ""
		for _, node := range nodes {
			if testing[node] && (victim == "" || len(ran[node]) > len(ran[victim])) {
				victim = node
			}
		}
		return victim != ""
	})
	workers[victim].kill()
	killedAt := time.Now()
	t.Logf("killed worker %s at %s while it ran: %s", victim, killedAt.UTC().Format(time.RFC3339), strings.Join(ran[victim], ", "))

	// Wait until every backup, copy and test of the run has ended.
	var backups []vigil.BackupJob
	var copies []vigil.CopyJob
	var tests []vigil.RestoreJob
	waitFor(t, 5*time.Minute, "every job to end", func() bool {
		backups, copies, tests = list()
		if len(backups) < len(names) {
			return false
		}
		for _, j := range backups {
			if !j.Status.Final() {
				return false
			}
		}
		for _, j := range copies {
			if !j.Status.Final() {
				return false
			}
		}
		tested := map[string]bool{}
		for _, j := range tests {
			if !j.ValidationStatus.Final() {
				return false
			}
			if j.ValidationStatus == vigil.ValidationSuccessful {
				tested[j.RecoveryPointID] = true
			}
		}
		// Every listed recovery point waits for its SUCCESSFUL test, or
		// the test is wrong and its failure shows below.
		var rps []vigil.RecoveryPoint
		e.mustJSON(&rps, "recovery-points", "list")
		for _, rp := range rps {
			if !tested[rp.ID] && !testedBadly(tests, rp.ID) {
				return false
			}
		}
		return true
	})
	t.Logf("every job ended %s after the kill: %d backups, %d copies, %d restore tests", time.Since(killedAt).Round(time.Second), len(backups), len(copies), len(tests))

	// The dead worker's node starts again and deletes what it left.
	workers[victim] = e.startWorker("--node", victim)
	waitFor(t, 2*time.Minute, "no clean-up pending on any node and every test's copy deleted", func() bool {
		var ws []api.Worker
		e.mustJSON(&ws, "workers", "list")
		for _, w := range ws {
			if len(w.PendingCleanup) > 0 {
				return false
			}
		}
		_, _, tests = list()
		for _, j := range tests {
			if j.DeletionStatus != vigil.DeletionSuccessful {
				return false
			}
		}
		return true
	})

	var rps []vigil.RecoveryPoint
	e.mustJSON(&rps, "recovery-points", "list")
	finals := finalEvents(e)
	rpsOf := map[string][]vigil.RecoveryPoint{} // by backup or copy job
	for _, rp := range rps {
		id := rp.BackupJobID
		if rp.CopyJobID != "" {
			id = rp.CopyJobID
		}
		rpsOf[id] = append(rpsOf[id], rp)
	}

	aborted := 0
	completed := map[string]vigil.BackupJob{} // by recovery point
	for _, j := range backups {
		if finals[j.ID] != 1 {
			t.Errorf("backup %s (%s) has %d final events, want 1", j.ID, j.Resource, finals[j.ID])
		}
		switch {
		case j.CreatedBy != "nightly":
			t.Errorf("backup %s of %s was started by %q, want only the plan's", j.ID, j.Resource, j.CreatedBy)
		case j.Status == vigil.BackupCompleted:
			if len(rpsOf[j.ID]) != 1 || rpsOf[j.ID][0].ID != j.RecoveryPointID || rpsOf[j.ID][0].Vault != "main" {
				t.Errorf("backup %s of %s has recovery points %+v, want its one, in main", j.ID, j.Resource, rpsOf[j.ID])
			}
			completed[j.RecoveryPointID] = j
		case j.Status == vigil.BackupAborted && j.Node == victim && strings.Contains(j.StatusMessage, "counted dead"):
			aborted++
			if len(rpsOf[j.ID]) != 0 {
				t.Errorf("backup %s, aborted with its worker, lists recovery points %+v", j.ID, rpsOf[j.ID])
			}
		default:
			t.Errorf("backup %s of %s ended %s %q on %s; want COMPLETED, or ABORTED on the killed worker %s\nlog:\n%s",
				j.ID, j.Resource, j.Status, j.StatusMessage, j.Node, victim, e.logText(j.ID))
		}
	}
	if len(backups) != len(names) {
		t.Errorf("%d backups ran, want one per resource: %d", len(backups), len(names))
	}
	t.Logf("%d backups COMPLETED, %d ABORTED with the killed worker", len(completed), aborted)

	copyOf := map[string]vigil.CopyJob{} // by source recovery point
	for _, j := range copies {
		if finals[j.ID] != 1 {
			t.Errorf("copy job %s has %d final events, want 1", j.ID, finals[j.ID])
		}
		if _, dup := copyOf[j.SourceRecoveryPointID]; dup {
			t.Errorf("recovery point %s has two copy jobs", j.SourceRecoveryPointID)
		}
		copyOf[j.SourceRecoveryPointID] = j
		if j.Status != vigil.BackupCompleted || j.Vault != "offsite" || len(rpsOf[j.ID]) != 1 || rpsOf[j.ID][0].Vault != "offsite" {
			t.Errorf("copy job %s of %s ended %s %q with recovery points %+v; want COMPLETED, one copy in offsite\nlog:\n%s",
				j.ID, j.SourceRecoveryPointID, j.Status, j.StatusMessage, rpsOf[j.ID], e.logText(j.ID))
		}
	}
	for rp := range completed {
		if _, ok := copyOf[rp]; !ok {
			t.Errorf("recovery point %s has no copy job", rp)
		}
	}

	testsOf := map[string][]vigil.RestoreJob{}
	for _, j := range tests {
		testsOf[j.RecoveryPointID] = append(testsOf[j.RecoveryPointID], j)
		if finals[j.ID] != 1 {
			t.Errorf("restore test %s has %d RESTORE_TEST_STATUS events, want 1", j.ID, finals[j.ID])
		}
	}
	if want := 2 * len(completed); len(rps) != want {
		t.Errorf("%d recovery points listed, want %d: one per completed backup and one copy of each", len(rps), want)
	}
	abortedTests := 0
	for _, rp := range rps {
		successful := 0
		for _, j := range testsOf[rp.ID] {
			switch {
			case j.ValidationStatus == vigil.ValidationSuccessful:
				successful++
			case j.ValidationStatus == vigil.ValidationAborted && j.Node == victim && strings.Contains(j.ValidationMessage, "counted dead"):
				abortedTests++
			default:
				t.Errorf("restore test %s of %s (%s, vault %s) ended %s %q on %s; want SUCCESSFUL, or ABORTED on the killed worker\nlog:\n%s",
					j.ID, rp.ID, rp.Resource, rp.Vault, j.ValidationStatus, j.ValidationMessage, j.Node, e.logText(j.ID))
			}
		}
		if successful != 1 {
			t.Errorf("recovery point %s (%s, vault %s) has %d SUCCESSFUL restore tests, want 1: %+v", rp.ID, rp.Resource, rp.Vault, successful, testsOf[rp.ID])
		}
	}
	t.Logf("%d restore tests, %d of them ABORTED with the killed worker and tested again", len(tests), abortedTests)
	if aborted+abortedTests == 0 {
		t.Errorf("the kill of %s ended none of its jobs: the test proved nothing about a worker's death", victim)
	}

	// Nothing is left: no copy process, folder or cgroup on any node, and
	// no database made for a test.
	for _, node := range append(nodes, "") {
		d := nodeDir(node)
		if node == "" {
			d = e.instancesDir()
		}
		if procs := processesUnder(d); len(procs) > 0 {
			t.Errorf("processes of copies left under %s: %v", d, procs)
		}
		if left, _ := os.ReadDir(d); len(left) > 0 {
			var what []string
			for _, l := range left {
				filepath.Walk(filepath.Join(d, l.Name()), func(p string, info os.FileInfo, err error) error {
					if err == nil {
						what = append(what, fmt.Sprintf("%s (%s, %d bytes)", strings.TrimPrefix(p, d+"/"), info.Mode(), info.Size()))
					}
					return nil
				})
				var j vigil.RestoreJob
				e.mustJSON(&j, "jobs", "show", l.Name())
				what = append(what, fmt.Sprintf("  %s of %s: %s %s, deletion %s %q; log:\n%s", j.ID, j.Resource, j.Status, j.ValidationStatus, j.DeletionStatus, j.DeletionMessage, e.logText(j.ID)))
			}
			t.Errorf("copy folders left under %s:\n%s", d, strings.Join(what, "\n"))
		}
		if left, _ := filepath.Glob(filepath.Join(instance.CgroupScope(d), "*", "cgroup.procs")); len(left) > 0 {
			t.Errorf("copies' cgroups left for %s: %v", d, left)
		}
	}
	var leftDBs []string
	rows, err := admin.Query(`SELECT datname FROM pg_database WHERE datname LIKE 'vigil_restore_%'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		rows.Scan(&name)
		for _, j := range tests {
			if strings.Contains(name, strings.ReplaceAll(strings.ToLower(j.ID), "-", "_")) || strings.Contains(name, j.ID) {
				leftDBs = append(leftDBs, name)
			}
		}
	}
	rows.Close()
	if len(leftDBs) > 0 {
		t.Errorf("databases of restore tests left: %v", leftDBs)
	}

	// No River job of the run is left to run, or stuck as running.
	var stuck int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+schema+`.river_job
		WHERE kind IN ('vigil.backup', 'vigil.copy', 'vigil.restore-test') AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&stuck); err != nil || stuck != 0 {
		t.Errorf("%d River jobs of backups, copies and restore tests are not finished (%v)", stuck, err)
	}

	for _, v := range []string{"main", "offsite"} {
		if out := e.mustRun("vault", "verify", v, "--read-data-percent", "100"); !strings.Contains(out, "no damage found") || !strings.Contains(out, "all file contents (") {
			t.Errorf("vault verify %s: %s", v, out)
		}
	}
	for _, node := range nodes {
		workers[node].stop(t)
	}
	e.stop()
}

// testedBadly reports whether recovery point rp has a restore test that
// ended with a verdict other than SUCCESSFUL and was not retried: the
// checks after the wait report it.
func testedBadly(tests []vigil.RestoreJob, rp string) bool {
	for _, j := range tests {
		if j.RecoveryPointID == rp && j.ValidationStatus.Final() && j.ValidationStatus != vigil.ValidationSuccessful && j.ValidationStatus != vigil.ValidationAborted {
			return true
		}
	}
	return false
}

// finalEvents counts, by job, the events that end a backup, copy or
// restore test.
func finalEvents(e *testEnv) map[string]int {
	e.t.Helper()
	var page api.EventPage
	e.mustJSON(&page, "events", "list", "--limit", "100000")
	out := map[string]int{}
	for _, ev := range page.Events {
		switch ev.Type {
		case vigil.EventBackupJobCompleted, vigil.EventBackupJobFailed, vigil.EventCopyJobCompleted, vigil.EventCopyJobFailed, vigil.EventRestoreTestStatus:
			out[ev.JobID]++
		}
	}
	return out
}

// killProcessesUnder ends any process a failed test left under dir.
func killProcessesUnder(dir string) {
	for _, p := range processesUnder(dir) {
		var pid int
		fmt.Sscan(strings.Fields(p)[0], &pid)
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
