package vault

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3CreateLock is the object a process holds, under the vault's prefix,
// while it creates a new S3 vault. A bucket has no folder to lock, and two
// processes creating one vault at once each write their own repository
// blobs, the later over the earlier, leaving connections that cannot
// decrypt what they read. The lock is taken with a conditional write
// (If-None-Match: *), which only one writer of a missing object wins; AWS
// S3, MinIO and versitygw honour it.
const s3CreateLock = "vigil-create.lock"

// s3CreateLockStale is how old a lock must be for a waiter to count its
// holder dead (it crashed while creating) and take it over: creating a
// vault writes three small objects, in well under a second.
const s3CreateLockStale = 2 * time.Minute

// s3LockPoll is how often a waiter looks whether the lock is free.
const s3LockPoll = 200 * time.Millisecond

// lockS3Creation takes the creation lock of the S3 vault cfg, waiting
// while another process holds it, and returns what releases it. On a
// server that does not implement conditional writes (501), it takes no
// lock: creation there stays racy, and docs/deploy.md says to start one
// process first.
func lockS3Creation(ctx context.Context, cfg Config) (unlock func(), err error) {
	cli, err := minioClient(cfg)
	if err != nil {
		return nil, err
	}
	key := cfg.prefix + s3CreateLock
	host, _ := os.Hostname()
	body := fmt.Appendf(nil, "vigil on host %s, pid %d, creates this vault since %s\n", host, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	for {
		opts := minio.PutObjectOptions{ContentType: "text/plain"}
		opts.SetMatchETagExcept("*")
		_, err := cli.PutObject(ctx, cfg.bucket, key, bytes.NewReader(body), int64(len(body)), opts)
		if err == nil {
			return func() {
				// A lock left by a failed removal is taken over once stale.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				cli.RemoveObject(rctx, cfg.bucket, key, minio.RemoveObjectOptions{}) //nolint:errcheck
			}, nil
		}
		switch resp := minio.ToErrorResponse(err); {
		case resp.StatusCode == http.StatusPreconditionFailed, resp.StatusCode == http.StatusConflict:
			// Another process creates the vault: wait for it, or take a
			// stale lock over.
		case resp.StatusCode == http.StatusNotImplemented:
			return func() {}, nil
		default:
			return nil, &StorageError{Location: fmt.Sprintf("S3 bucket %q at %s", cfg.bucket, cfg.S3.Endpoint), Err: fmt.Errorf("take the lock %s to create the vault: %w", key, err)}
		}
		if info, err := cli.StatObject(ctx, cfg.bucket, key, minio.StatObjectOptions{}); err == nil && time.Since(info.LastModified) > s3CreateLockStale {
			cli.RemoveObject(ctx, cfg.bucket, key, minio.RemoveObjectOptions{}) //nolint:errcheck
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for another process to finish creating the vault (lock %s in bucket %q): %w", key, cfg.bucket, ctx.Err())
		case <-time.After(s3LockPoll):
		}
	}
}

// minioClient is an S3 client for the vault's bucket with the settings and
// keys Kopia's S3 storage uses: the vault's keys, or else the AWS
// environment, credentials file and instance role.
func minioClient(cfg Config) (*minio.Client, error) {
	creds := credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{}})
	if cfg.S3.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.S3.AccessKey, cfg.S3.SecretKey, "")
	}
	transport, err := minio.DefaultTransport(!cfg.S3.Insecure)
	if err != nil {
		return nil, err
	}
	if cfg.S3.CAFile != "" {
		pem, err := os.ReadFile(cfg.S3.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the CA file of the S3 endpoint: %w; check ca_file", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("the CA file of the S3 endpoint holds no PEM certificate; check ca_file")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return minio.New(cfg.S3.Endpoint, &minio.Options{Creds: creds, Secure: !cfg.S3.Insecure, Region: cfg.S3.Region, Transport: transport})
}
