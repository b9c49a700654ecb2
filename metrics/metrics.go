// Package metrics exposes vigil's figures in Prometheus's format: jobs by
// type and status, job durations, and per resource the last backup, the age
// of its newest recovery point, its last successful restore test and the
// recovery time that test measured; and each vault's size.
//
// Every figure is read from the catalog when Prometheus scrapes, not
// counted in memory: every node of a shared catalog reports the same, and a
// restart loses nothing. So the values are gauges and const metrics built
// at each scrape, and the job counts are counts of records, which go down
// when old records are pruned.
package metrics

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-backup/vigil/catalog"
	"github.com/vigil-backup/vigil/config"
)

// Buckets are the bounds of the job duration histogram, in seconds: a
// restore test of a small app takes a fraction of a second, a first backup
// of a large tree hours.
var Buckets = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600}

// scrapeTimeout bounds reading the catalog and sizing vaults for a scrape.
const scrapeTimeout = 20 * time.Second

var (
	jobsDesc = prometheus.NewDesc("vigil_jobs",
		"Jobs in the catalog, by type (backup, restore, restore_test, copy) and status.", []string{"type", "status"}, nil)
	durationDesc = prometheus.NewDesc("vigil_job_duration_seconds",
		"How long ended jobs ran, from start to completion, by type.", []string{"type"}, nil)
	bytesDesc = prometheus.NewDesc("vigil_backup_bytes_total",
		"Bytes read by the completed backups of a resource.", []string{"resource"}, nil)
	lastBackupDesc = prometheus.NewDesc("vigil_last_backup_timestamp_seconds",
		"When the resource's latest completed backup completed (unix time).", []string{"resource"}, nil)
	ageDesc = prometheus.NewDesc("vigil_recovery_point_age_seconds",
		"Age of the resource's newest AVAILABLE recovery point: how much would be lost restoring it now (the recovery point objective as it stands).", []string{"resource"}, nil)
	lastTestDesc = prometheus.NewDesc("vigil_last_successful_restore_test_timestamp_seconds",
		"When the resource's latest SUCCESSFUL restore test completed its restore (unix time): when it was last proven restorable.", []string{"resource"}, nil)
	rtoDesc = prometheus.NewDesc("vigil_last_restore_test_rto_seconds",
		"Recovery time measured by the resource's latest restore test with a verdict: restore start to verdict.", []string{"resource"}, nil)
	successDesc = prometheus.NewDesc("vigil_last_restore_test_success",
		"1 when the resource's latest restore test with a verdict was SUCCESSFUL, 0 when it FAILED or TIMED_OUT.", []string{"resource"}, nil)
	vaultDesc = prometheus.NewDesc("vigil_vault_size_bytes",
		"Bytes the vault's storage takes.", []string{"vault"}, nil)
	unverifiedDesc = prometheus.NewDesc("vigil_vault_unverified_bytes",
		"Bytes of the vault not read back and checked within its rolling verification's window (read_back_within), as its last night measured them.", []string{"vault"}, nil)
	oldestUnverifiedDesc = prometheus.NewDesc("vigil_vault_oldest_unverified_seconds",
		"How long the vault's longest-unchecked data has gone without being read back: since its last read, or its writing if never read; 0 when all was read within the window.", []string{"vault"}, nil)
	upDesc = prometheus.NewDesc("vigil_catalog_up",
		"1 when this scrape could read the catalog.", nil, nil)
)

// Collector reads the figures at each scrape.
type Collector struct {
	cfg     config.Source
	catalog *catalog.Catalog
	sizes   *VaultSizes
	logger  *slog.Logger
	now     func() time.Time
}

// NewCollector returns a collector over the catalog and the configured
// vaults and resources, with the vaults' sizes from sizes (nil: folder
// vaults only).
func NewCollector(cfg config.Source, cat *catalog.Catalog, sizes *VaultSizes, logger *slog.Logger) *Collector {
	if sizes == nil {
		sizes = NewVaultSizes(nil, 0, logger)
	}
	return &Collector{cfg: cfg, catalog: cat, sizes: sizes, logger: logger, now: time.Now}
}

// Handler serves the collector with Go's and the process's own metrics.
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogAdapter{c.logger}})
}

// Describe sends the descriptions of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jobsDesc, durationDesc, bytesDesc, lastBackupDesc, ageDesc, lastTestDesc, rtoDesc, successDesc, vaultDesc, unverifiedDesc, oldestUnverifiedDesc, upDesc} {
		ch <- d
	}
}

// Collect reads the catalog and the vaults' storage.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	s, err := c.catalog.Stats(ctx, Buckets)
	if err != nil {
		// The catalog's figures are missing from this scrape, and
		// vigil_catalog_up says why there is a gap.
		c.logger.Error("metrics: read the catalog", "err", err)
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
	} else {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
		c.collectStats(ch, s)
		c.collectCoverage(ctx, ch)
	}
	for _, v := range c.cfg.Current().Vaults {
		// An S3 vault's figure is its last measurement, up to the
		// refresh interval old, and missing until the first one.
		if size, ok := c.sizes.Size(v); ok {
			ch <- prometheus.MustNewConstMetric(vaultDesc, prometheus.GaugeValue, float64(size.Bytes), v.Name)
		}
	}
}

func (c *Collector) collectStats(ch chan<- prometheus.Metric, s catalog.Stats) {
	for _, j := range s.Jobs {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(j.Count), j.Type, j.Status)
	}
	for _, h := range s.Durations {
		buckets := make(map[float64]uint64, len(Buckets))
		for i, b := range Buckets {
			buckets[b] = h.Buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(durationDesc, h.Count, h.Sum, buckets, h.Type)
	}
	now := c.now()
	for name, r := range s.Resources {
		if r.LastBackup != nil {
			ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(r.BytesBackedUp), name)
			ch <- prometheus.MustNewConstMetric(lastBackupDesc, prometheus.GaugeValue, unix(*r.LastBackup), name)
		}
		if r.NewestRecoveryPoint != nil {
			ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, now.Sub(*r.NewestRecoveryPoint).Seconds(), name)
		}
		if r.LastSuccessfulTest != nil {
			ch <- prometheus.MustNewConstMetric(lastTestDesc, prometheus.GaugeValue, unix(*r.LastSuccessfulTest), name)
		}
		if r.LastTestStatus != "" {
			ok := 0.0
			if r.LastTestStatus == "SUCCESSFUL" {
				ok = 1
			}
			ch <- prometheus.MustNewConstMetric(rtoDesc, prometheus.GaugeValue, r.LastTestSeconds, name)
			ch <- prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, ok, name)
		}
	}
}

// collectCoverage reports each configured vault's coverage as its last
// night of rolling verification measured it; a vault never measured has
// no figure.
func (c *Collector) collectCoverage(ctx context.Context, ch chan<- prometheus.Metric) {
	cov, err := c.catalog.Coverages(ctx)
	if err != nil {
		c.logger.Error("metrics: read the vaults' coverage", "err", err)
		return
	}
	now := c.now()
	for _, v := range c.cfg.Current().Vaults {
		m, ok := cov[v.Name]
		if !ok {
			continue
		}
		oldest := 0.0
		if m.OldestUnverified != nil {
			oldest = max(now.Sub(*m.OldestUnverified).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(unverifiedDesc, prometheus.GaugeValue, float64(m.UnverifiedBytes), v.Name)
		ch <- prometheus.MustNewConstMetric(oldestUnverifiedDesc, prometheus.GaugeValue, oldest, v.Name)
	}
}

func unix(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

// FolderSize sums the sizes of the files under dir: a local vault's
// storage. Reading the folder, rather than opening the vault, never
// creates a vault that is not there yet; ok is false when there is none.
func FolderSize(dir string) (int64, bool) {
	var total int64
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // a file that went meanwhile (maintenance)
		}
		found = true
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, found && err == nil
}

// slogAdapter lets promhttp log through slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.l.Error("metrics", "err", v) }
