package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kopia/kopia/repo/maintenance"
	"github.com/kopia/kopia/snapshot/policy"
)

const testPassword = "correct horse battery staple"

// testBundle is a vault in a fresh temporary folder.
type testBundle struct {
	cfg   Config
	vault *Vault
}

func setup(t *testing.T, modify ...func(*Config)) *testBundle {
	t.Helper()

	dir := t.TempDir()
	cfg := Config{
		Name:       "test",
		Storage:    filepath.Join(dir, "vault"),
		Password:   testPassword,
		CacheDir:   filepath.Join(dir, "cache"),
		SoleWriter: true,
	}

	for _, m := range modify {
		m(&cfg)
	}

	v, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open vault: %v", err)
	}

	t.Cleanup(func() {
		if err := v.Close(context.Background()); err != nil {
			t.Errorf("close vault: %v", err)
		}
	})

	return &testBundle{cfg: cfg, vault: v}
}

func (b *testBundle) backup(t *testing.T, source, resource string) BackupResult {
	t.Helper()

	res, err := b.vault.Backup(t.Context(), source, BackupOptions{Resource: resource})
	if err != nil {
		t.Fatalf("backup %s: %v", source, err)
	}

	return res
}

func (b *testBundle) snapshots(t *testing.T) []Snapshot {
	t.Helper()

	list, err := b.vault.Snapshots(t.Context())
	if err != nil {
		t.Fatalf("list snapshots: %v", err)
	}

	return list
}

// folderSize is the sum of the sizes of the regular files under dir.
func folderSize(t *testing.T, dir string) int64 {
	t.Helper()

	var total int64

	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}

			total += fi.Size()
		}

		return nil
	})
	if err != nil {
		t.Fatalf("measure %s: %v", dir, err)
	}

	return total
}

// fixedTime gives every entry of a test tree a distinct time with
// nanoseconds, so that a restore that drops precision is caught.
func fixedTime(i int) time.Time {
	return time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC).Add(time.Duration(i) * 97 * time.Minute)
}

// makeTree writes a tree with the kinds of entries a restore must get right:
// empty and large files, compressible and random data, unusual modes and
// names, nested and empty folders, and relative, absolute and dangling links.
func makeTree(t *testing.T, dir string) {
	t.Helper()

	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}

		return b
	}

	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"empty", nil, 0o644},
		{"hello.txt", []byte("hello, vault\n"), 0o644},
		{"script.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
		{"secret", []byte("only me"), 0o600},
		{"readonly", []byte("read only"), 0o444},
		{"setuid-bin", []byte("pretend binary"), 0o4755 & os.ModePerm},
		{"name with spaces and ünïcödé", []byte("names"), 0o644},
		{"back\\slash", []byte("a Linux file name may hold a backslash"), 0o644},
		{"a/b/c/deep.txt", bytes.Repeat([]byte("deep "), 1000), 0o640},
		{"a/random.bin", random(3 << 20), 0o644},
		{"a/b/compressible.log", bytes.Repeat([]byte("2024-01-01 INFO all is well\n"), 50000), 0o644},
		{"photos/picture.jpg", random(200 << 10), 0o644},
	}

	for i, f := range files {
		p := filepath.Join(dir, f.name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, f.data, 0o600))
		must(t, os.Chmod(p, f.mode))
		must(t, os.Chtimes(p, fixedTime(i), fixedTime(i)))
	}

	must(t, os.Chmod(filepath.Join(dir, "setuid-bin"), 0o755|os.ModeSetuid))

	must(t, os.MkdirAll(filepath.Join(dir, "empty-dir"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "private-dir"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "private-dir", "inside"), []byte("x"), 0o600))

	must(t, os.Symlink("hello.txt", filepath.Join(dir, "link-relative")))
	must(t, os.Symlink("/etc/hostname", filepath.Join(dir, "link-absolute")))
	must(t, os.Symlink("does/not/exist", filepath.Join(dir, "link-dangling")))
	must(t, os.Symlink("../hello.txt", filepath.Join(dir, "a", "link-up")))

	for i, l := range []string{"link-relative", "link-absolute", "link-dangling", "a/link-up"} {
		setLinkTime(t, filepath.Join(dir, l), fixedTime(100+i))
	}

	// folder times last, after their contents stopped changing
	dirs := []string{"a/b/c", "a/b", "a", "photos", "empty-dir", "private-dir", "."}
	for i, d := range dirs {
		p := filepath.Join(dir, d)
		must(t, os.Chtimes(p, fixedTime(200+i), fixedTime(200+i)))
	}
}

func setLinkTime(t *testing.T, p string, tm time.Time) {
	t.Helper()

	ts := []unix.Timespec{unix.NsecToTimespec(tm.UnixNano()), unix.NsecToTimespec(tm.UnixNano())}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
}

// treeEntry is what a restore must reproduce of one entry.
type treeEntry struct {
	mode    os.FileMode
	mtime   time.Time
	size    int64
	digest  string
	link    string
	uid     uint32
	gid     uint32
	special bool
}

// readTree describes every entry under dir by its relative path.
func readTree(t *testing.T, dir string) map[string]treeEntry {
	t.Helper()

	entries := map[string]treeEntry{}

	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}

		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}

		e := treeEntry{mode: fi.Mode(), mtime: fi.ModTime()}

		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.uid, e.gid = st.Uid, st.Gid
		}

		switch {
		case fi.Mode().IsRegular():
			e.size = fi.Size()
			e.digest = fileDigest(t, p)
		case fi.Mode()&os.ModeSymlink != 0:
			e.link, err = os.Readlink(p)
			if err != nil {
				return err
			}
		case !fi.IsDir():
			e.special = true
		}

		entries[rel] = e

		return nil
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", dir, err)
	}

	return entries
}

func fileDigest(t *testing.T, p string) string {
	t.Helper()

	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer f.Close()

	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("read %s: %v", p, err)
	}

	return hex.EncodeToString(h.Sum(nil))
}

// compareTrees fails the test for every difference between the source tree
// and its restored copy. Special files (sockets, FIFOs) are not backed up,
// so they are expected to be missing.
func compareTrees(t *testing.T, source, restored string) {
	t.Helper()
	compareTreesExcept(t, source, restored, false)
}

// compareTreesExcept compares like compareTrees but, with byKopiaCLI, allows
// for what the stock kopia CLI's restore does: it sets a folder's time to
// the newest time in its subtree, and a link's time to the microsecond.
func compareTreesExcept(t *testing.T, source, restored string, byKopiaCLI bool) {
	t.Helper()

	want, got := readTree(t, source), readTree(t, restored)

	for p, w := range want {
		if w.special {
			if _, ok := got[p]; ok {
				t.Errorf("%s: special file was restored", p)
			}

			continue
		}

		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing from restore", p)
			continue
		}

		if g.mode != w.mode {
			t.Errorf("%s: mode %v, want %v", p, g.mode, w.mode)
		}

		switch {
		case byKopiaCLI && w.mode.IsDir():
		case byKopiaCLI && w.link != "" && g.mtime.Equal(w.mtime.Round(time.Microsecond)):
		case !g.mtime.Equal(w.mtime):
			t.Errorf("%s: mtime %v, want %v", p, g.mtime, w.mtime)
		}

		if g.size != w.size || g.digest != w.digest {
			t.Errorf("%s: content differs (size %d, want %d)", p, g.size, w.size)
		}

		if g.link != w.link {
			t.Errorf("%s: link to %q, want %q", p, g.link, w.link)
		}

		if os.Geteuid() == 0 && (g.uid != w.uid || g.gid != w.gid) {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, g.uid, g.gid, w.uid, w.gid)
		}
	}

	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: restored but not in source", p)
		}
	}
}

// storageFiles reads every file in the vault's storage folder, to prove
// that an operation left it untouched.
func storageFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()

	files := map[string][]byte{}

	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		if d.IsDir() {
			files[p+"/"] = nil
			return nil
		}

		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}

		files[p] = b

		return nil
	})
	if err != nil {
		t.Fatalf("read storage %s: %v", dir, err)
	}

	return files
}

func sameFiles(a, b map[string][]byte) error {
	for p, data := range a {
		other, ok := b[p]
		if !ok {
			return errors.New(p + " disappeared")
		}

		if !bytes.Equal(data, other) {
			return errors.New(p + " changed")
		}
	}

	for p := range b {
		if _, ok := a[p]; !ok {
			return errors.New(p + " appeared")
		}
	}

	return nil
}

// packBlobs lists the data pack files in a vault's storage: kopia names
// them "p…" and shards them into folders by the first characters of their
// name, so they all live under the folder "p".
func packBlobs(t *testing.T, dir string) []string {
	t.Helper()

	var packs []string

	err := filepath.WalkDir(filepath.Join(dir, "p"), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == filepath.Join(dir, "p") {
			return filepath.SkipAll // no pack written yet
		}

		if err != nil {
			return err
		}

		if !d.IsDir() && strings.HasSuffix(d.Name(), ".f") {
			packs = append(packs, p)
		}

		return nil
	})
	if err != nil {
		t.Fatalf("list packs in %s: %v", dir, err)
	}

	return packs
}

// flipBytes damages a file of a vault's storage (a pack, say) in place:
// every step-th byte from start is inverted. The file's kopia mode is
// read-only, so it is made writable first.
func flipBytes(t *testing.T, p string, start, step int) {
	t.Helper()

	data, err := os.ReadFile(p)
	must(t, err)

	for i := start; i < len(data); i += step {
		data[i] ^= 0xff
	}

	must(t, os.Chmod(p, 0o600))
	must(t, os.WriteFile(p, data, 0o600))
}

func must(t *testing.T, err error) {
	t.Helper()

	if err != nil {
		t.Fatal(err)
	}
}

func globalPolicyOf(t *testing.T, v *Vault) (*policy.Policy, error) {
	t.Helper()

	return policy.GetDefinedPolicy(t.Context(), v.rep, policy.GlobalPolicySourceInfo) //nolint:wrapcheck
}

func maintenanceOwner(t *testing.T, v *Vault) (string, error) {
	t.Helper()

	p, err := maintenance.GetParams(t.Context(), v.rep)
	if err != nil {
		return "", err //nolint:wrapcheck
	}

	return p.Owner, nil
}

func isInSorted(list []string, s string) bool {
	_, found := slices.BinarySearch(list, s)
	return found
}
