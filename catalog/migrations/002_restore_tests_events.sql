-- Version 2: restore tests (validation and deletion of the restored copy,
-- measured durations), events with sequence numbers, and the delivery of
-- events to notifications.

ALTER TABLE vigil_restore_job ADD COLUMN restore_test BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vigil_restore_job ADD COLUMN validation_status TEXT NOT NULL DEFAULT '';
ALTER TABLE vigil_restore_job ADD COLUMN validation_message TEXT NOT NULL DEFAULT '';
ALTER TABLE vigil_restore_job ADD COLUMN deletion_status TEXT NOT NULL DEFAULT '';
ALTER TABLE vigil_restore_job ADD COLUMN deletion_message TEXT NOT NULL DEFAULT '';
ALTER TABLE vigil_restore_job ADD COLUMN keep_until BIGINT;
ALTER TABLE vigil_restore_job ADD COLUMN restore_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE vigil_restore_job ADD COLUMN start_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE vigil_restore_job ADD COLUMN validation_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE vigil_restore_job ADD COLUMN cleanup_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE vigil_restore_job ADD COLUMN total_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE vigil_restore_job ADD COLUMN recovery_point_age_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
-- A verdict reported through the API, as JSON, until the loop reads it.
ALTER TABLE vigil_restore_job ADD COLUMN external_validation TEXT;
-- The clean-up sweep looks for this node's restore tests whose copy is not
-- deleted yet.
CREATE INDEX vigil_restore_job_cleanup ON vigil_restore_job (node, restore_test, deletion_status);

-- seq is assigned at insert and events are inserted under a lock held to
-- commit, so seq order is commit order: a reader that asks for seq > n
-- never misses an event committed later with a smaller seq.
CREATE TABLE vigil_event (
    seq               {{autoincrement_primary_key}},
    type              TEXT NOT NULL,
    time              BIGINT NOT NULL,
    resource          TEXT NOT NULL,
    job_id            TEXT NOT NULL,
    recovery_point_id TEXT NOT NULL,
    subject           TEXT NOT NULL,
    message           TEXT NOT NULL,
    data              TEXT
);
CREATE INDEX vigil_event_job_id ON vigil_event (job_id, seq);
CREATE INDEX vigil_event_type ON vigil_event (type, seq);

CREATE TABLE vigil_delivery (
    event_seq    BIGINT NOT NULL,
    notification TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    last_error   TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (event_seq, notification)
);
