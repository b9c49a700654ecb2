package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil/internal/testsvc"
)

// setupS3 is setup on a vault in a bucket of a fresh versitygw, under a
// prefix, as a vault shared with other data would be.
func setupS3(t *testing.T, modify ...func(*Config)) (*testBundle, *testsvc.S3) {
	t.Helper()

	srv := testsvc.StartS3(t)

	return setup(t, append([]func(*Config){func(c *Config) {
		c.Storage = "s3://" + srv.Bucket + "/vaults/test"
		c.S3 = S3{Endpoint: srv.Endpoint, Insecure: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	}}, modify...)...), srv
}

// objects lists the names of the objects under the vault's prefix.
func objects(t *testing.T, srv *testsvc.S3) []string {
	t.Helper()

	var names []string

	for o := range srv.Client(t).ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Prefix: "vaults/test/", Recursive: true}) {
		must(t, o.Err)
		names = append(names, strings.TrimPrefix(o.Key, "vaults/test/"))
	}

	return names
}

// Everything a folder vault does, an S3 vault does: create, back up,
// restore, verify, maintain, and repair after damage, and a second Open
// finds the vault rather than creating one.
func TestS3VaultBackupRestoreVerifyRepair(t *testing.T) {
	t.Parallel()

	b, srv := setupS3(t)

	if names := objects(t, srv); !slices.Contains(names, "kopia.repository") {
		t.Fatalf("the bucket holds %v under the prefix, want kopia's repository blob", names)
	}

	source := t.TempDir()
	makeTree(t, source)
	first := b.backup(t, source, "files")

	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := b.vault.Restore(t.Context(), first.SnapshotID, restored, nil); err != nil {
		t.Fatalf("restore from the S3 vault: %v", err)
	}

	compareTrees(t, source, restored)

	if res, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Fatalf("verify the S3 vault: %v (%+v)", err, res.Errors)
	}

	if err := b.vault.Maintain(t.Context(), true); err != nil {
		t.Fatalf("maintain the S3 vault: %v", err)
	}

	// a second process opens the same bucket and sees the snapshot
	again, err := Open(t.Context(), Config{Name: "test", Storage: b.cfg.Storage, S3: b.cfg.S3, Password: testPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open the S3 vault again: %v", err)
	}

	list, err := again.Snapshots(t.Context())
	must(t, err)
	must(t, again.Close(context.Background()))

	if len(list) != 1 || list[0].ID != first.SnapshotID {
		t.Fatalf("the reopened S3 vault lists %+v, want snapshot %s", list, first.SnapshotID)
	}

	// damage: a pack object goes missing from the bucket
	var pack string

	for _, n := range objects(t, srv) {
		if strings.HasPrefix(n, "p") {
			pack = n
		}
	}

	if pack == "" {
		t.Fatal("the S3 vault holds no pack object after a backup")
	}

	must(t, srv.Client(t).RemoveObject(t.Context(), srv.Bucket, "vaults/test/"+pack, minio.RemoveObjectOptions{}))

	if _, err := b.vault.Verify(t.Context(), 100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify with a pack missing from the bucket: got %v, want ErrCorrupt", err)
	}

	rep, err := b.vault.Repair(t.Context())
	if err != nil {
		t.Fatalf("repair the S3 vault: %v", err)
	}

	if rep.DamagedContents == 0 || len(rep.Snapshots) != 1 {
		t.Fatalf("repair result %+v, want damaged contents dropped and the snapshot rewritten", rep)
	}

	second := b.backup(t, source, "files")

	if res, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Fatalf("verify after repair and a new backup: %v (%+v)", err, res.Errors)
	}

	restored2 := filepath.Join(t.TempDir(), "restored2")
	if _, err := b.vault.Restore(t.Context(), second.SnapshotID, restored2, nil); err != nil {
		t.Fatalf("restore the backup made after repair: %v", err)
	}

	compareTrees(t, source, restored2)

	// expiry: the snapshots are deleted, and maintenance gives their space
	// in the bucket back
	before := bucketBytes(t, srv)

	for _, snap := range b.snapshots(t) {
		must(t, b.vault.DeleteSnapshot(t.Context(), snap.ID))
	}

	if err := b.vault.Maintain(t.Context(), true); err != nil {
		t.Fatalf("maintain the S3 vault after expiry: %v", err)
	}

	if after := bucketBytes(t, srv); after > before/4 {
		t.Errorf("the bucket holds %d bytes after expiry and maintenance, was %d: the expired data was not given back", after, before)
	}

	if res, err := b.vault.Verify(t.Context(), 100); err != nil || res.Snapshots != 0 {
		t.Fatalf("verify after expiry: %v, %d snapshots, want none", err, res.Snapshots)
	}
}

// bucketBytes is the size of the objects under the vault's prefix.
func bucketBytes(t *testing.T, srv *testsvc.S3) int64 {
	t.Helper()

	var total int64

	for o := range srv.Client(t).ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Prefix: "vaults/test/", Recursive: true}) {
		must(t, o.Err)
		total += o.Size
	}

	return total
}

// A bucket or prefix holding other data is refused and left as it was, and
// a missing bucket fails naming it.
func TestS3VaultRefusesForeignDataAndNamesAMissingBucket(t *testing.T) {
	t.Parallel()

	srv := testsvc.StartS3(t)
	s3cfg := S3{Endpoint: srv.Endpoint, Insecure: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}

	_, err := srv.Client(t).PutObject(t.Context(), srv.Bucket, "other/report.pdf", strings.NewReader("not a vault"), 11, minio.PutObjectOptions{})
	must(t, err)

	_, err = Open(t.Context(), Config{Name: "v", Storage: "s3://" + srv.Bucket + "/other", S3: s3cfg, Password: testPassword, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "report.pdf") || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("open on a prefix with other data: got %v, want a refusal naming report.pdf", err)
	}

	var keys []string
	for o := range srv.Client(t).ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		keys = append(keys, o.Key)
	}

	if !slices.Equal(keys, []string{"other/report.pdf"}) {
		t.Errorf("the refused open left %v in the bucket, want only other/report.pdf", keys)
	}

	err = Check(t.Context(), Config{Name: "v", Storage: "s3://no-such-bucket/x", S3: s3cfg, Password: testPassword, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Fatalf("check of a missing bucket: got %v, want an error naming the bucket", err)
	}
}

// The stock kopia CLI connects to an S3 vault with `kopia repository
// connect s3` and reads what vigil wrote.
func TestStockKopiaCLIReadsS3Vault(t *testing.T) {
	t.Parallel()

	b, srv := setupS3(t)
	source := filepath.Join(t.TempDir(), "src")
	makeTree(t, source)
	res := b.backup(t, source, "files")

	k := &kopiaCLI{t: t, binary: stockKopia(t), home: t.TempDir()}
	k.run("repository", "connect", "s3", "--bucket", srv.Bucket, "--prefix", "vaults/test/",
		"--endpoint", srv.Endpoint, "--disable-tls", "--access-key", srv.AccessKey, "--secret-access-key", srv.SecretKey,
		"--cache-directory", filepath.Join(k.home, "cache"))

	var listed []cliSnapshot
	must(t, json.Unmarshal(k.run("snapshot", "list", "--all", "--json"), &listed))

	if len(listed) != 1 || listed[0].ID != res.SnapshotID {
		t.Fatalf("stock CLI lists %+v, want snapshot %s", listed, res.SnapshotID)
	}

	target := filepath.Join(t.TempDir(), "restored")
	k.run("snapshot", "restore", res.SnapshotID, target)
	compareTreesExcept(t, source, target, true)
	k.run("snapshot", "verify", "--verify-files-percent=100")
}

// The S3 keys are held in the process only: no file vigil writes, in the
// cache folder or the bucket, holds them.
func TestS3KeysStayOutOfFiles(t *testing.T) {
	t.Parallel()

	b, srv := setupS3(t)
	source := t.TempDir()
	makeTree(t, source)
	b.backup(t, source, "files")

	if res, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Fatalf("verify: %v (%+v)", err, res.Errors)
	}

	files := 0
	must(t, filepath.WalkDir(b.cfg.CacheDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}

		files++
		body, err := os.ReadFile(p)
		must(t, err)

		if strings.Contains(string(body), srv.SecretKey) || strings.Contains(string(body), srv.AccessKey) {
			t.Errorf("%s holds an S3 key", p)
		}

		return nil
	}))

	if files == 0 {
		t.Fatal("the cache folder holds no connection config")
	}

	for o := range srv.Client(t).ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		obj, err := srv.Client(t).GetObject(t.Context(), srv.Bucket, o.Key, minio.GetObjectOptions{})
		must(t, err)
		body, err := io.ReadAll(obj)
		must(t, err)

		if strings.Contains(string(body), srv.SecretKey) {
			t.Errorf("object %s holds the S3 secret key", o.Key)
		}
	}
}

// An S3 endpoint whose certificate a private CA signed is reached with
// that CA's certificate (ca_file), and refused without it.
func TestS3VaultWithPrivateCA(t *testing.T) {
	t.Parallel()

	srv := testsvc.StartS3TLS(t)
	cfg := Config{
		Name:     "tls",
		Storage:  "s3://" + srv.Bucket + "/tls",
		S3:       S3{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey},
		Password: testPassword,
		CacheDir: t.TempDir(),
	}

	_, err := Open(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("open over TLS without the CA: got %v, want a certificate error that points at ca_file", err)
	}

	cfg.S3.CAFile = srv.CAFile
	b := setup(t, func(c *Config) { *c = cfg })
	source := t.TempDir()
	makeTree(t, source)
	b.backup(t, source, "files")

	if res, err := b.vault.Verify(t.Context(), 100); err != nil {
		t.Fatalf("verify over TLS: %v (%+v)", err, res.Errors)
	}
}

// Opening an S3 vault while its server is down waits for the server, for
// retry_for, telling the storage log each wait; a missing bucket, which no
// wait mends, fails at once.
func TestS3VaultOpenWaitsForItsServer(t *testing.T) {
	t.Parallel()

	b, srv := setupS3(t)
	must(t, b.vault.Close(t.Context()))

	cfg := b.cfg
	cfg.CacheDir = t.TempDir()
	cfg.S3.RetryFor = time.Minute

	var (
		mu    sync.Mutex
		lines []string
	)

	ctx := WithStorageLog(t.Context(), func(line string) {
		mu.Lock()
		defer mu.Unlock()

		lines = append(lines, line)
	})

	srv.Stop()

	opened := make(chan error, 1)

	go func() {
		v, err := Open(ctx, cfg)
		if err == nil {
			err = v.Close(context.Background())
		}
		opened <- err
	}()

	time.Sleep(10 * time.Second)
	srv.Restart(t)

	if err := <-opened; err != nil {
		t.Fatalf("open through a 10s outage of the S3 server: %v", err)
	}

	mu.Lock()
	logged := slices.Clone(lines)
	mu.Unlock()

	if len(logged) == 0 || !strings.Contains(logged[0], `S3 bucket "`+srv.Bucket+`"`) || !strings.Contains(logged[0], "connection refused; trying again in 1s") {
		t.Errorf("storage log of the open = %q, want the waits, naming the bucket and the error", logged)
	}

	lines = nil
	start := time.Now()
	cfg.Storage = "s3://no-such-bucket/x"
	err := Check(ctx, cfg)

	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Fatalf("check of a missing bucket: got %v, want an error naming the bucket", err)
	}

	if len(lines) > 0 || time.Since(start) > 20*time.Second {
		t.Errorf("check of a missing bucket waited %s and logged %q, want no wait: no retry mends a missing bucket", time.Since(start), lines)
	}
}

func TestS3Transient(t *testing.T) {
	t.Parallel()

	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/b", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	reset := &url.Error{Op: "Put", URL: "http://127.0.0.1:1/b/k", Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"connection refused after kopia's retries", fmt.Errorf("unable to complete GetBlob(x) despite 10 retries: %w", refused), true},
		{"connection reset", reset, true},
		{"cut mid-answer", fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), true},
		{"timeout", &url.Error{Op: "Get", URL: "http://h/b", Err: timeoutError{}}, true},
		{"internal error", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, true},
		{"service unavailable", minio.ErrorResponse{Code: "ServiceUnavailable", StatusCode: 503}, true},
		{"slow down", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, true},
		{"too many requests", minio.ErrorResponse{Code: "TooManyRequests", StatusCode: 429}, true},
		{"access denied", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, false},
		{"no such bucket", minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}, false},
		{"bad request", minio.ErrorResponse{Code: "InvalidArgument", StatusCode: 400}, false},
		{"invalid credentials", blob.ErrInvalidCredentials, false},
		{"no such blob", blob.ErrBlobNotFound, false},
		{"cancelled", context.Canceled, false},
		{"unknown host", &url.Error{Op: "Get", URL: "http://nowhere/b", Err: &net.DNSError{Err: "no such host", Name: "nowhere", IsNotFound: true}}, false},
		{"anything else", errors.New("bucket name must be specified"), false},
	}
	for _, tt := range tests {
		if got := transient(tt.err); got != tt.want {
			t.Errorf("transient(%s: %v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
