package vault

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckChangesNothing: Check opens an existing vault (while it is open
// elsewhere, as when vigil serves), refuses a wrong password and storage
// that cannot hold a vault, and never writes into the storage folder or
// creates a missing one.
func TestCheckChangesNothing(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	b.backup(t, source, "files")

	before := storageFiles(t, b.cfg.Storage)
	check := func(name string, modify func(*Config)) error {
		cfg := b.cfg
		cfg.CacheDir = filepath.Join(t.TempDir(), "check-cache")
		modify(&cfg)
		err := Check(t.Context(), cfg)
		if err := sameFiles(before, storageFiles(t, b.cfg.Storage)); err != nil {
			t.Fatalf("%s: Check changed the storage folder: %v", name, err)
		}
		return err
	}

	if err := check("right password", func(*Config) {}); err != nil {
		t.Errorf("check of a good vault: %v", err)
	}
	err := check("wrong password", func(c *Config) { c.Password = "not the password" })
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "password_env") {
		t.Errorf("check with a wrong password: got %v, want ErrWrongPassword saying what to check", err)
	}

	missing := filepath.Join(t.TempDir(), "new", "vault")
	if err := check("missing folder", func(c *Config) { c.Storage = missing }); err != nil {
		t.Errorf("check of a vault to be created: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("check created %s: %v", filepath.Dir(missing), err)
	}

	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, []byte("x"), 0o600))
	if err := check("storage is a file", func(c *Config) { c.Storage = file }); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("check of storage that is a file: %v", err)
	}
	if err := check("under a file", func(c *Config) { c.Storage = filepath.Join(file, "vault") }); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("check of storage under a file: %v", err)
	}
	other := t.TempDir()
	must(t, os.WriteFile(filepath.Join(other, "photo.jpg"), []byte("x"), 0o600))
	if err := check("other files", func(c *Config) { c.Storage = other }); err == nil || !strings.Contains(err.Error(), "holds no kopia repository") {
		t.Errorf("check of a folder of other files: %v", err)
	}
}
