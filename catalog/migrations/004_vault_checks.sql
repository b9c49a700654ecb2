-- Version 4: the outcome of each vault verification, so that a vault's
-- last check can be shown.

CREATE TABLE vigil_vault_check (
    id                {{autoincrement_primary_key}},
    vault             TEXT NOT NULL,
    checked_at        BIGINT NOT NULL,
    read_data_percent DOUBLE PRECISION NOT NULL,
    snapshots         BIGINT NOT NULL,
    problems          BIGINT NOT NULL,
    -- The first problems found, one per line.
    summary           TEXT NOT NULL
);
CREATE INDEX vigil_vault_check_vault ON vigil_vault_check (vault, checked_at);
