-- Version 1 of vigil's catalog: backup and restore jobs, recovery points,
-- job logs.
--
-- This file runs on SQLite and on PostgreSQL. It keeps to the types and
-- syntax both understand: TEXT, BIGINT, DOUBLE PRECISION; times are unix
-- microseconds in UTC, NULL when unset; maps are JSON in TEXT. The one thing
-- the two spell differently is written as a token in double braces that
-- migrate.go replaces per dialect (dialectTokens).
--
-- Indexes follow the list filters, each ending in created_at so that a
-- filtered list is also read newest first from the index.

CREATE TABLE vigil_backup_job (
    id                TEXT PRIMARY KEY,
    status            TEXT NOT NULL,
    status_message    TEXT NOT NULL,
    resource          TEXT NOT NULL,
    resource_type     TEXT NOT NULL,
    vault             TEXT NOT NULL,
    recovery_point_id TEXT NOT NULL,
    bytes             BIGINT NOT NULL,
    files             BIGINT NOT NULL,
    percent_done      DOUBLE PRECISION NOT NULL,
    created_by        TEXT NOT NULL,
    -- node is the vigil process running the job, so that a node restarting
    -- after a crash finds the jobs it left RUNNING and ends them.
    node              TEXT NOT NULL,
    expire_at         BIGINT,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    completed_at      BIGINT
);
CREATE INDEX vigil_backup_job_created_at ON vigil_backup_job (created_at, id);
CREATE INDEX vigil_backup_job_status ON vigil_backup_job (status, created_at);
CREATE INDEX vigil_backup_job_resource ON vigil_backup_job (resource, created_at);
CREATE INDEX vigil_backup_job_vault ON vigil_backup_job (vault, created_at);
CREATE INDEX vigil_backup_job_created_by ON vigil_backup_job (created_by, created_at);
CREATE INDEX vigil_backup_job_node ON vigil_backup_job (node, status);

CREATE TABLE vigil_restore_job (
    id                        TEXT PRIMARY KEY,
    status                    TEXT NOT NULL,
    status_message            TEXT NOT NULL,
    recovery_point_id         TEXT NOT NULL,
    resource                  TEXT NOT NULL,
    resource_type             TEXT NOT NULL,
    created_resource_id       TEXT NOT NULL,
    created_resource_location TEXT NOT NULL,
    created_by                TEXT NOT NULL,
    node                      TEXT NOT NULL,
    metadata                  TEXT,
    created_at                BIGINT NOT NULL,
    started_at                BIGINT,
    completed_at              BIGINT
);
CREATE INDEX vigil_restore_job_created_at ON vigil_restore_job (created_at, id);
CREATE INDEX vigil_restore_job_status ON vigil_restore_job (status, created_at);
CREATE INDEX vigil_restore_job_resource ON vigil_restore_job (resource, created_at);
CREATE INDEX vigil_restore_job_recovery_point_id ON vigil_restore_job (recovery_point_id, created_at);
CREATE INDEX vigil_restore_job_node ON vigil_restore_job (node, status);

CREATE TABLE vigil_recovery_point (
    id            TEXT PRIMARY KEY,
    vault         TEXT NOT NULL,
    resource      TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    status        TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    files         BIGINT NOT NULL,
    backup_job_id TEXT NOT NULL,
    snapshot_id   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    completed_at  BIGINT,
    expire_at     BIGINT
);
CREATE INDEX vigil_recovery_point_created_at ON vigil_recovery_point (created_at, id);
CREATE INDEX vigil_recovery_point_vault ON vigil_recovery_point (vault, created_at);
CREATE INDEX vigil_recovery_point_resource ON vigil_recovery_point (resource, created_at);
CREATE INDEX vigil_recovery_point_status ON vigil_recovery_point (status, created_at);
CREATE INDEX vigil_recovery_point_expire_at ON vigil_recovery_point (expire_at);

-- One row per line of a backup or restore job's own log; id gives the order.
CREATE TABLE vigil_job_log (
    id        {{autoincrement_primary_key}},
    job_id    TEXT NOT NULL,
    logged_at BIGINT NOT NULL,
    message   TEXT NOT NULL
);
CREATE INDEX vigil_job_log_job_id ON vigil_job_log (job_id, id);
