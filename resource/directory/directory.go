// Package directory is the resource type of a folder of files: backed up
// as a Kopia snapshot of the tree, restored into a new or empty folder, and
// restore-tested by comparing the restored files with the recovery point.
// The app type builds on it: an app is a folder plus how to run it.
package directory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/internal/disk"
	"github.com/vigil-backup/vigil/mount"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/target"
	"github.com/vigil-backup/vigil/validate"
	"github.com/vigil-backup/vigil/vault"
)

// Type is the directory resource type.
type Type struct{}

var (
	_ resource.Type          = Type{}
	_ resource.Resource      = (*Folder)(nil)
	_ resource.SourceChecker = (*Folder)(nil)
	_ resource.Copy          = (*FolderCopy)(nil)
	_ resource.Restored      = (*FolderCopy)(nil)
)

func (Type) Name() string { return "directory" }

func (Type) Open(cfg config.Resource, env resource.Env) (resource.Resource, error) {
	return NewFolder(cfg, env), nil
}

// Folder is a resource whose data is the folder at its path. The app
// type embeds it.
type Folder struct {
	cfg config.Resource
	env resource.Env
}

// NewFolder returns the folder resource of cfg.
func NewFolder(cfg config.Resource, env resource.Env) *Folder { return &Folder{cfg: cfg, env: env} }

func (f *Folder) Config() config.Resource { return f.cfg }

func (f *Folder) Location() string { return f.cfg.Location() }

func (f *Folder) Backup(ctx context.Context, v *vault.Vault, opts vault.BackupOptions) (vault.BackupResult, *vigil.DatabaseInfo, error) {
	opts.Exclude = Excludes(f.cfg)
	res, err := v.Backup(ctx, f.cfg.Path, opts)
	return res, nil, err
}

// Excludes are the exclude rules of a folder resource's entry.
func Excludes(cfg config.Resource) vault.Excludes {
	return vault.Excludes{
		Patterns:      cfg.Exclude,
		IfPresent:     cfg.ExcludeIfPresent,
		OneFileSystem: cfg.OneFileSystem,
		LargerThan:    int64(cfg.ExcludeLargerThan),
	}
}

// CheckSource: the folder must be a folder vigil can read, and kopia must
// be able to read its exclude patterns. A folder that does not exist is
// only a warning: it may be a mount that is not there yet.
func (f *Folder) CheckSource(ctx context.Context) []vigil.Problem {
	if err := vault.CheckPatterns(ctx, f.cfg.Exclude); err != nil {
		return []vigil.Problem{{Hard: true, Message: fmt.Sprintf("resource %q: %v: correct the pattern (gitignore-style, as a line of a .kopiaignore file)", f.cfg.Name, err)}}
	}
	path := f.cfg.Path
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return []vigil.Problem{{Message: fmt.Sprintf("folder %s does not exist now, so its backups fail until it does: create or mount it, or correct the resource's path", path)}}
	case err != nil:
		return []vigil.Problem{{Hard: true, Message: fmt.Sprintf("cannot look at folder %s: %v: let the user vigil runs as reach it, or correct the resource's path", path, err)}}
	case !fi.IsDir():
		return []vigil.Problem{{Hard: true, Message: fmt.Sprintf("%s is not a folder: a %s resource backs up a folder; correct the resource's path", path, f.cfg.Type)}}
	}
	d, err := os.Open(path)
	if err == nil {
		_, err = d.Readdirnames(1)
		d.Close()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return []vigil.Problem{{Hard: true, Message: fmt.Sprintf("cannot read folder %s: %v: let the user vigil runs as read it", path, err)}}
	}
	return nil
}

func (f *Folder) RestoreDefaults(vigil.RecoveryPoint) map[string]string {
	return map[string]string{
		resource.MetaTargetPath: filepath.Join(f.env.RestoresDir, resource.Placeholder),
		resource.MetaPath:       "",
	}
}

func (f *Folder) PrepareRestore(_ context.Context, job *vigil.RestoreJob, _ vigil.RecoveryPoint) error {
	path := job.Metadata[resource.MetaTargetPath]
	if !filepath.IsAbs(path) {
		return vigil.Invalidf("target_path %q must be an absolute path", path)
	}
	path = filepath.Clean(path)
	job.Metadata[resource.MetaTargetPath] = path
	// What is restored keeps its path below target_path (as restic's
	// --include does), so the target stays a new or empty folder with
	// the same claim and clean-up as a whole restore.
	part, err := vault.CleanPath(job.Metadata[resource.MetaPath])
	if err != nil {
		return vigil.Invalidf("%v", err)
	}
	job.Metadata[resource.MetaPath] = part
	if err := f.env.CheckTarget(path, target.Folder); err != nil {
		return err
	}
	job.CreatedResourceLocation = path
	return nil
}

// CheckTarget checks the target again: it was free when the job was
// queued, but something may have written there since.
func (f *Folder) CheckTarget(job *vigil.RestoreJob) error {
	return f.env.CheckTarget(job.Metadata[resource.MetaTargetPath], target.Folder)
}

// Restore takes hold of the target before it writes (of restores into one
// target, one gets it; the others fail touching nothing) and, when it
// fails, removes only what it wrote: a folder it created, or what it put
// into an empty folder that was there before. The hold lasts until
// KeepRestore or CleanInterrupted.
func (f *Folder) Restore(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint, job *vigil.RestoreJob) (string, error) {
	path := job.Metadata[resource.MetaTargetPath]
	claim, err := f.env.Claims.Claim(job.ID, path, target.Folder)
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("the restore of recovery point %s", rp.ID)
	const where = "free space on that disk, or choose a target_path on another disk"
	part, size := job.Metadata[resource.MetaPath], rp.SizeBytes
	if part != "" {
		// A part needs room for itself only; if it cannot be looked up,
		// the restore's own error says why.
		if at, _, err := v.Files(ctx, rp.SnapshotID, part, false); err == nil {
			size = at.Size
		}
	}
	if err := disk.Room(path, size, what, where); err != nil {
		return "", errors.New(err.Error() + claim.Undo())
	}
	result, err := v.RestorePath(ctx, rp.SnapshotID, part, path, nil)
	if err != nil {
		msg := disk.Explain(err, path, size, what, where).Error()
		if ctx.Err() != nil {
			msg = "vigil was stopped during the restore: start it again"
		}
		return "", errors.New(msg + claim.Undo())
	}
	only := ""
	if part != "" {
		only = fmt.Sprintf(" (only %q, at that path below the target)", part)
	}
	return fmt.Sprintf("%d files, %d folders, %d symlinks, %d bytes into %s%s",
		result.Files, result.Dirs, result.Symlinks, result.Bytes, path, only), nil
}

// KeepRestore releases the hold on the target of a completed restore.
func (f *Folder) KeepRestore(_ context.Context, job *vigil.RestoreJob) string {
	path := job.Metadata[resource.MetaTargetPath]
	claim, err := f.env.Claims.Reclaim(job.ID, path)
	if err == nil && claim != nil {
		err = claim.Release()
	}
	if err != nil {
		return fmt.Sprintf(" (%v)", err)
	}
	return ""
}

// CleanInterrupted removes what an interrupted restore wrote, if it had
// taken hold of its target: a target another job holds, or one this job
// never reached, is left alone.
func (f *Folder) CleanInterrupted(_ context.Context, job *vigil.RestoreJob) string {
	path := job.Metadata[resource.MetaTargetPath]
	claim, err := f.env.Claims.Reclaim(job.ID, path)
	switch {
	case err != nil:
		return fmt.Sprintf(" (whether it had written into %s could not be checked: %v; look at it)", path, err)
	case claim == nil:
		return fmt.Sprintf(" (it had not taken hold of %s yet: it had written nothing there, and nothing there was touched)", path)
	}
	return claim.Undo()
}

func (f *Folder) PrepareTest(job *vigil.RestoreJob, _ vigil.RecoveryPoint, dir string) {
	job.Metadata = map[string]string{resource.MetaTargetPath: dir}
	job.CreatedResourceLocation = dir
}

func (f *Folder) Copy(job *vigil.RestoreJob, inst *instance.Instance) (resource.Copy, error) {
	return NewFolderCopy(inst, f.cfg), nil
}

// FolderCopy is a restore test's copy of a folder: its instance's data
// folder. The instance folder holds everything, so Delete has nothing of
// its own to delete; an instant copy's mounts are in it too, and
// removing the instance takes them down.
type FolderCopy struct {
	Inst *instance.Instance
	// digests is set when the resource has checksum validators: the
	// restore then hashes each file as it writes it, for them.
	digests bool
	result  vault.RestoreResult
}

// NewFolderCopy returns the copy in inst of a folder whose entry is cfg.
func NewFolderCopy(inst *instance.Instance, cfg config.Resource) *FolderCopy {
	c := &FolderCopy{Inst: inst}
	for _, v := range cfg.Validate {
		c.digests = c.digests || v.Checksum != nil
	}
	return c
}

var _ resource.Mounter = (*FolderCopy)(nil)

// Mount makes the copy without restoring it: rp mounted read-only in the
// instance, with a writable overlay at its data folder. An error wrapping
// mount.ErrUnavailable leaves nothing mounted and the data folder empty,
// for a full restore.
func (c *FolderCopy) Mount(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint) (string, error) {
	tree, err := v.Tree(ctx, rp.SnapshotID)
	if err != nil {
		return "", fmt.Errorf("mount recovery point %s: %w", rp.ID, err)
	}
	f := c.Inst.Instant()
	for _, p := range []string{f.Lower, f.Upper, f.Work} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return "", fmt.Errorf("mount recovery point %s: %w", rp.ID, err)
		}
	}
	// The mount serves until the instance is removed, which unmounts it.
	_, err = mount.Instant(ctx, tree, f, mount.Options{Hold: v.Hold, Log: func(format string, args ...any) { vault.Logf(ctx, format, args...) }})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("mounted recovery point %s (%d bytes) at %s, read-only from vault %q, with the copy's writes going to %s: nothing is fetched until it is read",
		rp.ID, rp.SizeBytes, c.Inst.Dir, rp.Vault, f.Upper), nil
}

// Restore refuses a recovery point that does not fit in the data dir's
// disk before it writes anything: a copy that fills the disk leaves no
// room for the catalog to record its end.
func (c *FolderCopy) Restore(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint) (string, error) {
	return c.RestoreFiles(ctx, v, rp)
}

var _ resource.FileCopy = (*FolderCopy)(nil)

// RestoreFiles restores rp from src, a vault or a foreign repository.
func (c *FolderCopy) RestoreFiles(ctx context.Context, src resource.FileSource, rp vigil.RecoveryPoint) (string, error) {
	what := fmt.Sprintf("the copy of recovery point %s", rp.ID)
	if err := disk.Room(c.Inst.Dir, rp.SizeBytes, what, resource.FreeDataDir); err != nil {
		return "", err
	}
	result, err := src.RestoreWith(ctx, rp.SnapshotID, c.Inst.Dir, vault.RestoreOptions{Digests: c.digests})
	if err != nil {
		return "", disk.Explain(err, c.Inst.Dir, rp.SizeBytes, what, resource.FreeDataDir)
	}
	c.result = result
	digested := ""
	if result.Digests != nil {
		digested = ", each file hashed as it was written for the checksum check"
	}
	return fmt.Sprintf("restored %d files, %d folders, %d bytes into %s%s", result.Files, result.Dirs, result.Bytes, c.Inst.Dir, digested), nil
}

// Restored is what Restore read and wrote, with the files' digests when
// the resource has checksum validators.
func (c *FolderCopy) Restored() vault.RestoreResult { return c.result }

func (c *FolderCopy) Location() string {
	if c.Inst == nil {
		return ""
	}
	return c.Inst.Dir
}

func (c *FolderCopy) Check(context.Context, vigil.RecoveryPoint, *validate.Target) (string, error) {
	return "", nil
}

func (c *FolderCopy) Close() error { return nil }

func (c *FolderCopy) Delete(context.Context) (string, error) { return "", nil }
