-- Version 16: each vault's coverage as measured after each night of
-- rolling verification: what was read back
-- within the window, what is behind, and since when. The latest row of a
-- vault feeds the metrics; its history, the console's chart.

CREATE TABLE vigil_vault_coverage (
    id                   {{autoincrement_primary_key}},
    vault                TEXT NOT NULL,
    measured_at          BIGINT NOT NULL,
    window_seconds       BIGINT NOT NULL,
    bytes                BIGINT NOT NULL,
    bytes_read           BIGINT NOT NULL,
    unverified_bytes     BIGINT NOT NULL,
    gap_bytes            BIGINT NOT NULL,
    -- Packs whose latest read found damage.
    damaged_packs        BIGINT NOT NULL,
    -- Since when the longest-unverified pack has gone unchecked; NULL when
    -- every pack was read within the window.
    oldest_unverified_at BIGINT
);
CREATE INDEX vigil_vault_coverage_vault ON vigil_vault_coverage (vault, measured_at);
