-- Version 8: a recovery point that a vault verify or repair found damaged
-- or missing is DAMAGED, and says why.

ALTER TABLE vigil_recovery_point ADD COLUMN status_message TEXT NOT NULL DEFAULT '';
