-- Version 3: database recovery points record what their dump holds (the
-- server version and each table's row count), as JSON, so that restore
-- tests can check a restored database against it.

ALTER TABLE vigil_recovery_point ADD COLUMN database_info TEXT;
