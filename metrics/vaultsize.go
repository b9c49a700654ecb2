package metrics

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/vault"
)

// DefaultSizeRefresh is how old the measured size of an S3 vault may get
// before it is measured again.
const DefaultSizeRefresh = 5 * time.Minute

// sizeTimeout bounds one measurement of an S3 vault.
const sizeTimeout = 2 * time.Minute

// VaultSizes tells how many bytes each vault's storage takes. A folder
// vault is walked at each call, as that is cheap and never stale. An S3
// vault is measured by listing its blobs, which on a large bucket takes
// many requests: that runs in the background, at most once per refresh
// interval, and a call returns the last figure with its time, so that
// neither a scrape nor a console page waits for a listing, and a bucket is
// not listed at every scrape.
type VaultSizes struct {
	vaults  vault.Opener // nil: S3 vaults are not measured
	refresh time.Duration
	logger  *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	measured map[string]VaultSize
	busy     map[string]bool
}

// VaultSize is a vault's measured size.
type VaultSize struct {
	Bytes int64
	// At is when it was measured.
	At time.Time
}

// NewVaultSizes measures S3 vaults through vaults, once per refresh
// (DefaultSizeRefresh when 0).
func NewVaultSizes(vaults vault.Opener, refresh time.Duration, logger *slog.Logger) *VaultSizes {
	if refresh <= 0 {
		refresh = DefaultSizeRefresh
	}
	return &VaultSizes{vaults: vaults, refresh: refresh, logger: logger, now: time.Now,
		measured: map[string]VaultSize{}, busy: map[string]bool{}}
}

// Size returns the size of vault v; ok is false while there is no figure
// yet: a folder vault that does not exist, or an S3 vault not measured
// yet (the measurement is started).
func (s *VaultSizes) Size(v config.Vault) (VaultSize, bool) {
	if v.Kind == config.KindRestic {
		// A folder is measured; restic's remote kinds (s3:, sftp:, …)
		// would need restic's own listing, and are not.
		if strings.Contains(v.Repository, ":") {
			return VaultSize{}, false
		}
		size, ok := FolderSize(v.Repository)
		return VaultSize{Bytes: size, At: s.now()}, ok
	}
	if !v.IsS3() {
		size, ok := FolderSize(v.Storage)
		return VaultSize{Bytes: size, At: s.now()}, ok
	}
	if s.vaults == nil {
		return VaultSize{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.measured[v.Name]
	if (!ok || s.now().Sub(last.At) >= s.refresh) && !s.busy[v.Name] {
		s.busy[v.Name] = true
		go s.measure(v.Name)
	}
	return last, ok
}

// measure lists the blobs of vault name and records their total.
func (s *VaultSizes) measure(name string) {
	defer func() {
		s.mu.Lock()
		delete(s.busy, name)
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), sizeTimeout)
	defer cancel()
	at := s.now()
	v, err := s.vaults.Vault(ctx, name)
	var size int64
	if err == nil {
		size, err = v.StorageSize(ctx)
	}
	if err != nil {
		// The last figure, if any, stays, with its time to show its age.
		s.logger.Warn("measure the size of a vault", "vault", name, "err", err)
		return
	}
	s.mu.Lock()
	s.measured[name] = VaultSize{Bytes: size, At: at}
	s.mu.Unlock()
}
