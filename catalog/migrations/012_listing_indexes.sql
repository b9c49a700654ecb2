-- Version 12: indexes for catalogs of hundreds of thousands of jobs, so
-- that a page of a list, the console's pages and a metrics scrape read an
-- index range rather than the tables. bench/listing measures them, and
-- drops exactly the indexes of this file for its "before" figures.
--
-- Lists by resource and kind of restore job, newest first: the console's
-- overview and resources pages ask for each resource's latest restore tests.
CREATE INDEX vigil_restore_job_resource_test ON vigil_restore_job (resource, restore_test, created_at);
-- Restore tests (or plain restores) newest first; with status and the
-- times, the metrics' counts and duration histograms read this index alone.
CREATE INDEX vigil_restore_job_test ON vigil_restore_job (restore_test, created_at, status, started_at, completed_at);
-- A recovery point's restore tests: without it SQLite, which vigil does
-- not ANALYZE, walks the index above, as it serves the order too.
CREATE INDEX vigil_restore_job_recovery_point_test ON vigil_restore_job (recovery_point_id, restore_test, created_at);
-- Each resource's latest verdict and latest SUCCESSFUL test, for metrics.
CREATE INDEX vigil_restore_job_verdict ON vigil_restore_job (restore_test, validation_status, resource, created_at, completed_at);
-- Each resource's completed backups (bytes, last completion) and the
-- backup duration histogram, for metrics.
CREATE INDEX vigil_backup_job_stats ON vigil_backup_job (status, resource, completed_at, started_at, bytes);
-- A vault's AVAILABLE recovery points, counted on every listing of vaults,
-- and listed newest first.
CREATE INDEX vigil_recovery_point_vault_status ON vigil_recovery_point (vault, status, created_at);
-- A resource's newest AVAILABLE recovery point: the overview's age, the
-- point a restore test picks, and the metrics' per resource.
CREATE INDEX vigil_recovery_point_status_resource ON vigil_recovery_point (status, resource, created_at);
