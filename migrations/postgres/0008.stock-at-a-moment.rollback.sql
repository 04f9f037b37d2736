DROP INDEX IF EXISTS movement_report_backdated;
DROP INDEX IF EXISTS movement_report_by_latest;
ALTER TABLE movement_report DROP COLUMN IF EXISTS latest_occurred_at;
ALTER TABLE movement_report DROP COLUMN IF EXISTS backdated;
ALTER TABLE movement_report_stocks DROP COLUMN IF EXISTS latest_occurred_at;
