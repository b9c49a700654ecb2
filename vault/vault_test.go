package vault

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenCreatesVaultAndReopens(t *testing.T) {
	t.Parallel()

	b := setup(t)

	if _, err := os.Stat(filepath.Join(b.cfg.Storage, kopiaRepositoryBlob)); err != nil {
		t.Fatalf("no kopia repository in %s: %v", b.cfg.Storage, err)
	}

	if _, err := os.Stat(filepath.Join(b.cfg.CacheDir, configFileName)); err != nil {
		t.Fatalf("no kopia config in the cache folder: %v", err)
	}

	source := t.TempDir()
	makeTree(t, source)
	res := b.backup(t, source, "files")

	// A second connection, as after a restart, sees the same snapshot.
	v, err := Open(t.Context(), b.cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer v.Close(context.Background())

	list, err := v.Snapshots(t.Context())
	if err != nil {
		t.Fatalf("list snapshots: %v", err)
	}

	if len(list) != 1 || list[0].ID != res.SnapshotID {
		t.Fatalf("after reopening: %+v, want snapshot %s", list, res.SnapshotID)
	}
}

func TestOpenOverEmptyFolderCreatesVault(t *testing.T) {
	t.Parallel()

	storage := t.TempDir() // exists and is empty
	b := setup(t, func(c *Config) { c.Storage = storage })

	if n := len(b.snapshots(t)); n != 0 {
		t.Fatalf("new vault has %d snapshots", n)
	}
}

func TestWrongPasswordChangesNothing(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	b.backup(t, source, "files")
	must(t, b.vault.Close(t.Context()))

	before := storageFiles(t, b.cfg.Storage)

	for _, tc := range []struct {
		name     string
		cacheDir string
	}{
		{"known vault", b.cfg.CacheDir},
		{"first open on this machine", filepath.Join(t.TempDir(), "fresh-cache")},
	} {
		cfg := b.cfg
		cfg.Password = "not the password"
		cfg.CacheDir = tc.cacheDir

		_, err := Open(t.Context(), cfg)
		if !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("%s: open with a wrong password: got %v, want ErrWrongPassword", tc.name, err)
		}

		for _, want := range []string{`"test"`, "password_env", "password_file"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %s", tc.name, err, want)
			}
		}

		if err := sameFiles(before, storageFiles(t, b.cfg.Storage)); err != nil {
			t.Fatalf("%s: open with a wrong password changed the storage folder: %v", tc.name, err)
		}
	}

	// the vault still opens with the right password; setup's cleanup closes
	// the vault again, so hand it a fresh connection
	v, err := Open(t.Context(), b.cfg)
	if err != nil {
		t.Fatalf("open with the right password: %v", err)
	}

	b.vault = v
}

func TestOpenRefusesFolderThatIsNotAVault(t *testing.T) {
	t.Parallel()

	storage := t.TempDir()
	must(t, os.WriteFile(filepath.Join(storage, "notes.txt"), []byte("mine"), 0o644))
	must(t, os.Mkdir(filepath.Join(storage, "photos"), 0o755))

	before := storageFiles(t, storage)

	_, err := Open(t.Context(), Config{
		Name:     "test",
		Storage:  storage,
		Password: testPassword,
		CacheDir: t.TempDir(),
	})
	if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), storage) {
		t.Fatalf("open over a folder with other files: got %v, want an error naming the folder", err)
	}

	if err := sameFiles(before, storageFiles(t, storage)); err != nil {
		t.Fatalf("refused open changed the folder: %v", err)
	}
}

func TestOpenValidatesConfig(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	must(t, os.WriteFile(file, []byte("x"), 0o644))

	good := Config{Name: "v", Storage: filepath.Join(dir, "vault"), Password: "p", CacheDir: filepath.Join(dir, "cache")}

	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "no name"},
		{"no storage", func(c *Config) { c.Storage = "" }, "no storage"},
		{"s3 without a bucket", func(c *Config) { c.Storage = "s3:///vault" }, "names no bucket"},
		{"s3 endpoint with a scheme", func(c *Config) { c.Storage, c.S3.Endpoint = "s3://b/v", "http://127.0.0.1:1" }, "without a scheme"},
		{"s3 with one key", func(c *Config) { c.Storage, c.S3.AccessKey = "s3://b/v", "K" }, "only one of its access key and secret key"},
		{"s3 unreadable CA file", func(c *Config) { c.Storage, c.S3.CAFile = "s3://b/v", filepath.Join(dir, "no-ca.pem") }, "ca_file"},
		{"other scheme", func(c *Config) { c.Storage = "gcs://bucket" }, "only local folder paths"},
		{"no password", func(c *Config) { c.Password = "" }, "password_env"},
		{"no cache folder", func(c *Config) { c.CacheDir = "" }, "no cache folder"},
		{"cache inside storage", func(c *Config) { c.CacheDir = filepath.Join(c.Storage, "cache") }, "overlap"},
		{"storage is a file", func(c *Config) { c.Storage = file }, "a-file"},
		{"unknown compressor", func(c *Config) { c.Tuning.Compressor = "lzma9000" }, "unknown compressor"},
	} {
		cfg := good
		tc.modify(&cfg)

		_, err := Open(t.Context(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}

	if _, err := os.Stat(good.Storage); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused config created the storage folder")
	}
}

func TestNewVaultDefaults(t *testing.T) {
	t.Parallel()

	b := setup(t)

	pol, err := globalPolicyOf(t, b.vault)
	if err != nil {
		t.Fatal(err)
	}

	if pol.CompressionPolicy.CompressorName != defaultCompressor {
		t.Errorf("compressor %q, want %q", pol.CompressionPolicy.CompressorName, defaultCompressor)
	}

	for _, ext := range []string{".jpg", ".JPG", ".gz", ".zip", ".zst"} {
		if !isInSorted(pol.CompressionPolicy.NeverCompress, ext) {
			t.Errorf("%s files are compressed again", ext)
		}
	}

	if got := b.vault.rep.ContentReader().ContentFormat().GetHashFunction(); got != defaultHash {
		t.Errorf("hash %q, want %q", got, defaultHash)
	}

	owner, err := maintenanceOwner(t, b.vault)
	if err != nil {
		t.Fatal(err)
	}

	if owner != "vigil@vigil" {
		t.Errorf("maintenance owner %q, want vigil@vigil", owner)
	}
}
