// Package vault keeps vigil's recovery points in vaults: Kopia repositories on
// a local folder or in an S3 bucket, encrypted with the vault's password, compressed with zstd,
// and readable by the stock kopia CLI so that no one is locked in and a lost
// catalog loses no backups.
//
// A Vault is safe for concurrent use. Backups of different resources may run
// at the same time; Maintain coordinates with them as described on Config.SoleWriter.
package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/compression"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/format"
	"github.com/kopia/kopia/repo/maintenance"
	"github.com/kopia/kopia/snapshot/policy"
)

// ErrWrongPassword is returned (wrapped) by Open when the password does not
// decrypt the vault.
var ErrWrongPassword = errors.New("wrong vault password")

// ErrCorrupt is returned (wrapped) by Verify when the vault holds damaged or
// missing data. The VerifyResult returned with it lists every problem found.
var ErrCorrupt = errors.New("vault data is damaged or missing")

// ErrReadOnly is wrapped by the error of anything that would write to a
// vault opened with Config.ReadOnly.
var ErrReadOnly = errors.New("the vault is read-only")

// Config names a vault and where and how to open it.
type Config struct {
	Name string // vault name, used in every error message
	// Storage is a local folder path, or s3://bucket/prefix for a vault
	// in S3-compatible storage reached as S3 says.
	Storage  string
	S3       S3
	Password string
	// CacheDir is a private folder for kopia's connection config files,
	// such as <data_dir>/cache/<vault name>.
	// It is created if missing and must not overlap Storage.
	CacheDir string

	// bucket and prefix of an S3 vault, set by normalize
	bucket, prefix string

	// SoleWriter says that this process is the only one that ever writes to
	// the vault, which is true of the embedded `vigil serve` on a local folder.
	// Maintain then reclaims the space of deleted snapshots at once (kopia's
	// "none" safety) and, while it runs, holds back this process's backups,
	// restores and verifies, the only writers and readers it could disturb.
	//
	// Leave it false when several processes or machines write to the vault.
	// Maintain then uses kopia's default ("full") safety, which is safe with
	// concurrent writers but gives back the space of a deleted snapshot only
	// after full maintenance has run on two or more days.
	SoleWriter bool

	// ReadOnly opens a foreign vault: a kopia repository that another tool
	// (the kopia CLI, KopiaUI, Velero) writes and vigil only restore-tests.
	// Its storage is opened through kopia's read-only wrapper, which fails
	// every write, and vigil never creates it, sets its policy or maintains
	// it; Backup, CopyFrom into it, Maintain, Repair and DeleteSnapshot
	// return an error wrapping ErrReadOnly before they start.
	ReadOnly bool

	// Tuning overrides the measured defaults; the zero value is what vigil
	// ships with. See bench/README.md for what each setting buys.
	Tuning Tuning
}

// Tuning holds performance settings. Zero values pick the defaults.
type Tuning struct {
	// Compressor is the kopia compressor for file contents, such as
	// "zstd-fastest", "zstd", "s2-default" or "none". It is stored in the
	// vault's global policy when the vault is created, so it is ignored for
	// existing vaults (change those with `kopia policy set --global`).
	Compressor string
	// Hash, Encryption and Splitter are kopia's repository format choices,
	// fixed when the vault is created and ignored afterwards.
	Hash, Encryption, Splitter string
	// UploadParallelism is how many files a backup reads and hashes at once.
	UploadParallelism int
	// RestoreParallelism is how many files a restore writes at once.
	RestoreParallelism int
	// PackCacheBytes bounds the memory a restore, checksum comparison,
	// verify or copy from an S3 vault holds whole packs in (see
	// packCache); defaultPackCacheBytes when zero.
	PackCacheBytes int64
	// SyncRestoredFiles makes Restore fsync every file it writes. Off by
	// default: a restored copy is checked and thrown away, or, in a real
	// recovery, can be restored again from the vault after a crash.
	SyncRestoredFiles bool
}

// Measured defaults; bench/README.md has the numbers behind them.
const (
	defaultCompressor = "zstd-fastest"
	defaultHash       = "BLAKE3-256-128"
	// Files hashed at once in a backup: at least this many, so that reading
	// one file overlaps hashing another even on one or two cores.
	defaultUploadParallelism = 4
	// Files written at once in a restore. Creating files is mostly waiting
	// on the file system, so more writers than cores pay off.
	defaultRestoreParallelism = 8
)

// sourceHost is the host name of every snapshot source vigil writes and the
// host of its kopia client identity. A stable name, rather than the machine's
// host name, keeps one resource's snapshots chained when vigil moves to
// another machine or runs on several workers, and makes the stock CLI show
// sources as "<resource>@vigil:<path>".
const (
	sourceHost = "vigil"
	clientUser = "vigil"
)

// Names inside Config.CacheDir.
const (
	configFileName       = "repository.config"
	verifyConfigFileName = "verify.config"
)

// kopiaRepositoryBlob is the file that marks a folder as a kopia repository.
const kopiaRepositoryBlob = format.KopiaRepositoryBlobID + ".f"

// Vault is an open vault.
type Vault struct {
	cfg Config
	rep repo.DirectRepository

	// activity lets Maintain run alone when Config.SoleWriter is set: every
	// backup, restore and verify holds one unit, Maintain holds them all.
	activity *semaphore.Weighted

	fatalMu  sync.Mutex
	fatalErr error
}

const activityUnits = 1 << 20

// Open connects to the vault, creating the Kopia repository first when the
// storage folder is missing or empty.
//
// A wrong password returns an error wrapping ErrWrongPassword and writes
// nothing to the storage folder. A folder that holds other files and no kopia
// repository is refused, and nothing is written to it either.
func Open(ctx context.Context, cfg Config) (*Vault, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}

	registerDurableStorage()
	registerS3Storage()
	registerLeanZstd()

	if cfg.ReadOnly {
		if err := inspectForeign(ctx, cfg); err != nil {
			return nil, err
		}
	} else if err := inspectAndCreate(ctx, cfg); err != nil {
		return nil, err
	}

	configFile, err := writeConnectionConfig(cfg, configFileName, cfg.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("open vault %q: %w", cfg.Name, err)
	}

	v := &Vault{
		cfg:      cfg,
		activity: semaphore.NewWeighted(activityUnits),
	}

	r, err := repo.Open(withoutStorageLog(ctx), configFile, cfg.Password, v.repoOptions())
	if err != nil {
		return nil, openError(cfg, err)
	}

	dr, ok := r.(repo.DirectRepository)
	if !ok {
		r.Close(ctx) //nolint:errcheck
		return nil, fmt.Errorf("open vault %q: storage %s is not a direct kopia repository", cfg.Name, cfg.Storage)
	}

	v.rep = dr

	if cfg.ReadOnly {
		return v, nil
	}

	if err := v.ensureDefaults(ctx); err != nil {
		r.Close(ctx) //nolint:errcheck
		return nil, err
	}

	return v, nil
}

// Close releases the vault. Operations still running fail.
func (v *Vault) Close(ctx context.Context) error {
	if err := v.rep.Close(ctx); err != nil {
		return fmt.Errorf("close vault %q: %w", v.cfg.Name, err)
	}

	return nil
}

// Name returns the vault's name.
func (v *Vault) Name() string { return v.cfg.Name }

// repoOptions are the options for every kopia connection to the vault.
func (v *Vault) repoOptions() *repo.Options {
	return &repo.Options{
		// kopia's default ends the process; a vault reports it instead.
		OnFatalError: v.setFatal,
		// Kopia otherwise logs every content it writes into compressed log
		// blobs in the vault, for its developers; vigil keeps its own logs.
		DisableInternalLog: true,
	}
}

func (v *Vault) setFatal(err error) {
	v.fatalMu.Lock()
	defer v.fatalMu.Unlock()

	if v.fatalErr == nil {
		v.fatalErr = err
	}
}

// usable reports a fatal error kopia raised earlier, such as a repository
// format upgrade by a newer kopia, after which the vault must not be written.
func (v *Vault) usable() error {
	v.fatalMu.Lock()
	defer v.fatalMu.Unlock()

	if v.fatalErr != nil {
		return fmt.Errorf("vault %q can no longer be used: %w; restart vigil, and upgrade it if the vault was upgraded by a newer kopia", v.cfg.Name, v.fatalErr)
	}

	return nil
}

// writable returns an error wrapping ErrReadOnly for a read-only vault;
// what, such as "back up into", says what was refused.
func (v *Vault) writable(what string) error {
	if v.cfg.ReadOnly {
		return fmt.Errorf("vault %q: cannot %s it: %w: it is a foreign kopia repository that vigil only reads and restore-tests; "+
			"write to it with the tool that owns it", v.cfg.Name, what, ErrReadOnly)
	}

	return v.usable()
}

// shared holds one activity unit for the duration of a backup, restore or
// verify; release it with the returned function.
func (v *Vault) shared(ctx context.Context) (func(), error) {
	if err := v.usable(); err != nil {
		return nil, err
	}

	if err := ctx.Err(); err != nil {
		return nil, err //nolint:wrapcheck
	}

	if err := v.activity.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("vault %q: wait for maintenance to finish: %w", v.cfg.Name, err)
	}

	return func() { v.activity.Release(1) }, nil
}

func (cfg *Config) normalize() error {
	if strings.TrimSpace(cfg.Name) == "" {
		return errors.New("open vault: the vault has no name; give every vault a name in the config")
	}

	if cfg.Storage == "" {
		return fmt.Errorf("open vault %q: no storage set; give the vault a local folder path as its storage", cfg.Name)
	}

	if _, _, ok := strings.Cut(cfg.Storage, "://"); ok && !isS3(cfg.Storage) {
		return fmt.Errorf("open vault %q: storage %s: only local folder paths and s3://bucket/prefix are supported", cfg.Name, cfg.Storage)
	}

	if cfg.Password == "" {
		return fmt.Errorf("open vault %q: the vault has no password; set password_env or password_file for it in the config", cfg.Name)
	}

	if cfg.CacheDir == "" {
		return fmt.Errorf("open vault %q: no cache folder given; give each vault a private folder, such as <data_dir>/cache/<vault name>", cfg.Name)
	}

	if c := cfg.Tuning.Compressor; c != "" && c != "none" && compression.ByName[compression.Name(c)] == nil {
		return fmt.Errorf("open vault %q: unknown compressor %q; use one of kopia's, such as zstd-fastest, zstd or s2-default", cfg.Name, c)
	}

	if isS3(cfg.Storage) {
		cacheDir, err := filepath.Abs(cfg.CacheDir)
		if err != nil {
			return fmt.Errorf("open vault %q: resolve cache folder %s: %w", cfg.Name, cfg.CacheDir, err)
		}

		cfg.CacheDir = cacheDir

		return cfg.normalizeS3()
	}

	storage, err := filepath.Abs(cfg.Storage)
	if err != nil {
		return fmt.Errorf("open vault %q: resolve storage path %s: %w", cfg.Name, cfg.Storage, err)
	}

	cacheDir, err := filepath.Abs(cfg.CacheDir)
	if err != nil {
		return fmt.Errorf("open vault %q: resolve cache folder %s: %w", cfg.Name, cfg.CacheDir, err)
	}

	if within(cacheDir, storage) || within(storage, cacheDir) {
		return fmt.Errorf("open vault %q: cache folder %s and storage %s overlap; keep the cache outside the vault's folder", cfg.Name, cacheDir, storage)
	}

	cfg.Storage, cfg.CacheDir = storage, cacheDir

	return nil
}

// within reports whether path is dir or lies inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

type storageState int

const (
	storageMissing storageState = iota
	storageEmpty
	storageRepository
)

// inspectStorage looks at the storage folder with plain file system calls:
// kopia's own storage layer writes a ".shards" file into any folder it reads,
// and a folder that is not a vault must not be written to.
// inspectForeign checks that a read-only vault's storage holds a kopia
// repository: vigil never creates one there.
func inspectForeign(ctx context.Context, cfg Config) error {
	state, err := inspectStorage(ctx, cfg)
	if err != nil {
		return err
	}

	if state != storageRepository {
		return fmt.Errorf("open vault %q: %s holds no kopia repository, and a read-only vault is never created: "+
			"point the vault's storage at the repository the other tool writes", cfg.Name, cfg.Storage)
	}

	return nil
}

func inspectStorage(ctx context.Context, cfg Config) (storageState, error) {
	if isS3(cfg.Storage) {
		return inspectS3(ctx, cfg)
	}

	entries, err := os.ReadDir(cfg.Storage)

	switch {
	case errors.Is(err, os.ErrNotExist):
		return storageMissing, nil
	case errors.Is(err, syscall.ENOTDIR):
		return 0, fmt.Errorf("open vault %q: storage %s is a file; point the vault's storage at a folder", cfg.Name, cfg.Storage)
	case err != nil:
		return 0, fmt.Errorf("open vault %q: read storage folder %s: %w", cfg.Name, cfg.Storage, err)
	}

	var others []string

	for _, e := range entries {
		switch e.Name() {
		case kopiaRepositoryBlob:
			return storageRepository, nil
		case ".shards", format.KopiaBlobCfgBlobID + ".f":
			// left by a creation that stopped before writing the repository
		default:
			others = append(others, e.Name())
		}
	}

	if len(others) == 0 {
		return storageEmpty, nil
	}

	slices.Sort(others)

	return 0, fmt.Errorf("open vault %q: folder %s is not empty and holds no kopia repository (found %q%s); point the vault's storage at an empty or new folder, or at an existing vault",
		cfg.Name, cfg.Storage, others[0], moreSuffix(len(others)-1))
}

func moreSuffix(n int) string {
	if n == 0 {
		return ""
	}

	return fmt.Sprintf(" and %d more", n)
}

// inspectAndCreate creates the vault's repository unless its storage holds
// one. Kopia writes a new repository's blobs one after the other, each with
// keys of its own: two creations at once (serve and its workers on their
// first start) leave a mix that nobody can open, and one that looks at the
// folder while another creates sees a folder that is neither empty nor a
// vault. So, for a folder vault not yet made, one process at a time looks
// and creates, holding a lock on the folder itself, and the next finds the
// vault made. An S3 vault not yet made is locked with an object written
// only if missing (lockS3Creation).
func inspectAndCreate(ctx context.Context, cfg Config) error {
	if isS3(cfg.Storage) {
		state, err := inspectStorage(ctx, cfg)
		if err != nil || state == storageRepository {
			return err
		}
		unlock, err := lockS3Creation(ctx, cfg)
		if err != nil {
			return fmt.Errorf("open vault %q: %w", cfg.Name, err)
		}
		defer unlock()
	} else {
		if _, err := os.Stat(filepath.Join(cfg.Storage, kopiaRepositoryBlob)); err != nil {
			// A path that cannot be a folder is for inspectStorage to say.
			if err := os.MkdirAll(cfg.Storage, 0o700); err == nil {
				unlock, err := lockFolder(ctx, cfg.Storage)
				if err != nil {
					return fmt.Errorf("open vault %q: %w", cfg.Name, err)
				}
				defer unlock()
			}
		}
	}

	state, err := inspectStorage(ctx, cfg)
	if err != nil || state == storageRepository {
		return err
	}

	return createRepository(ctx, cfg)
}

// createRepository initialises a kopia repository in the missing or empty
// storage folder.
func createRepository(ctx context.Context, cfg Config) error {
	if isS3(cfg.Storage) {
		st, err := openS3(ctx, cfg, true)
		if err != nil {
			return err
		}
		defer st.Close(ctx) //nolint:errcheck

		return initialize(ctx, cfg, st)
	}

	if err := os.MkdirAll(cfg.Storage, 0o700); err != nil {
		return fmt.Errorf("create vault %q: create storage folder: %w", cfg.Name, err)
	}

	st, err := newDurableStorage(ctx, &filesystem.Options{
		Path:          cfg.Storage,
		FileMode:      blobFileMode,
		DirectoryMode: blobDirMode,
	}, true)
	if err != nil {
		return fmt.Errorf("create vault %q in %s: %w", cfg.Name, cfg.Storage, err)
	}
	defer st.Close(ctx) //nolint:errcheck

	if err := initialize(ctx, cfg, st); err != nil {
		return err
	}

	if err := syncDir(cfg.Storage); err != nil {
		return fmt.Errorf("create vault %q: %w", cfg.Name, err)
	}

	return nil
}

// lockFolder takes an exclusive lock on folder dir (flock on the folder
// itself, so nothing is written into it), waiting for another process
// that holds it, until ctx ends.
func lockFolder(ctx context.Context, dir string) (unlock func(), err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open storage folder %s to lock it: %w", dir, err)
	}

	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}

		if !errors.Is(err, unix.EWOULDBLOCK) {
			unix.Close(fd)
			return nil, fmt.Errorf("lock storage folder %s: %w", dir, err)
		}

		select {
		case <-ctx.Done():
			unix.Close(fd)
			return nil, fmt.Errorf("wait for another process creating the vault in %s: %w", dir, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// initialize writes a new kopia repository into the storage.
func initialize(ctx context.Context, cfg Config, st blob.Storage) error {
	t := cfg.Tuning

	err := repo.Initialize(ctx, st, &repo.NewRepositoryOptions{
		BlockFormat: format.ContentFormat{
			Hash:       orDefault(t.Hash, defaultHash),
			Encryption: t.Encryption,
		},
		ObjectFormat: format.ObjectFormat{
			Splitter: t.Splitter,
		},
	}, cfg.Password)
	if err != nil && !errors.Is(err, repo.ErrAlreadyInitialized) {
		return fmt.Errorf("create vault %q in %s: %w", cfg.Name, cfg.Storage, err)
	}

	// Creating derived the key from the password with scrypt (64 MiB) and
	// opening is about to do it again. Collecting the first one's memory
	// now lets the second reuse it; otherwise the heap doubles to hold both
	// and the process keeps that peak.
	runtime.GC()

	return nil
}

// writeConnectionConfig writes a kopia connection config for the vault,
// named name, into CacheDir and returns its path. vigil writes it on every
// open rather than running kopia's Connect, which spares a second password
// key derivation (Connect opens the repository once to check it) and leaves
// vigil in charge of caching.
func writeConnectionConfig(cfg Config, name string, readOnly bool) (string, error) {
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return "", fmt.Errorf("create cache folder: %w", err)
	}

	storage := blob.ConnectionInfo{
		Type: durableStorageType,
		Config: &filesystem.Options{
			Path:          cfg.Storage,
			FileMode:      blobFileMode,
			DirectoryMode: blobDirMode,
		},
	}

	if isS3(cfg.Storage) {
		opts, err := s3Options(cfg)
		if err != nil {
			return "", err
		}

		s3Keys.Store(s3KeysID(*opts), cfg.S3)
		storage = blob.ConnectionInfo{Type: s3StorageType, Config: opts}
	}

	lc := repo.LocalConfig{
		Storage: &storage,
		// No kopia cache: for a local folder the vault is as fast as a
		// cache would be, and caching file contents writes every restored
		// byte twice (restore took 60% longer with it; see bench/README.md).
		// An S3 vault has none either, so that verify reads what the
		// bucket holds rather than a local copy of it.
		Caching: &content.CachingOptions{},
		ClientOptions: repo.ClientOptions{
			Hostname:    sourceHost,
			Username:    clientUser,
			Description: "vigil vault " + cfg.Name,
			ReadOnly:    readOnly,
		},
	}

	b, err := json.MarshalIndent(lc, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode kopia config: %w", err)
	}

	configFile := filepath.Join(cfg.CacheDir, name)

	if err := writeFileAtomic(configFile, b, 0o600); err != nil {
		return "", fmt.Errorf("write kopia config: %w", err)
	}

	return configFile, nil
}

func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}

	tmp := f.Name()
	defer os.Remove(tmp) //nolint:errcheck

	if _, err := f.Write(data); err != nil {
		f.Close() //nolint:errcheck
		return err
	}

	if err := f.Chmod(perm); err != nil {
		f.Close() //nolint:errcheck
		return err
	}

	if err := f.Close(); err != nil {
		return err
	}

	return os.Rename(tmp, name)
}

// ensureDefaults writes the global policy and the maintenance parameters
// when they are missing: on a new vault, or on one whose creation stopped
// half way.
func (v *Vault) ensureDefaults(ctx context.Context) error {
	hasPolicy := true

	if _, err := policy.GetDefinedPolicy(ctx, v.rep, policy.GlobalPolicySourceInfo); errors.Is(err, policy.ErrPolicyNotFound) {
		hasPolicy = false
	} else if err != nil {
		return fmt.Errorf("open vault %q: read global policy: %w", v.cfg.Name, err)
	}

	hasParams, err := maintenance.HasParams(ctx, v.rep)
	if err != nil {
		return fmt.Errorf("open vault %q: read maintenance parameters: %w", v.cfg.Name, err)
	}

	if hasPolicy && hasParams {
		return nil
	}

	err = repo.DirectWriteSession(ctx, v.rep, repo.WriteSessionOptions{Purpose: "vigil set vault defaults"}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
		if !hasPolicy {
			if err := policy.SetPolicy(ctx, w, policy.GlobalPolicySourceInfo, globalPolicy(v.cfg.Tuning)); err != nil {
				return fmt.Errorf("set global policy: %w", err)
			}
		}

		if !hasParams {
			if err := setMaintenanceParams(ctx, w); err != nil {
				return err
			}
		}

		return nil
	})
	if err != nil {
		return fmt.Errorf("open vault %q: %w", v.cfg.Name, err)
	}

	return nil
}

// setMaintenanceParams makes vigil the maintenance owner, so that Maintain
// may run, and otherwise keeps what `kopia repository create` sets.
func setMaintenanceParams(ctx context.Context, w repo.DirectRepositoryWriter) error {
	p := maintenance.DefaultParams()
	p.Owner = w.ClientOptions().UsernameAtHost()

	_, epochs, err := w.ContentReader().EpochManager(ctx)
	if err != nil {
		return fmt.Errorf("read index format: %w", err)
	}

	if epochs {
		// as kopia's CLI does: epoch-managed indexes need no quick cycle
		p.QuickCycle.Enabled = false
	}

	if err := maintenance.SetParams(ctx, w, &p); err != nil {
		return fmt.Errorf("set maintenance parameters: %w", err)
	}

	return nil
}

// incompressibleExtensions lists files that are compressed already; spending
// CPU on compressing them again gains nothing (kopia would store them as they
// are anyway, after trying).
var incompressibleExtensions = []string{
	".7z", ".aac", ".apk", ".avif", ".br", ".bz2", ".cab", ".deb", ".docx",
	".epub", ".flac", ".gif", ".gz", ".heic", ".jar", ".jpeg", ".jpg", ".lz",
	".lz4", ".lzma", ".m4a", ".m4v", ".mkv", ".mov", ".mp3", ".mp4", ".mpeg",
	".mpg", ".odp", ".ods", ".odt", ".ogg", ".opus", ".png", ".pptx", ".rar",
	".rpm", ".sz", ".tbz", ".tbz2", ".tgz", ".txz", ".tzst", ".war", ".webm",
	".webp", ".whl", ".woff", ".woff2", ".xlsx", ".xz", ".zip", ".zst",
}

// globalPolicy is the policy every vigil vault starts with.
func globalPolicy(t Tuning) *policy.Policy {
	p := *policy.DefaultPolicy

	compressor := t.Compressor
	if compressor == "" {
		compressor = defaultCompressor
	}

	// kopia matches extensions case-sensitively against a sorted list
	never := make([]string, 0, 2*len(incompressibleExtensions))
	for _, ext := range incompressibleExtensions {
		never = append(never, ext, strings.ToUpper(ext))
	}

	slices.Sort(never)

	p.CompressionPolicy = policy.CompressionPolicy{
		CompressorName: compression.Name(compressor),
		NeverCompress:  never,
	}

	// vigil decides when recovery points expire; kopia's retention, which
	// `kopia snapshot expire` would apply, must never delete one. All zero
	// means keep everything.
	zero := policy.OptionalInt(0)
	p.RetentionPolicy = policy.RetentionPolicy{
		KeepLatest:  &zero,
		KeepHourly:  &zero,
		KeepDaily:   &zero,
		KeepWeekly:  &zero,
		KeepMonthly: &zero,
		KeepAnnual:  &zero,
	}

	return &p
}

// parallelism returns the number of files to process at once: the tuned
// value, or the default but never fewer than the machine's cores.
func parallelism(tuned, def int) int {
	if tuned > 0 {
		return tuned
	}

	return max(def, runtime.NumCPU())
}

// StorageSize returns the bytes the vault's blobs take in storage (the sum of
// their lengths, the same measure for a local folder as for S3).
func (v *Vault) StorageSize(ctx context.Context) (int64, error) {
	var total int64

	err := v.rep.BlobReader().ListBlobs(ctx, "", func(m blob.Metadata) error {
		total += m.Length
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure vault %q: list blobs: %w", v.cfg.Name, err)
	}

	return total, nil
}

// Opener opens vaults by name; an unknown name is a
// *vigil.UnknownNameError. The worker keeps them open for its life.
type Opener interface {
	Vault(ctx context.Context, name string) (*Vault, error)
}
