package vault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/kopia/kopia/repo/format"
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

// s3Storage is Kopia's S3 storage (which retries every failed request
// with exponential back-off, on top of the S3 client's own retries) whose
// errors name the bucket, so that a job that fails says where.
type s3Storage struct {
	blob.Storage

	opts s3.Options
}

func newS3Storage(ctx context.Context, opts *s3.Options, isCreate bool) (blob.Storage, error) {
	// The connection config names the bucket but not the keys: they are
	// held in this process only (see s3Keys).
	withKeys := *opts
	if k, ok := s3Keys.Load(s3KeysID(*opts)); ok && withKeys.AccessKeyID == "" {
		keys := k.(S3) //nolint:forcetypeassert
		withKeys.AccessKeyID, withKeys.SecretAccessKey = keys.AccessKey, keys.SecretKey
	}

	st, err := s3.New(ctx, &withKeys, isCreate)
	if err != nil {
		return nil, &StorageError{Location: s3Location(*opts), Err: err}
	}

	bare := *opts
	bare.AccessKeyID, bare.SecretAccessKey, bare.SessionToken = "", "", ""

	return &s3Storage{Storage: st, opts: bare}, nil
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
	switch {
	case err == nil,
		errors.Is(err, blob.ErrBlobNotFound),
		errors.Is(err, blob.ErrInvalidRange),
		errors.Is(err, blob.ErrBlobAlreadyExists),
		errors.Is(err, blob.ErrSetTimeUnsupported),
		errors.Is(err, blob.ErrUnsupportedPutBlobOption),
		errors.Is(err, context.Canceled):
		return err
	}

	return &StorageError{Location: s3Location(s.opts), Err: err}
}

func (s *s3Storage) GetBlob(ctx context.Context, id blob.ID, offset, length int64, output blob.OutputBuffer) error {
	return s.annotate(s.Storage.GetBlob(ctx, id, offset, length, output))
}

func (s *s3Storage) GetMetadata(ctx context.Context, id blob.ID) (blob.Metadata, error) {
	m, err := s.Storage.GetMetadata(ctx, id)
	return m, s.annotate(err)
}

func (s *s3Storage) PutBlob(ctx context.Context, id blob.ID, data blob.Bytes, opts blob.PutOptions) error {
	return s.annotate(s.Storage.PutBlob(ctx, id, data, opts))
}

func (s *s3Storage) DeleteBlob(ctx context.Context, id blob.ID) error {
	return s.annotate(s.Storage.DeleteBlob(ctx, id))
}

func (s *s3Storage) ListBlobs(ctx context.Context, prefix blob.ID, cb func(blob.Metadata) error) error {
	return s.annotate(s.Storage.ListBlobs(ctx, prefix, cb))
}

// StorageError is a failure of a vault's storage that Kopia's retries did
// not overcome: the S3 service answered an error, or could not be reached.
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

	return "; the vault's storage still failed after retries: check that it is up and reachable from this machine, then try again"
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
