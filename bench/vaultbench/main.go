// Command vaultbench times one round of vigil's vault on a folder: a first
// backup into an already created vault (including opening it), an unchanged
// second backup, a restore, and the vault's size. bench/backup-vs-restic.sh
// runs it next to restic and cp -a; flags set the tuning knobs to compare.
//
// Output is one "name value" pair per line, for scripts:
//
//	first_backup_s      open of the existing vault + first backup
//	unchanged_backup_s  second backup of the unchanged tree, vault already open
//	unchanged_open_s    open + second backup, as a fresh process would do it
//	restore_s           restore into a new folder
//	vault_bytes         bytes on disk of the vault folder (like du -sb)
//	vault_blocks_bytes  allocated bytes of the vault folder (like du -s)
//
// Two flags split the round for bench/restore-vs-cp.sh, which times many
// restores of one backup: -backup-only backs up -source into a new vault
// and prints "snapshot_id ID"; -restore ID opens that vault (untimed, as
// vigil serve keeps its vaults open) and prints restore_s for a restore of
// ID into -target.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/vigil-backup/vigil/vault"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vaultbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		source   = flag.String("source", "/usr/local/go", "folder to back up")
		work     = flag.String("work", "", "empty folder for the vault, its cache and the restore (required)")
		progress = flag.Bool("progress", true, "pass a progress callback, as vigil does (turns on kopia's size estimate)")
		profile  = flag.String("cpuprofile", "", "write a CPU profile of the timed phase named by -profile-phase to this file")
		phase    = flag.String("profile-phase", "restore", "phase to profile: first or restore")
		tuning   vault.Tuning

		backupOnly = flag.Bool("backup-only", false, "only back up -source into a new vault and print its snapshot id")
		restoreID  = flag.String("restore", "", "only restore this snapshot of the vault in -work into -target")
		target     = flag.String("target", "", "folder to restore into, with -restore")
		memProfile = flag.String("memprofile", "", "with -backup-only: write a heap profile taken when the heap peaked during the backup (after opening the vault) to this file, and print the peak")
	)

	flag.StringVar(&tuning.Compressor, "compressor", "", "kopia compressor (default: vigil's)")
	flag.StringVar(&tuning.Hash, "hash", "", "kopia hash algorithm (default: kopia's)")
	flag.StringVar(&tuning.Encryption, "encryption", "", "kopia encryption algorithm (default: kopia's)")
	flag.StringVar(&tuning.Splitter, "splitter", "", "kopia splitter (default: kopia's)")
	flag.IntVar(&tuning.UploadParallelism, "upload-parallel", 0, "files hashed at once (default: vigil's)")
	flag.IntVar(&tuning.RestoreParallelism, "restore-parallel", 0, "files restored at once (default: vigil's)")
	flag.BoolVar(&tuning.SyncRestoredFiles, "sync-restore", false, "fsync every restored file")
	flag.Parse()

	if *work == "" {
		return errors.New("-work is required")
	}

	ctx := context.Background()
	cfg := vault.Config{
		Name:       "bench",
		Storage:    filepath.Join(*work, "vault"),
		Password:   "vaultbench",
		CacheDir:   filepath.Join(*work, "cache"),
		SoleWriter: true,
		Tuning:     tuning,
	}

	var onProgress func(vault.Progress)
	if *progress {
		onProgress = func(vault.Progress) {}
	}

	opts := vault.BackupOptions{Resource: "bench", Progress: onProgress}

	if *backupOnly {
		return backupOnce(ctx, cfg, *source, opts, *memProfile)
	}

	if *restoreID != "" {
		return restoreOnce(ctx, cfg, *restoreID, *target, *profile, onProgress)
	}

	// Untimed: create the vault, as restic's repository is initialised
	// before its timed backup.
	v, err := vault.Open(ctx, cfg)
	if err != nil {
		return err
	}

	if err := v.Close(ctx); err != nil {
		return err
	}

	stopProfile, err := startProfile(*profile, *phase == "first")
	if err != nil {
		return err
	}

	start := time.Now()

	v, err = vault.Open(ctx, cfg)
	if err != nil {
		return err
	}

	first, err := v.Backup(ctx, *source, opts)
	if err != nil {
		return err
	}

	report("first_backup_s", time.Since(start).Seconds())
	stopProfile()

	start = time.Now()

	second, err := v.Backup(ctx, *source, opts)
	if err != nil {
		return err
	}

	report("unchanged_backup_s", time.Since(start).Seconds())

	if second.HashedBytes > 1<<20 {
		return fmt.Errorf("unchanged backup hashed %d bytes: the previous snapshot was not reused", second.HashedBytes)
	}

	if err := v.Close(ctx); err != nil {
		return err
	}

	start = time.Now()

	v, err = vault.Open(ctx, cfg)
	if err != nil {
		return err
	}

	if _, err := v.Backup(ctx, *source, opts); err != nil {
		return err
	}

	report("unchanged_open_s", time.Since(start).Seconds())

	stopProfile, err = startProfile(*profile, *phase == "restore")
	if err != nil {
		return err
	}

	start = time.Now()

	restored, err := v.Restore(ctx, first.SnapshotID, filepath.Join(*work, "restore"), onProgress)
	if err != nil {
		return err
	}

	report("restore_s", time.Since(start).Seconds())
	stopProfile()

	if restored.Bytes != first.Bytes || restored.Files != first.Files {
		return fmt.Errorf("restored %d files, %d bytes; backed up %d files, %d bytes", restored.Files, restored.Bytes, first.Files, first.Bytes)
	}

	if err := v.Close(ctx); err != nil {
		return err
	}

	size, blocks, err := diskUsage(cfg.Storage)
	if err != nil {
		return err
	}

	report("vault_bytes", float64(size))
	report("vault_blocks_bytes", float64(blocks))
	report("files", float64(first.Files))
	report("source_bytes", float64(first.Bytes))

	return nil
}

// backupOnce backs source up into a new vault and prints the snapshot id.
func backupOnce(ctx context.Context, cfg vault.Config, source string, opts vault.BackupOptions, memProfile string) error {
	v, err := vault.Open(ctx, cfg)
	if err != nil {
		return err
	}

	// The heap is watched from here: opening spends 64 MiB on the
	// password's key derivation (scrypt), which is garbage once open.
	stop := watchHeap(memProfile)
	res, err := v.Backup(ctx, source, opts)
	stop()

	if err != nil {
		v.Close(ctx)
		return err
	}

	fmt.Printf("snapshot_id %s\n", res.SnapshotID)

	return v.Close(ctx)
}

// restoreOnce opens the vault, untimed, and times one restore of id into
// target, profiled when profile is set.
func restoreOnce(ctx context.Context, cfg vault.Config, id, target, profile string, progress func(vault.Progress)) error {
	if target == "" {
		return errors.New("-restore needs -target")
	}

	v, err := vault.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer v.Close(ctx)

	stopProfile, err := startProfile(profile, true)
	if err != nil {
		return err
	}

	start := time.Now()

	if _, err := v.Restore(ctx, id, target, progress); err != nil {
		return err
	}

	report("restore_s", time.Since(start).Seconds())
	stopProfile()

	return nil
}

// startProfile starts a CPU profile into file when on is true and file is
// set; the returned function stops it.
func startProfile(file string, on bool) (func(), error) {
	if file == "" || !on {
		return func() {}, nil
	}

	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}

	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}

	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func report(name string, value float64) {
	fmt.Printf("%s %.3f\n", name, value)
}

// diskUsage returns the apparent size and the allocated size of a folder.
func diskUsage(dir string) (size, blocks int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		fi, err := d.Info()
		if err != nil {
			return err
		}

		size += fi.Size()

		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			blocks += st.Blocks * 512
		}

		return nil
	})

	return size, blocks, err
}

// watchHeap samples the heap every 20 ms: each time the live heap of the
// last garbage collection reaches a new high, it writes a heap profile
// (which is as of that collection) into file. The returned function stops
// it and prints that high as peak_live_heap_bytes, and the most the heap
// held from the OS at once (its share of the process's memory) as
// peak_heap_held_bytes.
func watchHeap(file string) func() {
	if file == "" {
		return func() {}
	}

	done := make(chan struct{})
	finished := make(chan [2]uint64)

	go func() {
		var live, held uint64

		samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()

		for {
			metrics.Read(samples)
			if l := samples[0].Value.Uint64(); l > live {
				live = l
				if f, err := os.Create(file); err == nil {
					pprof.Lookup("heap").WriteTo(f, 0) //nolint:errcheck
					f.Close()
				}
			}

			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			held = max(held, ms.HeapSys-ms.HeapReleased)

			select {
			case <-done:
				finished <- [2]uint64{live, held}
				return
			case <-tick.C:
			}
		}
	}()

	return func() {
		close(done)
		peaks := <-finished
		report("peak_live_heap_bytes", float64(peaks[0]))
		report("peak_heap_held_bytes", float64(peaks[1]))
	}
}
