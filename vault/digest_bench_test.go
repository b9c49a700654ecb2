package vault

import (
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkChecksumRestore restores a tree (VIGIL_BENCH_SOURCE, default
// /usr/local/go) into VIGIL_BENCH_DIR (default a temporary folder; the
// vault lives there too) two ways, in turn in each iteration: a plain
// restore, and a restore taking digests followed by a 100%
// CompareDigests, the vault work of a restore test with `checksum:
// {sample_percent: 100}`. It reports each side's wall and CPU seconds per
// iteration, and the ratios of their sums; run it with -benchtime 5x.
// The checked side is also reported in its two parts, and each part runs
// under a pprof label (phase=plain, digests or compare), so that a CPU
// profile can be split with -tagfocus.
func BenchmarkChecksumRestore(b *testing.B) {
	ctx := context.Background()
	v, dir, snap := benchVault(b, "checksum-bench-")

	var plainWall, plainCPU, checkedWall, checkedCPU, digestWall, digestCPU, compareWall, compareCPU time.Duration

	b.ResetTimer()

	for i := range b.N {
		target := filepath.Join(dir, "plain-"+strconv.Itoa(i))
		w0, c0 := time.Now(), cpuTime()

		pprof.Do(ctx, pprof.Labels("phase", "plain"), func(ctx context.Context) {
			if _, err := v.Restore(ctx, snap.SnapshotID, target, nil); err != nil {
				b.Fatal(err)
			}
		})

		plainWall += time.Since(w0)
		plainCPU += cpuTime() - c0

		b.StopTimer()
		os.RemoveAll(target) //nolint:errcheck
		b.StartTimer()

		target = filepath.Join(dir, "checked-"+strconv.Itoa(i))
		w0, c0 = time.Now(), cpuTime()

		var res RestoreResult

		pprof.Do(ctx, pprof.Labels("phase", "digests"), func(ctx context.Context) {
			var err error
			if res, err = v.RestoreWith(ctx, snap.SnapshotID, target, RestoreOptions{Digests: true}); err != nil {
				b.Fatal(err)
			}
		})

		digestWall += time.Since(w0)
		digestCPU += cpuTime() - c0
		w1, c1 := time.Now(), cpuTime()

		pprof.Do(ctx, pprof.Labels("phase", "compare"), func(ctx context.Context) {
			cmp, err := v.CompareDigests(ctx, snap.SnapshotID, target, 100, res.Digests)
			if err != nil || len(cmp.Mismatches) > 0 || cmp.VaultBytes != 0 {
				b.Fatalf("compare: %v, mismatches %q, %d bytes from the vault", err, cmp.Mismatches, cmp.VaultBytes)
			}
		})

		compareWall += time.Since(w1)
		compareCPU += cpuTime() - c1
		checkedWall += time.Since(w0)
		checkedCPU += cpuTime() - c0

		b.StopTimer()
		os.RemoveAll(target) //nolint:errcheck
		b.StartTimer()
	}

	n := float64(b.N)
	b.ReportMetric(plainWall.Seconds()/n, "plain-s/op")
	b.ReportMetric(checkedWall.Seconds()/n, "checked-s/op")
	b.ReportMetric(checkedWall.Seconds()/plainWall.Seconds(), "wall-ratio")
	b.ReportMetric(plainCPU.Seconds()/n, "plain-cpu-s/op")
	b.ReportMetric(checkedCPU.Seconds()/n, "checked-cpu-s/op")
	b.ReportMetric(checkedCPU.Seconds()/plainCPU.Seconds(), "cpu-ratio")
	// the two parts of the checked side: the restore taking digests,
	// against the plain restore, and the comparison alone
	b.ReportMetric(digestWall.Seconds()/n, "digests-s/op")
	b.ReportMetric(digestCPU.Seconds()/n, "digests-cpu-s/op")
	b.ReportMetric(digestCPU.Seconds()/plainCPU.Seconds(), "digests-cpu-ratio")
	b.ReportMetric(compareWall.Seconds()/n, "compare-s/op")
	b.ReportMetric(compareCPU.Seconds()/n, "compare-cpu-s/op")
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru) //nolint:errcheck

	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCompareDigests is the check alone of BenchmarkChecksumRestore:
// one restore taking digests, then a 100% CompareDigests of it per
// iteration, with its CPU seconds per iteration.
func BenchmarkCompareDigests(b *testing.B) {
	ctx := context.Background()
	v, dir, snap := benchVault(b, "compare-bench-")

	target := filepath.Join(dir, "restored")

	res, err := v.RestoreWith(ctx, snap.SnapshotID, target, RestoreOptions{Digests: true})
	if err != nil {
		b.Fatal(err)
	}

	c0 := cpuTime()

	b.ResetTimer()

	for range b.N {
		cmp, err := v.CompareDigests(ctx, snap.SnapshotID, target, 100, res.Digests)
		if err != nil || len(cmp.Mismatches) > 0 || cmp.VaultBytes != 0 {
			b.Fatalf("compare: %v, mismatches %q, %d bytes from the vault", err, cmp.Mismatches, cmp.VaultBytes)
		}
	}

	b.ReportMetric((cpuTime()-c0).Seconds()/float64(b.N), "cpu-s/op")
}

// benchVault backs VIGIL_BENCH_SOURCE (default /usr/local/go) up into a
// new vault in a new folder named from prefix under VIGIL_BENCH_DIR
// (default a temporary folder); both go when the benchmark ends.
func benchVault(b *testing.B, prefix string) (*Vault, string, BackupResult) {
	b.Helper()

	source := os.Getenv("VIGIL_BENCH_SOURCE")
	if source == "" {
		source = "/usr/local/go"
	}

	dir := os.Getenv("VIGIL_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}

	dir, err := os.MkdirTemp(dir, prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) }) //nolint:errcheck

	ctx := context.Background()

	v, err := Open(ctx, Config{Name: "bench", Storage: filepath.Join(dir, "vault"), Password: testPassword, CacheDir: filepath.Join(dir, "cache"), SoleWriter: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close(ctx) }) //nolint:errcheck

	snap, err := v.Backup(ctx, source, BackupOptions{Resource: "bench"})
	if err != nil {
		b.Fatal(err)
	}

	return v, dir, snap
}
