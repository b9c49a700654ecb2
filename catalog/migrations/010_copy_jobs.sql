-- Version 10: copy jobs, which copy a recovery point into another vault,
-- and the link from a copy to the recovery point it was copied from.

CREATE TABLE vigil_copy_job (
    id                       TEXT PRIMARY KEY,
    status                   TEXT NOT NULL,
    status_message           TEXT NOT NULL,
    resource                 TEXT NOT NULL,
    resource_type            TEXT NOT NULL,
    source_vault             TEXT NOT NULL,
    source_recovery_point_id TEXT NOT NULL,
    vault                    TEXT NOT NULL,
    -- recovery_point_id is the copy's id, chosen when the job is created:
    -- the copy is inserted under it once, whatever retries the job has.
    recovery_point_id        TEXT NOT NULL,
    bytes                    BIGINT NOT NULL,
    files                    BIGINT NOT NULL,
    percent_done             DOUBLE PRECISION NOT NULL,
    created_by               TEXT NOT NULL,
    node                     TEXT NOT NULL,
    expire_at                BIGINT,
    created_at               BIGINT NOT NULL,
    started_at               BIGINT,
    completed_at             BIGINT
);
CREATE INDEX vigil_copy_job_created_at ON vigil_copy_job (created_at, id);
CREATE INDEX vigil_copy_job_status ON vigil_copy_job (status, created_at);
CREATE INDEX vigil_copy_job_resource ON vigil_copy_job (resource, created_at);
CREATE INDEX vigil_copy_job_vault ON vigil_copy_job (vault, created_at);
CREATE INDEX vigil_copy_job_source ON vigil_copy_job (source_recovery_point_id, created_at);
CREATE INDEX vigil_copy_job_node ON vigil_copy_job (node, status);

ALTER TABLE vigil_recovery_point ADD COLUMN source_recovery_point_id TEXT NOT NULL DEFAULT '';
ALTER TABLE vigil_recovery_point ADD COLUMN copy_job_id TEXT NOT NULL DEFAULT '';
