-- Version 15: verification coverage. Each pack of a vault that has been
-- read back and checked, with when, by what (a restore test, a verify, the
-- rolling verification) and what was wrong with it, so that a vault's
-- rolling verification reads the least recently checked packs first and
-- coverage can be shown. One row per pack: its latest read.

CREATE TABLE vigil_pack_read (
    vault   TEXT NOT NULL,
    pack    TEXT NOT NULL,
    length  BIGINT NOT NULL,
    read_at BIGINT NOT NULL,
    read_by TEXT NOT NULL,
    -- The first problem found in the pack; empty when it read back sound.
    damage  TEXT NOT NULL,
    PRIMARY KEY (vault, pack)
);
