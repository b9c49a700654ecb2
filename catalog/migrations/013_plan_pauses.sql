-- Version 13: paused plans. A pause lives in the catalog, not in the
-- config file, so that every process on a shared catalog skips the plan
-- and a restart keeps it paused. kind is "backup" or "restore_test": a
-- backup plan and a restore testing plan may have the same name.
-- skipped_runs and last_skipped_at count the scheduled runs the pause
-- skipped, for `vigil plans list` and the console.
CREATE TABLE vigil_plan_pause (
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    paused_at       BIGINT NOT NULL,
    paused_by       TEXT NOT NULL,
    skipped_runs    BIGINT NOT NULL DEFAULT 0,
    last_skipped_at BIGINT,
    PRIMARY KEY (kind, name)
);
