-- Version 11: the processes that run jobs (`vigil serve` and `vigil
-- worker`), each with its heartbeat, so that `vigil workers list` and the
-- console show who runs what, and the others can tell a dead one.
-- concurrency is JSON (jobs of each kind at once); running is JSON too,
-- the vigil job ids the worker ran at its last heartbeat.

CREATE TABLE vigil_worker (
    id                TEXT PRIMARY KEY,
    node              TEXT NOT NULL,
    host              TEXT NOT NULL,
    pid               BIGINT NOT NULL,
    started_at        BIGINT NOT NULL,
    last_heartbeat_at BIGINT NOT NULL,
    concurrency       TEXT NOT NULL,
    running           TEXT NOT NULL,
    -- stopped_at is set when the worker stopped cleanly; a worker that
    -- died keeps NULL and an old heartbeat.
    stopped_at        BIGINT,
    -- reaped_by is the worker that found this one dead and ended the
    -- jobs it was running; set once, by the first to claim it.
    reaped_by         TEXT
);
