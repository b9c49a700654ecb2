package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/kopia/kopia/repo/format"
	"github.com/minio/minio-go/v7"
)

// S3 says how to reach the bucket of an S3 vault, one whose Storage is
// s3://bucket/prefix. The blobs are Kopia's own, written by Kopia's S3
// storage, so the stock CLI opens the bucket with `kopia repository
// connect s3`.
type S3 struct {
	// Endpoint is host[:port] of the S3 service; s3.amazonaws.com when empty.
	Endpoint string
	// Region is passed in the requests' signatures; most services other
	// than AWS ignore it.
	Region string
	// Insecure talks plain HTTP to the endpoint, for a test server on
	// loopback. Never set by default.
	Insecure bool
	// CAFile is a PEM file with the certificate of a private CA that signed
	// the endpoint's certificate.
	CAFile string
	// AccessKey and SecretKey are the credentials. When both are empty,
	// Kopia looks for AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and then
	// an instance role.
	AccessKey, SecretKey string
	// RetryFor is how long vigil goes on trying a request again, from its
	// first attempt, while it fails in a way that passes (see transient):
	// long enough to ride out a restart of the S3 service. Zero leaves only
	// the retries of Kopia and of the S3 client (see s3Storage).
	RetryFor time.Duration
}

// s3StorageType names vigil's flavour of Kopia's S3 storage in the private
// connection config: the same blobs in the same places, with errors that
// name the bucket.
const s3StorageType = "vigil-s3"

// defaultS3Endpoint is AWS's, as for the stock CLI.
const defaultS3Endpoint = "s3.amazonaws.com"

// s3BlobsLeftByCreation are the blobs a creation that stopped before writing
// the repository blob leaves in an S3 vault: Kopia's blob configuration and
// its S3 storage configuration.
// The creation lock is in the list too: it is there while a creation runs.
var s3BlobsLeftByCreation = []blob.ID{format.KopiaBlobCfgBlobID, s3.ConfigName, s3CreateLock}

// isS3 reports whether storage names an S3 vault.
func isS3(storage string) bool {
	scheme, _, ok := strings.Cut(storage, "://")
	return ok && strings.EqualFold(scheme, "s3")
}

// normalizeS3 checks an S3 vault's Storage and S3 settings and brings the
// prefix to Kopia's form, which ends in a slash.
func (cfg *Config) normalizeS3() error {
	_, rest, _ := strings.Cut(cfg.Storage, "://")
	bucket, prefix, _ := strings.Cut(rest, "/")

	if bucket == "" {
		return fmt.Errorf("open vault %q: storage %s names no bucket; write it as s3://bucket or s3://bucket/prefix", cfg.Name, cfg.Storage)
	}

	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}

	if cfg.S3.Endpoint == "" {
		cfg.S3.Endpoint = defaultS3Endpoint
	}

	if strings.Contains(cfg.S3.Endpoint, "://") || strings.Contains(cfg.S3.Endpoint, "/") {
		return fmt.Errorf("open vault %q: S3 endpoint %q must be host or host:port, without a scheme or path; set insecure for plain HTTP", cfg.Name, cfg.S3.Endpoint)
	}

	if (cfg.S3.AccessKey == "") != (cfg.S3.SecretKey == "") {
		return fmt.Errorf("open vault %q: S3 vault has only one of its access key and secret key; give both, or neither to use the AWS environment or instance role", cfg.Name)
	}

	cfg.Storage = "s3://" + bucket + "/" + prefix
	cfg.bucket, cfg.prefix = bucket, prefix

	return nil
}

// s3Options are the options of Kopia's S3 storage for the vault, without
// its keys, which openS3 and the connection config pass through s3Keys.
func s3Options(cfg Config) (*s3.Options, error) {
	opts := &s3.Options{
		BucketName:  cfg.bucket,
		Prefix:      cfg.prefix,
		Endpoint:    cfg.S3.Endpoint,
		DoNotUseTLS: cfg.S3.Insecure,
		Region:      cfg.S3.Region,
	}

	if cfg.S3.CAFile != "" {
		ca, err := os.ReadFile(cfg.S3.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the CA file of the S3 endpoint: %w; check ca_file", err)
		}

		opts.RootCA = ca
	}

	return opts, nil
}

var registerS3Once sync.Once

// registerS3Storage adds vigil's S3 storage type to kopia's registry.
func registerS3Storage() {
	registerS3Once.Do(func() {
		blob.AddSupportedStorage(s3StorageType, s3.Options{}, newS3Storage)
	})
}

// s3Storage is Kopia's S3 storage whose errors name the bucket, so that a
// job that fails says where, and which tries a request again for
// RetryFor while it fails in a way that passes.
//
// Under it, Kopia tries every read, write and delete 10 times and the S3
// client (minio-go) tries each of those 10 times, with back-off: against
// a refused connection that is about 50s before a read or write fails, but
// a listing, which Kopia does not retry, fails after the client's few
// seconds. The retries here bound the whole by one setting, and give
// listings, which every open and every index refresh makes, the same time.
type s3Storage struct {
	blob.Storage

	opts     s3.Options
	retryFor time.Duration
}

func newS3Storage(ctx context.Context, opts *s3.Options, isCreate bool) (blob.Storage, error) {
	// The connection config names the bucket but not the keys: they are
	// held in this process only (see s3Keys).
	withKeys := *opts

	var settings S3
	if k, ok := s3Keys.Load(s3KeysID(*opts)); ok {
		settings = k.(S3) //nolint:forcetypeassert
		if withKeys.AccessKeyID == "" {
			withKeys.AccessKeyID, withKeys.SecretAccessKey = settings.AccessKey, settings.SecretKey
		}
	}

	bare := *opts
	bare.AccessKeyID, bare.SecretAccessKey, bare.SessionToken = "", "", ""
	st := &s3Storage{opts: bare, retryFor: settings.RetryFor}

	// s3.New reads the bucket's storage config, so an outage at open is
	// ridden out like one later.
	err := st.retry(ctx, "open", func() error {
		inner, err := s3.New(ctx, &withKeys, isCreate)
		st.Storage = inner

		return err
	})
	if err != nil {
		return nil, err
	}

	return st, nil
}

// s3Keys holds the S3 keys of the vaults this process opened, by bucket,
// so that they never reach a file: Kopia turns the connection config on
// disk into storage through newS3Storage, which takes the keys from here.
var s3Keys sync.Map // s3KeysID → S3

func s3KeysID(opts s3.Options) string {
	return opts.Endpoint + "\x00" + opts.BucketName + "\x00" + opts.Prefix
}

func s3Location(opts s3.Options) string {
	return fmt.Sprintf("S3 bucket %q at %s", opts.BucketName, opts.Endpoint)
}

func (s *s3Storage) ConnectionInfo() blob.ConnectionInfo {
	opts := s.opts
	return blob.ConnectionInfo{Type: s3StorageType, Config: &opts}
}

// annotate wraps a failure of the storage; the answers Kopia acts on (no
// such blob, and the like) are passed on as they are.
func (s *s3Storage) annotate(err error) error {
	if err == nil || kopiaAnswer(err) {
		return err
	}

	return &StorageError{Location: s3Location(s.opts), Err: err}
}

// kopiaAnswer reports whether err is an answer of the storage that Kopia
// acts on, rather than a failure.
func kopiaAnswer(err error) bool {
	return errors.Is(err, blob.ErrBlobNotFound) ||
		errors.Is(err, blob.ErrInvalidRange) ||
		errors.Is(err, blob.ErrBlobAlreadyExists) ||
		errors.Is(err, blob.ErrSetTimeUnsupported) ||
		errors.Is(err, blob.ErrUnsupportedPutBlobOption) ||
		errors.Is(err, context.Canceled)
}

// GetBlob serves a range of a pack from the context's packCache when it has
// one (see withPackCache), and reads it from the bucket otherwise.
func (s *s3Storage) GetBlob(ctx context.Context, id blob.ID, offset, length int64, output blob.OutputBuffer) error {
	if c := packCacheFrom(ctx); c != nil {
		if served, err := c.read(ctx, s3KeysID(s.opts), id, offset, length, output, s.getWhole); served {
			return err
		}
	}

	return s.retry(ctx, "read "+string(id), func() error {
		output.Reset()
		return s.Storage.GetBlob(ctx, id, offset, length, output)
	})
}

// getWhole reads all of blob id, for a packCache.
func (s *s3Storage) getWhole(ctx context.Context, id blob.ID) ([]byte, error) {
	var buf wholeBuffer

	err := s.retry(ctx, "read "+string(id)+" whole", func() error {
		buf.Reset()
		return s.Storage.GetBlob(ctx, id, 0, -1, &buf)
	})
	if err != nil {
		return nil, err
	}

	return buf.Bytes(), nil
}

func (s *s3Storage) GetMetadata(ctx context.Context, id blob.ID) (blob.Metadata, error) {
	var m blob.Metadata

	err := s.retry(ctx, "read the metadata of "+string(id), func() error {
		var err error
		m, err = s.Storage.GetMetadata(ctx, id)

		return err
	})

	return m, err
}

func (s *s3Storage) PutBlob(ctx context.Context, id blob.ID, data blob.Bytes, opts blob.PutOptions) error {
	return s.retry(ctx, "write "+string(id), func() error {
		return s.Storage.PutBlob(ctx, id, data, opts)
	})
}

func (s *s3Storage) DeleteBlob(ctx context.Context, id blob.ID) error {
	return s.retry(ctx, "delete "+string(id), func() error {
		return s.Storage.DeleteBlob(ctx, id)
	})
}

// ListBlobs tries a listing again only while it has given cb nothing:
// Kopia's callers collect what they are given, and a listing started
// again would give them the first blobs twice. A listing fails on its
// first request when the service is down, so that is when it is retried.
func (s *s3Storage) ListBlobs(ctx context.Context, prefix blob.ID, cb func(blob.Metadata) error) error {
	var delivered, cbFailed bool

	return s.retry(ctx, "list "+string(prefix)+"*", func() error {
		err := s.Storage.ListBlobs(ctx, prefix, func(m blob.Metadata) error {
			delivered = true
			if err := cb(m); err != nil {
				cbFailed = true
				return err
			}

			return nil
		})
		if err != nil && (delivered || cbFailed) {
			return &finalError{err}
		}

		return err
	})
}

// finalError is a failure that retry passes on without trying again.
type finalError struct{ error }

func (e *finalError) Unwrap() error { return e.error }

// s3RetryFirstWait and s3RetryMaxWait bound the waits between vigil's
// tries: the first is short for a dropped connection, and the longest
// keeps a restarted service from waiting long for the next try.
const (
	s3RetryFirstWait = time.Second
	s3RetryMaxWait   = 15 * time.Second
)

// retry runs op until it succeeds, fails in a way that does not pass, or
// fails past s.retryFor after its first attempt, waiting twice as long
// after each failure up to s3RetryMaxWait. Each wait is told to the
// context's storage log (WithStorageLog). The error returned is
// annotated.
func (s *s3Storage) retry(ctx context.Context, what string, op func() error) error {
	start := time.Now()
	wait := s3RetryFirstWait

	for {
		err := op()
		if f := (*finalError)(nil); errors.As(err, &f) {
			return s.annotate(f.error)
		}

		if err == nil || !transient(err) {
			return s.annotate(err)
		}

		left := s.retryFor - time.Since(start)
		if left <= 0 || ctx.Err() != nil {
			return s.annotate(err)
		}

		wait = min(wait, left)
		storageLog(ctx, fmt.Sprintf("%s: %s failed: %v; trying again in %s (for up to %s after the first try, as retry_for says)",
			s3Location(s.opts), what, err, wait.Round(100*time.Millisecond), s.retryFor))

		select {
		case <-ctx.Done():
			return s.annotate(err)
		case <-time.After(wait):
		}

		wait = min(2*wait, s3RetryMaxWait)
	}
}

// transient reports whether a failure of an S3 request may pass by
// itself: the service could not be reached or cut the connection, timed
// out, failed (5xx) or asked to slow down. Refusals that stay until a
// person acts (access denied, no such bucket, bad request) are not, and
// neither are Kopia's answers, an unknown host or a bad certificate.
func transient(err error) bool {
	if kopiaAnswer(err) || errors.Is(err, blob.ErrInvalidCredentials) {
		return false
	}

	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "SlowDown", "SlowDownRead", "SlowDownWrite", "RequestTimeout", "Throttling", "ThrottlingException",
			"RequestLimitExceeded", "RequestThrottled", "InternalError", "ServiceUnavailable":
			return true
		}

		return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
	}

	var ne net.Error

	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		(errors.As(err, &ne) && ne.Timeout())
}

type storageLogKey struct{}

// WithStorageLog returns a context whose storage requests tell log, once
// each, when they wait to try a failed request again: a job passes its
// own log, so that a slow job says why it is slow.
func WithStorageLog(ctx context.Context, log func(line string)) context.Context {
	return context.WithValue(ctx, storageLogKey{}, log)
}

// withoutStorageLog is ctx without its storage log, for calls into Kopia
// that may keep the context past the job, such as opening the repository.
func withoutStorageLog(ctx context.Context) context.Context {
	return context.WithValue(ctx, storageLogKey{}, (func(string))(nil))
}

func storageLog(ctx context.Context, line string) {
	if log, ok := ctx.Value(storageLogKey{}).(func(string)); ok && log != nil {
		log(line)
	}
}

// StorageError is a failure of a vault's storage that the retries (the S3
// client's, Kopia's and s3Storage's) did not overcome: the S3 service
// answered an error, or could not be reached.
type StorageError struct {
	Location string // such as `S3 bucket "b" at host:9000`
	Err      error
}

func (e *StorageError) Error() string {
	return fmt.Sprintf("%s: %v", e.Location, e.Err)
}

func (e *StorageError) Unwrap() error { return e.Err }

// storageFailed reports whether err is a failure of the vault's storage.
func storageFailed(err error) bool {
	var se *StorageError
	return errors.As(err, &se)
}

// storageAdvice is what to do about err when it is a failure of the vault's
// storage, for the end of an error message; "" otherwise.
func storageAdvice(err error) string {
	if !storageFailed(err) {
		return ""
	}

	return "; the vault's storage still failed after retries: check that it is up and reachable from this machine, then try again (an S3 vault's retry_for says how long its outages are waited for)"
}

// openS3 opens the vault's bucket.
func openS3(ctx context.Context, cfg Config, isCreate bool) (blob.Storage, error) {
	opts, err := s3Options(cfg)
	if err != nil {
		return nil, fmt.Errorf("open vault %q: %w", cfg.Name, err)
	}

	s3Keys.Store(s3KeysID(*opts), cfg.S3)

	st, err := newS3Storage(ctx, opts, isCreate)
	if err != nil {
		return nil, fmt.Errorf("open vault %q: %w; %s", cfg.Name, err, s3Advice(err))
	}

	return st, nil
}

// s3Advice says what to check when the bucket cannot be reached.
func s3Advice(err error) string {
	var ne net.Error

	switch {
	case errors.Is(err, blob.ErrInvalidCredentials):
		return "check access_key_env/secret_key_env (or the key files) for this vault"
	case errors.As(err, &ne):
		return "check that the S3 endpoint is reachable, and insecure or ca_file if it speaks plain HTTP or has a private CA"
	default:
		return "check the bucket, endpoint and credentials of this vault"
	}
}

// inspectS3 tells a bucket (and prefix) that holds a kopia repository from
// an empty one, listing rather than reading so that a missing bucket fails
// at once instead of after Kopia's retries.
func inspectS3(ctx context.Context, cfg Config) (storageState, error) {
	st, err := openS3(ctx, cfg, false)
	if err != nil {
		return 0, err
	}
	defer st.Close(ctx) //nolint:errcheck

	var (
		first  blob.ID
		others int
	)

	err = st.ListBlobs(ctx, "", func(m blob.Metadata) error {
		switch {
		case m.BlobID == format.KopiaRepositoryBlobID:
			return errRepositoryFound
		case !leftByCreation(m.BlobID):
			if others == 0 {
				first = m.BlobID
			}
			others++
		}

		return nil
	})

	switch {
	case errors.Is(err, errRepositoryFound):
		return storageRepository, nil
	case err != nil:
		return 0, fmt.Errorf("open vault %q: list %s: %w; %s", cfg.Name, cfg.Storage, err, s3Advice(err))
	case others > 0:
		return 0, fmt.Errorf("open vault %q: %s is not empty and holds no kopia repository (found %q%s); point the vault's storage at an empty bucket or prefix, or at an existing vault",
			cfg.Name, cfg.Storage, first, moreSuffix(others-1))
	}

	return storageEmpty, nil
}

var errRepositoryFound = errors.New("kopia repository found")

func leftByCreation(id blob.ID) bool {
	return slices.Contains(s3BlobsLeftByCreation, id)
}
