-- The movement report: one row per stock event, keyed by its position in the event store.
CREATE TABLE movement_report (
    position BIGINT PRIMARY KEY,
    movement_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity_change NUMERIC(38, 6) NOT NULL,
    reserved_change NUMERIC(38, 6) NOT NULL,
    physical_after NUMERIC(38, 6) NOT NULL,
    reserved_after NUMERIC(38, 6) NOT NULL,
    counted NUMERIC(38, 6),
    reference TEXT,
    note TEXT,
    recorded_by TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX movement_report_by_sku ON movement_report (sku, position);
CREATE INDEX movement_report_by_date ON movement_report (occurred_at, position);
CREATE INDEX movement_report_by_reference ON movement_report (reference, position);

-- The report's running balance per stock, and the SKU and warehouse its events do not carry.
CREATE TABLE movement_report_stocks (
    stock_id UUID PRIMARY KEY,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    physical NUMERIC(38, 6) NOT NULL,
    reserved NUMERIC(38, 6) NOT NULL
);

-- Orders by platform, status and blocked reason.
CREATE TABLE order_list (
    order_key UUID PRIMARY KEY,
    platform TEXT NOT NULL,
    order_id TEXT NOT NULL,
    status TEXT NOT NULL,
    carrier TEXT,
    blocked_reason TEXT,
    items INTEGER NOT NULL,
    reserved NUMERIC(38, 6) NOT NULL,
    stock_posted BOOLEAN NOT NULL,
    invoice_number TEXT,
    deleted BOOLEAN NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    first_position BIGINT NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX order_list_by_import ON order_list (first_position);
CREATE INDEX order_list_by_platform ON order_list (platform, status, first_position);
CREATE INDEX order_list_blocked ON order_list (first_position) WHERE blocked_reason IS NOT NULL;

-- Views on PostgreSQL now follow the store through the library's ProjectionRunner, which
-- tracks under the application's name in each view's own tracking table.
DO $$
BEGIN
    IF to_regclass('stock_levels_tracking') IS NOT NULL THEN
        UPDATE stock_levels_tracking SET application_name = 'Ledger'
        WHERE application_name = 'Ledger.stock_levels';
    END IF;
END $$;
