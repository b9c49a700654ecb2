package main

import (
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/internal/testsvc"
	"github.com/vigil-backup/vigil/treediff"
)

// s3Outage is how long the S3 server is down in TestS3VaultOutage: a
// restart of the service, or a fail-over behind its address.
const s3Outage = 30 * time.Second

// A backup into an S3 vault whose server is killed for 30s mid-upload,
// and a restore started while it is down, wait for the server and
// complete; the vault verifies afterwards and the restore matches the
// source.
func TestS3VaultOutage(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartS3(t)
	e := newEnv(t, envOptions{})
	withS3Vault(t, e, srv, srv.Endpoint)
	// Random data, so that the upload takes seconds and is cut halfway.
	makeLargeTree(t, e.path("docs"), 24, 4<<20)
	e.serve()

	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "offsite")
	waitFor(t, time.Minute, "the backup to upload its first pack", func() bool {
		e.mustJSON(&job, "jobs", "show", job.ID)
		return job.Status == vigil.BackupRunning && packsIn(t, srv) > 0
	})
	srv.Stop()
	time.Sleep(s3Outage)
	srv.Restart(t)
	waitFor(t, 2*time.Minute, "the backup to end", func() bool {
		e.mustJSON(&job, "jobs", "show", job.ID)
		return job.Status.Final()
	})
	if job.Status != vigil.BackupCompleted {
		t.Fatalf("backup through a %s outage of the S3 server = %+v\nlog:\n%s", s3Outage, job, e.logText(job.ID))
	}

	srv.Stop()
	var rj vigil.RestoreJob
	e.mustJSON(&rj, "restore", "start", "--recovery-point", job.RecoveryPointID)
	time.Sleep(s3Outage)
	srv.Restart(t)
	waitFor(t, 2*time.Minute, "the restore to end", func() bool {
		e.mustJSON(&rj, "jobs", "show", rj.ID)
		return rj.Status.Final()
	})
	if rj.Status != vigil.RestoreCompleted {
		t.Fatalf("restore started during a %s outage of the S3 server = %+v\nlog:\n%s", s3Outage, rj, e.logText(rj.ID))
	}
	diffs, err := treediff.Compare(e.path("docs"), rj.CreatedResourceLocation, treediff.Options{ModTimes: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("tree restored after the S3 outage differs: %s", d)
	}

	out := e.mustRun("vault", "verify", "offsite", "--read-data-percent", "100")
	if !strings.Contains(out, "no damage found") {
		t.Errorf("vault verify after the S3 outages: %s", out)
	}
}

// vigil serve started while its S3 vault's server is down for 30s waits
// for it, saying so, and serves once it is back: opening a vault lists
// the bucket, which Kopia does not retry.
func TestS3VaultOutageAtStart(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartS3(t)
	e := newEnv(t, envOptions{})
	withS3Vault(t, e, srv, srv.Endpoint)
	makeTree(t, e.path("docs"))
	e.serve()
	e.stop()

	srv.Stop()
	e.startServer()
	time.Sleep(s3Outage)
	srv.Restart(t)
	e.waitServing(time.Minute)
	if log := e.serverLog.String(); !strings.Contains(log, `S3 bucket \"`+srv.Bucket+`\"`) || !strings.Contains(log, "connection refused; trying again in") {
		t.Errorf("the server's log does not say it waited for the S3 server:\n%s", log)
	}

	var job vigil.BackupJob
	e.mustJSON(&job, "backup", "start", "--resource", "docs", "--vault", "offsite", "--wait")
	if job.Status != vigil.BackupCompleted {
		t.Fatalf("backup after vigil started through an S3 outage = %+v\nlog:\n%s", job, e.logText(job.ID))
	}
	e.mustRun("vault", "verify", "offsite", "--read-data-percent", "100")
}

// packsIn counts the pack blobs, which hold file contents, in the vault
// withS3Vault made.
func packsIn(t *testing.T, srv *testsvc.S3) int {
	t.Helper()
	n := 0
	for o := range srv.Client(t).ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Prefix: "vigil/offsite/p", Recursive: true}) {
		if o.Err == nil {
			n++
		}
	}
	return n
}
