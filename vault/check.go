package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kopia/kopia/repo"
)

// checkConfigFileName is the read-only connection config Check writes into
// Config.CacheDir, apart from the one a running vigil uses.
const checkConfigFileName = "check.config"

// Check tells whether Open would succeed, changing nothing in the storage
// folder and creating no vault: a missing or empty folder must be one vigil
// can create the vault in, and an existing vault must open with the
// password (errors.Is(err, ErrWrongPassword) when it does not). It opens a
// read-only connection of its own, so it may run while vigil serves.
func Check(ctx context.Context, cfg Config) error {
	if err := cfg.normalize(); err != nil {
		return err
	}

	registerDurableStorage()
	registerS3Storage()

	state, err := inspectStorage(ctx, cfg)
	if err != nil {
		return err
	}

	switch {
	case cfg.ReadOnly && (state == storageMissing || state == storageEmpty):
		// vigil never creates a foreign vault: another tool writes it
		return fmt.Errorf("vault %q: %s holds no kopia repository, and vigil never creates one it only reads: check the vault's storage, or create the repository with the tool that writes it", cfg.Name, cfg.Storage)
	case state == storageMissing:
		return checkCreatable(cfg)
	case state == storageEmpty:
		if isS3(cfg.Storage) {
			return nil // listing it worked; the credentials' rights to write show at the first backup
		}

		if err := unix.Access(cfg.Storage, unix.W_OK); err != nil {
			return fmt.Errorf("vault %q: the empty folder %s cannot be written (%v), so the vault cannot be created in it: let the user vigil runs as write it", cfg.Name, cfg.Storage, err)
		}

		return nil
	}

	configFile, err := writeConnectionConfig(cfg, checkConfigFileName, true)
	if err != nil {
		return fmt.Errorf("check vault %q: %w", cfg.Name, err)
	}

	r, err := repo.Open(ctx, configFile, cfg.Password, &repo.Options{DisableInternalLog: true})
	if err != nil {
		return openError(cfg, err)
	}

	return r.Close(ctx) //nolint:wrapcheck
}

// checkCreatable reports whether the missing storage folder can be made: its
// nearest existing parent is a folder vigil may write.
func checkCreatable(cfg Config) error {
	dir := filepath.Dir(cfg.Storage)
	for {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist) && filepath.Dir(dir) != dir:
			dir = filepath.Dir(dir)
			continue
		case err != nil:
			return fmt.Errorf("vault %q: cannot create its folder %s: %v: correct the vault's storage", cfg.Name, cfg.Storage, err)
		case !fi.IsDir():
			return fmt.Errorf("vault %q: cannot create its folder %s: %s is a file: correct the vault's storage", cfg.Name, cfg.Storage, dir)
		}

		if err := unix.Access(dir, unix.W_OK); err != nil {
			return fmt.Errorf("vault %q: cannot create its folder %s: %s cannot be written (%v): create the folder, or let the user vigil runs write %s", cfg.Name, cfg.Storage, dir, err, dir)
		}

		return nil
	}
}

// openError words an error of repo.Open for people.
func openError(cfg Config, err error) error {
	if errors.Is(err, repo.ErrInvalidPassword) {
		return fmt.Errorf("open vault %q: %w: check that password_env or password_file for this vault in the config gives the password it was created with", cfg.Name, ErrWrongPassword)
	}

	return fmt.Errorf("open vault %q in %s: %w", cfg.Name, cfg.Storage, err)
}
