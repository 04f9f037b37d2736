DROP INDEX IF EXISTS movement_report_backdated;
DROP INDEX IF EXISTS movement_report_by_latest;
ALTER TABLE movement_report DROP COLUMN latest_occurred_at;
ALTER TABLE movement_report DROP COLUMN backdated;
ALTER TABLE movement_report_stocks DROP COLUMN latest_occurred_at;
