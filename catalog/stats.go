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
		UNION ALL SELECT `+restoreType+`, status, COUNT(*) FROM vigil_restore_job GROUP BY `+restoreType+`, status
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

	// Bucket counts are summed in SQL (cast, as PostgreSQL sums BIGINTs
	// into NUMERIC), so a scrape reads one row per job
	// type, however many jobs there are.
	var sums []string
	for _, b := range bounds {
		sums = append(sums, fmt.Sprintf("CAST(COALESCE(SUM(CASE WHEN completed_at - started_at <= %d THEN 1 ELSE 0 END), 0) AS BIGINT)", int64(b*1e6)))
	}
	histogram := func(typ, from string) error {
		cols := append([]string{"COUNT(*)", "CAST(COALESCE(SUM(completed_at - started_at), 0) AS BIGINT)"}, sums...)
		q := `SELECT ` + strings.Join(cols, ", ") + ` FROM ` + from + ` AND completed_at IS NOT NULL AND started_at IS NOT NULL`
		h := DurationHistogram{Type: typ, Buckets: make([]uint64, len(bounds))}
		var count, sum int64
		counts := make([]int64, len(bounds))
		dest := []any{&count, &sum}
		for i := range counts {
			dest = append(dest, &counts[i])
		}
		if err := c.db.queryRow(ctx, q).Scan(dest...); err != nil {
			return err
		}
		h.Count, h.Sum = uint64(count), float64(sum)/1e6
		for i, n := range counts {
			h.Buckets[i] = uint64(n)
		}
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
		{`SELECT r.resource, r.validation_status, r.total_seconds FROM vigil_restore_job r
			WHERE r.restore_test = 1 AND r.validation_status IN ('SUCCESSFUL', 'FAILED', 'TIMED_OUT')
			AND r.created_at = (SELECT MAX(x.created_at) FROM vigil_restore_job x WHERE x.resource = r.resource
				AND x.restore_test = 1 AND x.validation_status IN ('SUCCESSFUL', 'FAILED', 'TIMED_OUT'))`,
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
