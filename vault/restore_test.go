package vault

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

func TestRestoreRefusesNonEmptyTarget(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	res := b.backup(t, source, "files")

	target := t.TempDir()
	must(t, os.WriteFile(filepath.Join(target, "precious"), []byte("keep me"), 0o644))

	before := storageFiles(t, target)

	_, err := b.vault.Restore(t.Context(), res.SnapshotID, target, nil)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty folder: got %v, want an error saying so", err)
	}

	if err := sameFiles(before, storageFiles(t, target)); err != nil {
		t.Fatalf("refused restore wrote into the target: %v", err)
	}

	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, []byte("x"), 0o644))

	if _, err := b.vault.Restore(t.Context(), res.SnapshotID, file, nil); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Fatalf("restore onto a file: got %v, want an error saying it is not a folder", err)
	}

	// an existing empty folder is fine
	empty := t.TempDir()
	if _, err := b.vault.Restore(t.Context(), res.SnapshotID, empty, nil); err != nil {
		t.Fatalf("restore into an empty folder: %v", err)
	}

	compareTrees(t, source, empty)
}

func TestRestoreUnknownSnapshot(t *testing.T) {
	t.Parallel()

	b := setup(t)
	target := filepath.Join(t.TempDir(), "target")

	_, err := b.vault.Restore(t.Context(), "0123456789abcdef0123456789abcdef", target, nil)
	if err == nil || !strings.Contains(err.Error(), "is not in vault") {
		t.Fatalf("restore of an unknown snapshot: got %v", err)
	}

	if _, err := os.Stat(target); err == nil {
		t.Error("a failed restore created its target")
	}
}

func TestRestoreCancelled(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	res := b.backup(t, source, "files")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	if _, err := b.vault.Restore(ctx, res.SnapshotID, filepath.Join(t.TempDir(), "target"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("restore with a cancelled context: got %v, want context.Canceled", err)
	}
}

func TestRestoreReportsProgress(t *testing.T) {
	t.Parallel()

	b := setup(t)
	source := t.TempDir()
	makeTree(t, source)
	res := b.backup(t, source, "files")

	var last Progress

	_, err := b.vault.Restore(t.Context(), res.SnapshotID, filepath.Join(t.TempDir(), "target"), func(p Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}

	if last.Bytes != res.Bytes || last.Files != res.Files || last.TotalBytes != res.Bytes || last.TotalFiles != res.Files {
		t.Errorf("last progress %+v, want all %d files and %d bytes done", last, res.Files, res.Bytes)
	}
}

// writeObject stores data as a kopia object.
func writeObject(t *testing.T, w repo.RepositoryWriter, data []byte) object.ID {
	t.Helper()

	ow := w.NewObjectWriter(t.Context(), object.WriterOptions{})
	defer ow.Close()

	if _, err := ow.Write(data); err != nil {
		t.Fatal(err)
	}

	oid, err := ow.Result()
	if err != nil {
		t.Fatal(err)
	}

	return oid
}

// craftSnapshot writes a snapshot whose root folder holds exactly the given
// entries, whatever their names, as a damaged or malicious vault could.
func craftSnapshot(t *testing.T, v *Vault, entries func(w repo.RepositoryWriter) []*snapshot.DirEntry) string {
	t.Helper()

	var id string

	err := repo.WriteSession(t.Context(), v.rep, repo.WriteSessionOptions{Purpose: "craft"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		oid, err := snapshotfs.WriteDirManifest(ctx, w, ".", &snapshot.DirManifest{
			StreamType: "kopia:directory",
			Entries:    entries(w),
			Summary:    &fs.DirectorySummary{},
		}, "")
		if err != nil {
			return err
		}

		now := fs.UTCTimestampFromTime(time.Now())
		man := &snapshot.Manifest{
			Source:    snapshot.SourceInfo{Host: sourceHost, UserName: "evil", Path: "/evil"},
			StartTime: now,
			EndTime:   now,
			RootEntry: &snapshot.DirEntry{
				Name:        "evil",
				Type:        snapshot.EntryTypeDirectory,
				Permissions: 0o755,
				ObjectID:    oid,
				ModTime:     now,
				DirSummary:  &fs.DirectorySummary{},
			},
		}

		mid, err := snapshot.SaveSnapshot(ctx, w, man)
		id = string(mid)

		return err
	})
	if err != nil {
		t.Fatalf("craft snapshot: %v", err)
	}

	return id
}

func fileEntry(t *testing.T, w repo.RepositoryWriter, name string, data []byte) *snapshot.DirEntry {
	t.Helper()

	return &snapshot.DirEntry{
		Name:        name,
		Type:        snapshot.EntryTypeFile,
		Permissions: 0o644,
		FileSize:    int64(len(data)),
		ModTime:     fs.UTCTimestampFromTime(time.Now()),
		ObjectID:    writeObject(t, w, data),
	}
}

func TestRestoreConfinesMaliciousSnapshots(t *testing.T) {
	t.Parallel()

	b := setup(t)

	for _, tc := range []struct {
		name    string
		entries func(t *testing.T, w repo.RepositoryWriter, outside string) []*snapshot.DirEntry
	}{
		{"parent reference", func(t *testing.T, w repo.RepositoryWriter, _ string) []*snapshot.DirEntry {
			return []*snapshot.DirEntry{fileEntry(t, w, "../evil", []byte("pwned"))}
		}},
		{"deep parent reference", func(t *testing.T, w repo.RepositoryWriter, _ string) []*snapshot.DirEntry {
			return []*snapshot.DirEntry{fileEntry(t, w, "../../../../../../../../tmp/evil", []byte("pwned"))}
		}},
		{"absolute name", func(t *testing.T, w repo.RepositoryWriter, outside string) []*snapshot.DirEntry {
			return []*snapshot.DirEntry{fileEntry(t, w, filepath.Join(outside, "evil"), []byte("pwned"))}
		}},
		{"name with a slash", func(t *testing.T, w repo.RepositoryWriter, _ string) []*snapshot.DirEntry {
			return []*snapshot.DirEntry{fileEntry(t, w, "a/b", []byte("pwned"))}
		}},
		{"dot and empty names", func(t *testing.T, w repo.RepositoryWriter, _ string) []*snapshot.DirEntry {
			return []*snapshot.DirEntry{fileEntry(t, w, ".", []byte("pwned")), fileEntry(t, w, "", []byte("pwned"))}
		}},
		{"folders named dot and dot-dot", func(t *testing.T, w repo.RepositoryWriter, _ string) []*snapshot.DirEntry {
			var entries []*snapshot.DirEntry

			for _, name := range []string{".", ".."} {
				sub, err := snapshotfs.WriteDirManifest(t.Context(), w, name, &snapshot.DirManifest{
					StreamType: "kopia:directory",
					Entries:    []*snapshot.DirEntry{fileEntry(t, w, "evil", []byte("pwned"))},
					Summary:    &fs.DirectorySummary{},
				}, "")
				must(t, err)

				entries = append(entries, &snapshot.DirEntry{
					Name:        name,
					Type:        snapshot.EntryTypeDirectory,
					Permissions: 0o755,
					ModTime:     fs.UTCTimestampFromTime(time.Now()),
					ObjectID:    sub,
					DirSummary:  &fs.DirectorySummary{},
				})
			}

			return entries
		}},
		{"write through a link", func(t *testing.T, w repo.RepositoryWriter, outside string) []*snapshot.DirEntry {
			return []*snapshot.DirEntry{
				{
					Name:        "link",
					Type:        snapshot.EntryTypeSymlink,
					Permissions: 0o777,
					ModTime:     fs.UTCTimestampFromTime(time.Now()),
					ObjectID:    writeObject(t, w, []byte(outside)),
				},
				fileEntry(t, w, "link/pwned", []byte("pwned")),
			}
		}},
		{"parent reference in a subfolder", func(t *testing.T, w repo.RepositoryWriter, _ string) []*snapshot.DirEntry {
			sub, err := snapshotfs.WriteDirManifest(t.Context(), w, "sub", &snapshot.DirManifest{
				StreamType: "kopia:directory",
				Entries:    []*snapshot.DirEntry{fileEntry(t, w, "../../evil", []byte("pwned"))},
				Summary:    &fs.DirectorySummary{},
			}, "")
			must(t, err)

			return []*snapshot.DirEntry{{
				Name:        "sub",
				Type:        snapshot.EntryTypeDirectory,
				Permissions: 0o755,
				ModTime:     fs.UTCTimestampFromTime(time.Now()),
				ObjectID:    sub,
				DirSummary:  &fs.DirectorySummary{},
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			target := filepath.Join(base, "target")
			must(t, os.Mkdir(outside, 0o755))

			id := craftSnapshot(t, b.vault, func(w repo.RepositoryWriter) []*snapshot.DirEntry {
				return append(tc.entries(t, w, outside), fileEntry(t, w, "harmless", []byte("fine")))
			})

			_, err := b.vault.Restore(t.Context(), id, target, nil)
			if err == nil || !strings.Contains(err.Error(), "refusing") {
				t.Errorf("restore of a malicious snapshot: got %v, want a refusal", err)
			}

			assertOnly(t, base, "outside", "target")
			assertOnly(t, outside)

			for _, p := range []string{"/evil", "/tmp/evil"} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("restore wrote %s", p)
				}
			}
		})
	}
}

// assertOnly fails unless dir holds exactly the named entries.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()

	entries, err := os.ReadDir(dir)
	must(t, err)

	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}

	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// fakeFile is a file entry as kopia's restore hands it to an output.
type fakeFile struct {
	name string
	data []byte
}

func (f *fakeFile) Name() string                { return f.name }
func (f *fakeFile) IsDir() bool                 { return false }
func (f *fakeFile) Mode() os.FileMode           { return 0o644 }
func (f *fakeFile) ModTime() time.Time          { return time.Unix(1e9, 0) }
func (f *fakeFile) Size() int64                 { return int64(len(f.data)) }
func (f *fakeFile) Sys() any                    { return nil }
func (f *fakeFile) Owner() fs.OwnerInfo         { return fs.OwnerInfo{} }
func (f *fakeFile) Device() fs.DeviceInfo       { return fs.DeviceInfo{} }
func (f *fakeFile) LocalFilesystemPath() string { return "" }
func (f *fakeFile) Close()                      {}

func (f *fakeFile) Open(context.Context) (fs.Reader, error) {
	return &fakeReader{bytes.NewReader(f.data), f}, nil
}

type fakeReader struct {
	*bytes.Reader
	f *fakeFile
}

func (r *fakeReader) Close() error               { return nil }
func (r *fakeReader) Entry() (fs.Entry, error)   { return r.f, nil }
func (r *fakeReader) Read(p []byte) (int, error) { return r.Reader.Read(p) }

var _ io.Seeker = (*fakeReader)(nil)

// TestConfinedOutputRefusesLinkedFolders checks the second layer on its own:
// even with plain names, a path whose folder is a symbolic link out of the
// target is not written through. Kopia cannot produce such a path from one
// snapshot (a folder listing cannot hold a link and a folder of one name),
// which is why this calls the output directly.
func TestConfinedOutputRefusesLinkedFolders(t *testing.T) {
	t.Parallel()

	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	target := filepath.Join(base, "target")
	must(t, os.Mkdir(outside, 0o755))
	must(t, os.Mkdir(target, 0o755))
	must(t, os.Symlink(outside, filepath.Join(target, "link")))
	must(t, os.Symlink("../outside", filepath.Join(target, "relative-link")))

	out, err := newConfinedOutput(nil, nil, target, false)
	must(t, err)
	defer out.closeAll()

	for _, p := range []string{"link/pwned", "relative-link/pwned", "link/deeper/pwned"} {
		err := out.WriteFile(t.Context(), p, &fakeFile{name: filepath.Base(p), data: []byte("pwned")}, nil)
		if err == nil {
			t.Errorf("wrote %s through a link out of the target", p)
		}
	}

	assertOnly(t, outside)

	// a link that stays inside the target is fine to write through
	must(t, os.Mkdir(filepath.Join(target, "real"), 0o755))
	must(t, os.Symlink("real", filepath.Join(target, "inner-link")))

	if err := out.WriteFile(t.Context(), "inner-link/ok", &fakeFile{name: "ok", data: []byte("ok")}, nil); err != nil {
		t.Errorf("write through a link inside the target: %v", err)
	}

	assertOnly(t, filepath.Join(target, "real"), "ok")
}

// TestRestoreIntoSetgidTargetKeepsOwners restores files recorded as
// root's into a target folder with the set-group-ID bit and another
// group. New files there take the folder's group, so the restore must
// still set the recorded group even though the restoring user is root:
// skipping chown for files that already belong to the restoring user is
// right only where no folder hands its group down.
func TestRestoreIntoSetgidTargetKeepsOwners(t *testing.T) {
	t.Parallel()

	if os.Geteuid() != 0 {
		// only root restores owners; anyone else gets every file as
		// their own, and there is nothing to check
		t.Log("not root: owners are not restored")
		return
	}

	b := setup(t)
	source := t.TempDir()
	must(t, os.WriteFile(filepath.Join(source, "top"), []byte("top"), 0o644))
	must(t, os.MkdirAll(filepath.Join(source, "sub", "deeper"), 0o755))
	must(t, os.WriteFile(filepath.Join(source, "sub", "deeper", "inner"), []byte("inner"), 0o644))
	must(t, os.Lchown(source, 0, 0))
	res := b.backup(t, source, "files")

	target := t.TempDir()
	must(t, os.Chown(target, 0, nobody))
	must(t, os.Chmod(target, 0o755|os.ModeSetgid))

	if _, err := b.vault.Restore(t.Context(), res.SnapshotID, target, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}

	for _, name := range []string{"top", "sub", "sub/deeper", "sub/deeper/inner"} {
		fi, err := os.Lstat(filepath.Join(target, name))
		must(t, err)

		if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != 0 { //nolint:forcetypeassert
			t.Errorf("%s restored with group %d, recorded 0: it took the set-group-ID target's group", name, gid)
		}
	}
}
