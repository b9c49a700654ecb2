package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Stats is what the catalog says about all jobs and resources, for
// metrics: read at each scrape from the records themselves, so that every
// node reports the same figures and a restart loses none.
type Stats struct {
	// Jobs counts jobs by Type (backup, restore, restore_test, copy) and status.
	Jobs []JobCount
	// Durations are the started → completed times of ended jobs, per type.
	Durations []DurationHistogram
	// Resources has one entry per resource that has any record.
	Resources map[string]*ResourceStats
}

// JobCount is the number of jobs of one type in one status.
type JobCount struct {
	Type, Status string
	Count        int64
}

// DurationHistogram counts ended jobs of one type by duration: Buckets[i]
// is how many took at most the i-th bound, in seconds (cumulative).
type DurationHistogram struct {
	Type    string
	Count   uint64
	Sum     float64 // seconds
	Buckets []uint64
}

// ResourceStats is one resource's latest state.
type ResourceStats struct {
	// BytesBackedUp sums the bytes of its completed backups.
	BytesBackedUp int64
	LastBackup    *time.Time
	// NewestRecoveryPoint is when its newest AVAILABLE recovery point was
	// taken: the data a restore would bring back is that old.
	NewestRecoveryPoint *time.Time
	// LastSuccessfulTest is when its latest SUCCESSFUL restore test
	// completed its restore.
	LastSuccessfulTest *time.Time
	// LastTest is its latest restore test with a verdict: the verdict and
	// the recovery time it measured.
	LastTestStatus  string
	LastTestSeconds float64
}

// Job types in Stats.
const (
	StatsBackup      = "backup"
	StatsRestore     = "restore"
	StatsRestoreTest = "restore_test"
	StatsCopy        = "copy"
)

// Stats reads the figures; bounds are the duration histogram's bucket
// bounds in seconds, ascending.
func (c *Catalog) Stats(ctx context.Context, bounds []float64) (Stats, error) {
	s := Stats{Resources: map[string]*ResourceStats{}}
	res := func(name string) *ResourceStats {
		if s.Resources[name] == nil {
			s.Resources[name] = &ResourceStats{}
		}
		return s.Resources[name]
	}
	restoreType := `CASE WHEN restore_test = 1 THEN '` + StatsRestoreTest + `' ELSE '` + StatsRestore + `' END`

	err := c.eachRow(ctx, `SELECT '`+StatsBackup+`', status, COUNT(*) FROM vigil_backup_job GROUP BY status
		UNION ALL SELECT `+restoreType+`, status, COUNT(*) FROM vigil_restore_job GROUP BY restore_test, status
		UNION ALL SELECT '`+StatsCopy+`', status, COUNT(*) FROM vigil_copy_job GROUP BY status`,
		func(scan func(...any) error) error {
			var j JobCount
			err := scan(&j.Type, &j.Status, &j.Count)
			s.Jobs = append(s.Jobs, j)
			return err
		})
	if err != nil {
		return Stats{}, fmt.Errorf("count jobs: %w", err)
	}

	// Each ended job is counted in SQL in the first bucket its duration
	// fits (len(bounds) for none), so a scrape reads a row per bucket and
	// job type however many jobs there are; the cumulative counts are
	// summed here. One CASE per job rather than a SUM per bound: at
	// 100,000 jobs the sums took most of a second. (Sums are cast, as
	// PostgreSQL sums BIGINTs into NUMERIC.)
	bucketOf := "0"
	if len(bounds) > 0 {
		var b strings.Builder
		b.WriteString("CASE")
		for i, bound := range bounds {
			fmt.Fprintf(&b, " WHEN completed_at - started_at <= %d THEN %d", int64(bound*1e6), i)
		}
		fmt.Fprintf(&b, " ELSE %d END", len(bounds))
		bucketOf = b.String()
	}
	histogram := func(typ, from string) error {
		q := `SELECT ` + bucketOf + `, COUNT(*), CAST(COALESCE(SUM(completed_at - started_at), 0) AS BIGINT) FROM ` + from +
			` AND completed_at IS NOT NULL AND started_at IS NOT NULL GROUP BY 1`
		h := DurationHistogram{Type: typ, Buckets: make([]uint64, len(bounds))}
		var sum int64
		err := c.eachRow(ctx, q, func(scan func(...any) error) error {
			var bucket, n, bucketSum int64
			if err := scan(&bucket, &n, &bucketSum); err != nil {
				return err
			}
			h.Count += uint64(n)
			sum += bucketSum
			for i := int(bucket); i < len(bounds); i++ {
				h.Buckets[i] += uint64(n)
			}
			return nil
		})
		if err != nil {
			return err
		}
		h.Sum = float64(sum) / 1e6
		s.Durations = append(s.Durations, h)
		return nil
	}
	for typ, from := range map[string]string{
		StatsBackup:      `vigil_backup_job WHERE 1 = 1`,
		StatsRestore:     `vigil_restore_job WHERE restore_test = 0`,
		StatsRestoreTest: `vigil_restore_job WHERE restore_test = 1`,
		StatsCopy:        `vigil_copy_job WHERE 1 = 1`,
	} {
		if err := histogram(typ, from); err != nil {
			return Stats{}, fmt.Errorf("job durations: %w", err)
		}
	}

	const verdicts = `('SUCCESSFUL', 'FAILED', 'TIMED_OUT')`
	perResource := []struct {
		q    string
		scan func(scan func(...any) error) error
	}{
		{`SELECT resource, CAST(SUM(bytes) AS BIGINT), MAX(completed_at) FROM vigil_backup_job WHERE status = 'COMPLETED' GROUP BY resource`,
			func(scan func(...any) error) error {
				var name string
				var bytes, at int64
				err := scan(&name, &bytes, &at)
				r := res(name)
				r.BytesBackedUp, r.LastBackup = bytes, ptrTime(fromMicros(at))
				return err
			}},
		{`SELECT resource, MAX(created_at) FROM vigil_recovery_point WHERE status = 'AVAILABLE' GROUP BY resource`,
			func(scan func(...any) error) error {
				var name string
				var at int64
				err := scan(&name, &at)
				res(name).NewestRecoveryPoint = ptrTime(fromMicros(at))
				return err
			}},
		{`SELECT resource, MAX(completed_at) FROM vigil_restore_job
			WHERE restore_test = 1 AND validation_status = 'SUCCESSFUL' AND completed_at IS NOT NULL GROUP BY resource`,
			func(scan func(...any) error) error {
				var name string
				var at int64
				err := scan(&name, &at)
				res(name).LastSuccessfulTest = ptrTime(fromMicros(at))
				return err
			}},
		// Each resource's latest test with a verdict: its time from the
		// verdict index alone, then that one row (the greatest id, if
		// two share the time). Comparing every test with its resource's
		// latest instead took a second at 100,000 tests.
		{`SELECT r.resource, r.validation_status, r.total_seconds FROM vigil_restore_job r WHERE r.id IN (
			SELECT (SELECT x.id FROM vigil_restore_job x WHERE x.resource = m.resource AND x.restore_test = 1 AND x.created_at = m.at
					AND x.validation_status IN ` + verdicts + ` ORDER BY x.id DESC LIMIT 1)
			FROM (SELECT resource, MAX(created_at) AS at FROM vigil_restore_job
				WHERE restore_test = 1 AND validation_status IN ` + verdicts + ` GROUP BY resource) m)`,
			func(scan func(...any) error) error {
				var name, status string
				var secs float64
				err := scan(&name, &status, &secs)
				r := res(name)
				r.LastTestStatus, r.LastTestSeconds = status, secs
				return err
			}},
	}
	for _, p := range perResource {
		if err := c.eachRow(ctx, p.q, p.scan); err != nil {
			return Stats{}, fmt.Errorf("resource figures: %w", err)
		}
	}
	return s, nil
}

// eachRow runs q and calls fn with each row's Scan.
func (c *Catalog) eachRow(ctx context.Context, q string, fn func(scan func(...any) error) error) error {
	rows, err := c.db.query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

func ptrTime(t time.Time) *time.Time { return &t }
