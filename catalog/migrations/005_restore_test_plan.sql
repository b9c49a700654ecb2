-- Version 5: a restore test records the restore testing plan it ran under
-- in a field of its own; created_by says who asked, which for a test a
-- plan started is the plan, but is no foreign key to it. Tests recorded
-- before this version were created by their plan.

ALTER TABLE vigil_restore_job ADD COLUMN plan TEXT NOT NULL DEFAULT '';
UPDATE vigil_restore_job SET plan = created_by WHERE restore_test = 1;
