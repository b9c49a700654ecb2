-- Version 16: each vault's coverage as last measured (after a night of
-- rolling verification, or when someone asked for it), for the metrics:
-- what was read back within the window, what is behind, and since when.

CREATE TABLE vigil_vault_coverage (
    vault                TEXT NOT NULL PRIMARY KEY,
    measured_at          BIGINT NOT NULL,
    window_seconds       BIGINT NOT NULL,
    bytes                BIGINT NOT NULL,
    bytes_read           BIGINT NOT NULL,
    unverified_bytes     BIGINT NOT NULL,
    gap_bytes            BIGINT NOT NULL,
    -- Since when the longest-unverified pack has gone unchecked; NULL when
    -- every pack was read within the window.
    oldest_unverified_at BIGINT
);
