-- GET /stock/{sku}?at= without replaying the stock's history (projections/history.py).
-- Each report row gets the latest occurred_at of its stock's rows up to and including it (a
-- running maximum in position order) and whether it is dated before an earlier row of its
-- stock (backdated). The running maximum never decreases with position, so the last row whose
-- running maximum is not after a moment is one index lookup, and its balances count every
-- earlier row; the only later rows dated by then are backdated ones, which the partial index
-- holds. Moments are fixed-width UTC text, so max() and < compare them in time order.
-- SQLite adds a NOT NULL column only with a default: every row is set below, and the view
-- always writes both columns.
ALTER TABLE movement_report ADD COLUMN latest_occurred_at TEXT NOT NULL DEFAULT '';
ALTER TABLE movement_report ADD COLUMN backdated INTEGER NOT NULL DEFAULT 0;

-- Existing rows get their values here, from the rows themselves (window functions and
-- UPDATE ... FROM: SQLite 3.33 or later): no rebuild is needed.
UPDATE movement_report
SET latest_occurred_at = w.latest,
    backdated = coalesce(movement_report.occurred_at < w.latest_before, 0)
FROM (
    SELECT
        position,
        max(occurred_at) OVER (
            PARTITION BY sku, warehouse ORDER BY position
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS latest,
        max(occurred_at) OVER (
            PARTITION BY sku, warehouse ORDER BY position
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS latest_before
    FROM movement_report
) AS w
WHERE movement_report.position = w.position;

CREATE INDEX movement_report_by_latest
    ON movement_report (sku, warehouse, latest_occurred_at, position);
CREATE INDEX movement_report_backdated
    ON movement_report (sku, warehouse, position, occurred_at) WHERE backdated;

-- The writer carries the running maximum from page to page beside the running balance
-- (NULL while the stock has no row).
ALTER TABLE movement_report_stocks ADD COLUMN latest_occurred_at TEXT;
UPDATE movement_report_stocks
SET latest_occurred_at = (
    SELECT max(occurred_at) FROM movement_report AS m
    WHERE m.sku = movement_report_stocks.sku AND m.warehouse = movement_report_stocks.warehouse
);

-- A rebuild interrupted before this upgrade left copies without these columns: drop them, so
-- that the next rebuild starts afresh (it forgets its own tracking when the copy is missing).
DROP TABLE IF EXISTS movement_report__rebuild;
DROP TABLE IF EXISTS movement_report_stocks__rebuild;
