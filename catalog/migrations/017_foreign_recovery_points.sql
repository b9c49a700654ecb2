-- Version 17: a recovery point listed from a foreign vault (a restic or
-- Kopia repository another tool writes) keeps what that tool recorded of
-- its snapshot: the tool, its snapshot id, host, path and tags (JSON);
-- NULL for the points vigil made.

ALTER TABLE vigil_recovery_point ADD COLUMN foreign_snapshot TEXT;
