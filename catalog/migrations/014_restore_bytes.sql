-- Version 14: how many bytes of file content a restore test read from
-- the vault (its restore, and checksum validators that compared files
-- with the vault), and how many its restore wrote into the copy.

ALTER TABLE vigil_restore_job ADD COLUMN vault_read_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vigil_restore_job ADD COLUMN written_bytes BIGINT NOT NULL DEFAULT 0;
