package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"
	"github.com/kopia/kopia/snapshot/upload"
)

// BackupOptions describes one backup.
type BackupOptions struct {
	// Resource is the resource's name. It is the user name of the kopia
	// snapshot source ("<resource>@vigil:<path>"), so snapshots of one
	// resource chain together.
	Resource string
	// Tags are stored on the snapshot manifest (for example
	// "vigil:recovery-point" -> "rp-…"), so that vigil can find its recovery
	// points from the vault alone when the catalog is lost.
	Tags        map[string]string
	Description string
	// Exclude leaves entries of the folder out on purpose; what it left
	// out is counted in BackupResult.Excluded.
	Exclude Excludes
	// Progress, when set, is called from time to time (not per file) from a
	// single goroutine; it must be cheap.
	Progress func(Progress)
}

// Progress reports how far a backup or restore has come. The totals are
// estimates, 0 while unknown.
type Progress struct {
	Bytes, Files, TotalBytes, TotalFiles int64
}

// BackupResult describes a completed backup.
type BackupResult struct {
	SnapshotID string
	Bytes      int64 // size of all files in the snapshot
	Files      int64
	Dirs       int64
	// HashedBytes is how much was read and hashed because it was new or
	// changed; the rest was taken from the resource's previous snapshot.
	HashedBytes int64
	// Skipped counts what the snapshot left out: named pipes, sockets
	// and device files, which no snapshot holds.
	Skipped Skipped
	// Excluded counts what BackupOptions.Exclude left out.
	Excluded Excluded
}

// tagPrefix marks user tags in kopia's snapshot labels, as the stock CLI's
// `snapshot create --tags` does, so vigil's tags show as tags there too.
const tagPrefix = "tag:"

// progressInterval is how often progress callbacks are called.
const progressInterval = 500 * time.Millisecond

// Backup snapshots the folder tree at source (contents, modes, owners, mtimes
// and symlinks; named pipes, sockets and device files are skipped, as kopia
// does, and counted in BackupResult.Skipped) and returns once all of its data and its manifest are durable in the vault.
//
// A backup reuses the latest snapshot of the same resource, so unchanged files
// are neither read nor hashed again. A missing or unreadable source, or an
// unreadable entry inside it, fails the backup with an error naming the path,
// and leaves no snapshot. So does cancelling ctx. Backups of different
// resources may run concurrently.
func (v *Vault) Backup(ctx context.Context, source string, opts BackupOptions) (BackupResult, error) {
	if err := v.writable("back up into"); err != nil {
		return BackupResult{}, err
	}

	if err := validResourceName(opts.Resource); err != nil {
		return BackupResult{}, fmt.Errorf("back up %s to vault %q: %w", source, v.cfg.Name, err)
	}

	dir, sourcePath, err := openSource(source)
	if err != nil {
		return BackupResult{}, fmt.Errorf("back up to vault %q: %w", v.cfg.Name, err)
	}

	for k := range opts.Tags {
		if k == "" {
			return BackupResult{}, fmt.Errorf("back up %s to vault %q: a tag has an empty name", sourcePath, v.cfg.Name)
		}
	}

	release, err := v.shared(ctx)
	if err != nil {
		return BackupResult{}, err
	}
	defer release()

	// A backup reads the folder listings of the previous snapshot, to
	// reuse what has not changed: from an S3 vault, each listing pack
	// whole once rather than a GET per folder (see packCache).
	ctx, dropPacks := withPackCache(ctx, v.cfg.Tuning.PackCacheBytes)
	defer dropPacks()

	res, err := v.backup(ctx, dir, sourcePath, opts)
	if err != nil {
		return BackupResult{}, fmt.Errorf("back up %s to vault %q: %w%s", sourcePath, v.cfg.Name, err, storageAdvice(err))
	}

	return res, nil
}

func (v *Vault) backup(ctx context.Context, dir fs.Directory, sourcePath string, opts BackupOptions) (BackupResult, error) {
	si := snapshot.SourceInfo{Host: sourceHost, UserName: opts.Resource, Path: sourcePath}

	ctx, w, err := v.rep.NewWriter(ctx, repo.WriteSessionOptions{Purpose: "vigil backup of " + opts.Resource})
	if err != nil {
		return BackupResult{}, fmt.Errorf("start write session: %w", err)
	}
	// A failed backup returns before saving a manifest, and closing the
	// session without a flush abandons what it has not committed. What it
	// did write (packs, and during a long backup the index entries kopia
	// commits every few minutes) is referenced by no snapshot and goes with
	// the next full maintenance.
	defer w.Close(ctx) //nolint:errcheck

	previous, err := previousManifests(ctx, w, si)
	if err != nil {
		return BackupResult{}, err
	}

	excluded := &excludeRecorder{rules: opts.Exclude}

	policyTree, err := policy.TreeForSourceWithOverride(ctx, w, si, excluded.policyOverride())
	if err != nil {
		return BackupResult{}, fmt.Errorf("read policy: %w", err)
	}

	progress := &uploadProgress{
		excluded: excluded,
		// kopia's estimate walks the whole tree before the upload does; the
		// previous snapshot's totals are as good an estimate, and free.
		enabled: opts.Progress != nil && len(previous) == 0,
	}

	if len(previous) > 0 && previous[0].RootEntry.DirSummary != nil {
		s := previous[0].RootEntry.DirSummary
		progress.EstimatedDataSize(s.TotalFileCount, s.TotalFileSize)
	}

	u := upload.NewUploader(w)
	u.ParallelUploads = parallelism(v.cfg.Tuning.UploadParallelism, defaultUploadParallelism)
	// One unreadable file fails the backup: carrying on would upload data for
	// a snapshot that is then thrown away.
	u.FailFast = true
	// Policies in a vault could name commands to run; vigil never runs them.
	u.EnableActions = false
	u.Progress = progress

	stopCancel := context.AfterFunc(ctx, u.Cancel)
	defer stopCancel()

	skipped := &skipRecorder{excluded: excluded}
	stopReports := progress.report(opts.Progress)
	man, err := u.Upload(ctx, skipped.dir(dir, "."), policyTree, si, previous...)

	stopReports()

	if ctxErr := ctx.Err(); ctxErr != nil {
		return BackupResult{}, fmt.Errorf("backup cancelled: %w", ctxErr)
	}

	if err != nil {
		if vaultSideFailed(err) {
			return BackupResult{}, v.full(err)
		}
		return BackupResult{}, fmt.Errorf("read source: %w", err)
	}

	if err := uploadFailure(man, sourcePath); err != nil {
		return BackupResult{}, err
	}

	man.Description = opts.Description
	man.Tags = make(map[string]string, len(opts.Tags))

	for k, val := range opts.Tags {
		man.Tags[tagPrefix+k] = val
	}

	id, err := snapshot.SaveSnapshot(ctx, w, man)
	if err != nil {
		if vaultSideFailed(err) {
			return BackupResult{}, v.full(err)
		}
		return BackupResult{}, fmt.Errorf("save snapshot manifest: %w", err)
	}

	if err := dropCheckpoints(ctx, w, si, man); err != nil {
		return BackupResult{}, err
	}

	// The flush writes the remaining packs, then the index, then the
	// manifest; each is fsynced by the vault's storage (see storage.go).
	if err := w.Flush(ctx); err != nil {
		if vaultSideFailed(err) {
			return BackupResult{}, v.full(err)
		}
		return BackupResult{}, fmt.Errorf("flush vault: %w", err)
	}

	res := BackupResult{
		SnapshotID:  string(id),
		HashedBytes: progress.hashed.Load(),
		Skipped:     skipped.result(),
		Excluded:    excluded.result(),
	}

	if s := man.RootEntry.DirSummary; s != nil {
		res.Bytes, res.Files, res.Dirs = s.TotalFileSize, s.TotalFileCount, s.TotalDirCount
	}

	return res, nil
}

// openSource resolves the source folder. A symbolic link to a folder is
// followed: the resource is the folder it names.
func openSource(source string) (fs.Directory, string, error) {
	if source == "" {
		return nil, "", errors.New("no source folder given")
	}

	abs, err := filepath.Abs(source)
	if err != nil {
		return nil, "", fmt.Errorf("resolve source %s: %w", source, err)
	}

	resolved, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("source folder %s does not exist; check the resource's path", abs)
	} else if err != nil {
		return nil, "", fmt.Errorf("source folder %s: %w", abs, err)
	}

	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, "", fmt.Errorf("source folder %s: %w", abs, err)
	}

	if !fi.IsDir() {
		return nil, "", fmt.Errorf("source %s is not a folder; a resource's path must name a folder", abs)
	}

	// Reading the folder here turns "permission denied" into a clear error
	// before any data is written.
	f, err := os.Open(resolved)
	if err == nil {
		_, err = f.Readdirnames(1)
		f.Close() //nolint:errcheck
	}

	if err != nil && !errors.Is(err, io.EOF) {
		return nil, "", fmt.Errorf("source folder %s cannot be read: %w", abs, err)
	}

	dir, err := localfs.Directory(resolved)
	if err != nil {
		return nil, "", fmt.Errorf("open source folder %s: %w", abs, err)
	}

	return dir, resolved, nil
}

// validResourceName rejects names that would make kopia's "user@host:path"
// source notation ambiguous.
func validResourceName(name string) error {
	if name == "" {
		return errors.New("no resource name given")
	}

	if strings.ContainsAny(name, "@:/\\\x00") || strings.TrimSpace(name) != name {
		return fmt.Errorf("resource name %q may not contain '@', ':', slashes or surrounding spaces", name)
	}

	return nil
}

// previousManifests returns the resource's latest complete snapshot, at any
// source path, plus any newer checkpoints of this very source. The uploader
// takes unchanged files from them instead of reading them again. Matching by
// resource rather than by exact path keeps a resource fast even when its
// folder moves, such as a database dump written to a fresh folder each time.
func previousManifests(ctx context.Context, rep repo.Repository, si snapshot.SourceInfo) ([]*snapshot.Manifest, error) {
	entries, err := rep.FindManifests(ctx, map[string]string{
		"type":                 snapshot.ManifestType,
		snapshot.HostnameLabel: si.Host,
		snapshot.UsernameLabel: si.UserName,
	})
	if err != nil {
		return nil, fmt.Errorf("find previous snapshots: %w", err)
	}

	ids := make([]manifest.ID, 0, len(entries))
	for _, e := range entries {
		ids = append(ids, e.ID)
	}

	mans, err := snapshot.LoadSnapshots(ctx, rep, ids)
	if err != nil {
		return nil, fmt.Errorf("load previous snapshots: %w", err)
	}

	var latest *snapshot.Manifest

	for _, m := range mans {
		if m.IncompleteReason == "" && m.RootEntry != nil && (latest == nil || m.StartTime.After(latest.StartTime)) {
			latest = m
		}
	}

	var result []*snapshot.Manifest
	if latest != nil {
		result = append(result, latest)
	}

	for _, m := range mans {
		if m.IncompleteReason != "" && m.Source == si && m.RootEntry != nil && (latest == nil || m.StartTime.After(latest.StartTime)) {
			result = append(result, m)
		}
	}

	return result, nil
}

// dropCheckpoints deletes the checkpoint manifests that kopia writes every 45
// minutes during a long backup of this source. Once a complete snapshot
// exists they only hold back garbage collection.
func dropCheckpoints(ctx context.Context, w repo.RepositoryWriter, si snapshot.SourceInfo, done *snapshot.Manifest) error {
	mans, err := snapshot.ListSnapshots(ctx, w, si)
	if err != nil {
		return fmt.Errorf("list checkpoints: %w", err)
	}

	for _, m := range mans {
		if m.IncompleteReason != "" && !m.StartTime.After(done.StartTime) {
			if err := w.DeleteManifest(ctx, m.ID); err != nil {
				return fmt.Errorf("delete checkpoint %s: %w", m.ID, err)
			}
		}
	}

	return nil
}

// uploadFailure turns the errors kopia recorded in the snapshot's root
// summary into one error naming the paths.
func uploadFailure(man *snapshot.Manifest, sourcePath string) error {
	s := man.RootEntry.DirSummary

	failed := man.Stats.ErrorCount > 0 || man.IncompleteReason != ""
	if s != nil && s.FatalErrorCount > 0 {
		failed = true
	}

	if !failed {
		return nil
	}

	var problems []string

	if s != nil {
		for _, e := range s.FailedEntries {
			problems = append(problems, fmt.Sprintf("%s: %s", filepath.Join(sourcePath, filepath.FromSlash(e.EntryPath)), e.Error))
		}
	}

	switch len(problems) {
	case 0:
		return fmt.Errorf("backup incomplete (%s); check that every file under %s is readable and try again", orDefault(man.IncompleteReason, "errors while reading"), sourcePath)
	case 1:
		return fmt.Errorf("cannot read %s; make it readable by the user vigil runs as, or remove it, and try again", problems[0])
	default:
		return fmt.Errorf("cannot read %d entries; make them readable by the user vigil runs as, or remove them, and try again: %s", len(problems), strings.Join(problems, "; "))
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}

	return s
}

// uploadProgress receives kopia's per-file progress events, which arrive
// from many goroutines, and keeps only counters.
type uploadProgress struct {
	upload.NullUploadProgress

	enabled bool
	// excluded counts what kopia's ignore rules leave out; nil for a copy.
	excluded *excludeRecorder

	bytes, files, hashed   atomic.Int64
	totalBytes, totalFiles atomic.Int64
}

// Enabled turns on kopia's size estimation, which walks the tree once more;
// it is only worth it when someone is watching.
func (p *uploadProgress) Enabled() bool { return p.enabled }

// ExcludedFile and ExcludedDir hear of the entries kopia's ignore rules
// left out (the patterns, and .kopiaignore files in the folder).
func (p *uploadProgress) ExcludedFile(name string, size int64) {
	if p.excluded != nil {
		p.excluded.add(name, ExcludedByPattern, size)
	}
}

func (p *uploadProgress) ExcludedDir(name string) {
	if p.excluded != nil {
		p.excluded.add(name, ExcludedByPattern, 0)
	}
}

func (p *uploadProgress) HashedBytes(n int64) {
	p.bytes.Add(n)
	p.hashed.Add(n)
}

func (p *uploadProgress) CachedFile(_ string, size int64) { p.bytes.Add(size) }

func (p *uploadProgress) FinishedFile(string, error) { p.files.Add(1) }

func (p *uploadProgress) EstimatedDataSize(files, bytes int64) {
	p.totalFiles.Store(files)
	p.totalBytes.Store(bytes)
}

// EstimationParameters asks for a walk of the tree: the rough estimate reads
// the whole volume's usage, which says nothing about one folder.
func (p *uploadProgress) EstimationParameters() upload.EstimationParameters {
	return upload.EstimationParameters{Type: upload.EstimationTypeClassic}
}

func (p *uploadProgress) snapshot() Progress {
	return Progress{
		Bytes:      p.bytes.Load(),
		Files:      p.files.Load(),
		TotalBytes: p.totalBytes.Load(),
		TotalFiles: p.totalFiles.Load(),
	}
}

// report calls fn every progressInterval until the returned stop function is
// called, which reports once more and waits for the reporter to finish.
func (p *uploadProgress) report(fn func(Progress)) (stop func()) {
	return reportEvery(fn, p.snapshot)
}

func reportEvery(fn func(Progress), current func() Progress) (stop func()) {
	if fn == nil {
		return func() {}
	}

	done := make(chan struct{})

	var wg sync.WaitGroup

	wg.Add(1)

	go func() {
		defer wg.Done()

		t := time.NewTicker(progressInterval)
		defer t.Stop()

		for {
			select {
			case <-t.C:
				fn(current())
			case <-done:
				fn(current())
				return
			}
		}
	}()

	return func() {
		close(done)
		wg.Wait()
	}
}

// vaultSideFailed reports whether err is a write that found a disk full, or a
// failure of an S3 vault's storage: either way the vault's side failed, not
// the source's.
func vaultSideFailed(err error) bool {
	return storageFailed(err) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// full is the error of a backup whose write into the vault found its disk
// full, or its storage failing: the vault's side failed, not the source's.
func (v *Vault) full(err error) error {
	return fmt.Errorf("write into the storage of vault %q (%s) failed: %w", v.cfg.Name, v.cfg.Storage, err)
}
