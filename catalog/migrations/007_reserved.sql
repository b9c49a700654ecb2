-- Version 7 belongs to another change that is not merged on this branch;
-- this file holds its number so that version 9 applies. It does nothing,
-- and is replaced by that change's own 007 when both are merged.

SELECT 1;
