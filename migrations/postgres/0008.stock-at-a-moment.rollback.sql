-- Used by the tests of the upgrade. A rebuilt table's indexes alternate between two names.
DROP INDEX IF EXISTS movement_report_backdated;
DROP INDEX IF EXISTS movement_report_backdated__r;
DROP INDEX IF EXISTS movement_report_by_latest;
DROP INDEX IF EXISTS movement_report_by_latest__r;
ALTER TABLE movement_report DROP COLUMN IF EXISTS latest_occurred_at;
ALTER TABLE movement_report DROP COLUMN IF EXISTS backdated;
ALTER TABLE movement_report_stocks DROP COLUMN IF EXISTS latest_occurred_at;
