-- Version 9: a recovery point of a folder records what its backup left
-- out because no snapshot holds it (named pipes, sockets, device files),
-- as JSON: how many of each kind, and the first of them by path.

ALTER TABLE vigil_recovery_point ADD COLUMN skipped TEXT;
