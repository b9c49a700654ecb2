-- Version 6: how many times the deletion of a restore test's copy was
-- tried, so that vigil gives up after a bounded number and says so.

ALTER TABLE vigil_restore_job ADD COLUMN deletion_attempts BIGINT NOT NULL DEFAULT 0;
