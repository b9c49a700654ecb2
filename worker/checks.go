package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/startcheck"
	"github.com/vigil-backup/vigil/vault"
	"github.com/vigil-backup/vigil/vault/restic"
)

// CheckStart runs the start-up checks (package startcheck) before the
// engine starts. Each vault is opened for good, as the first backup would
// have opened it (creating it when its folder is new). The warnings are
// kept for the console's overview; when a problem is hard, the vaults are
// closed again, since the start stops.
func (e *Engine) CheckStart(ctx context.Context) []vigil.Problem {
	// A vault whose storage is down is waited for (retry_for); the
	// server's log says so, as nothing answers yet.
	ctx = vault.WithStorageLog(ctx, func(line string) { e.logger.Warn("start-up check: " + line) })
	problems := startcheck.Run(ctx, e.cfg.Current(), startcheck.Options{
		Resources: e.resources,
		Vault: func(ctx context.Context, v config.Vault) error {
			return e.openVault(ctx, v)
		},
	})
	if len(vigil.HardProblems(problems)) > 0 {
		e.closeVaults(ctx) //nolint:errcheck // the start fails with the problems, which say more
		return problems
	}
	e.warningsMu.Lock()
	e.warnings, e.checkedAt = problems, now()
	e.warningsMu.Unlock()
	return problems
}

// StartWarnings returns the warnings the start-up checks found, and when.
func (e *Engine) StartWarnings() ([]vigil.Problem, time.Time) {
	e.warningsMu.Lock()
	defer e.warningsMu.Unlock()
	return e.warnings, e.checkedAt
}

// CheckConfig runs the start-up checks without an engine, for `vigil
// config check`: nothing is created or written, a running vigil is not
// disturbed. Vaults are opened read-only with connection files of their
// own in a temporary folder.
func CheckConfig(ctx context.Context, cfg *config.Config) []vigil.Problem {
	cache, err := os.MkdirTemp("", "vigil-config-check-")
	if err != nil {
		return []vigil.Problem{{Hard: true, Message: fmt.Sprintf("create a temporary folder to check the vaults: %v: set TMPDIR to a folder vigil can write", err)}}
	}
	defer os.RemoveAll(cache)
	types := resource.NewRegistry(resource.Env{
		RestoresDir: filepath.Join(cfg.DataDir, "restores"),
		TempDir:     filepath.Join(cfg.DataDir, "tmp"),
	}, resourceTypes...)
	return startcheck.Run(ctx, cfg, startcheck.Options{
		Resources: types,
		Vault: func(ctx context.Context, v config.Vault) error {
			if v.Password == "" {
				return nil // its unreadable password source is listed already
			}
			if v.Kind == config.KindRestic {
				_, err := restic.Open(ctx, resticConfig(v, filepath.Join(cache, v.Name)))
				return err
			}
			return vault.Check(ctx, vaultConfig(v, filepath.Join(cache, v.Name)))
		},
	})
}
