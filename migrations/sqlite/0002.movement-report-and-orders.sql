-- Quantities are integer micro-units and moments fixed-width UTC text (see 0001).
-- The movement report: one row per stock event, keyed by its position in the event store.
CREATE TABLE movement_report (
    position INTEGER PRIMARY KEY,
    movement_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity_change INTEGER NOT NULL,
    reserved_change INTEGER NOT NULL,
    physical_after INTEGER NOT NULL,
    reserved_after INTEGER NOT NULL,
    counted INTEGER,
    reference TEXT,
    note TEXT,
    recorded_by TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX movement_report_by_sku ON movement_report (sku, position);
CREATE INDEX movement_report_by_date ON movement_report (occurred_at, position);
CREATE INDEX movement_report_by_reference ON movement_report (reference, position);

-- The report's running balance per stock, and the SKU and warehouse its events do not carry.
CREATE TABLE movement_report_stocks (
    stock_id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    physical INTEGER NOT NULL,
    reserved INTEGER NOT NULL
);

-- Orders by platform, status and blocked reason.
CREATE TABLE order_list (
    order_key TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    order_id TEXT NOT NULL,
    status TEXT NOT NULL,
    carrier TEXT,
    blocked_reason TEXT,
    items INTEGER NOT NULL,
    reserved INTEGER NOT NULL,
    stock_posted INTEGER NOT NULL,
    invoice_number TEXT,
    deleted INTEGER NOT NULL,
    imported_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    first_position INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX order_list_by_import ON order_list (first_position);
CREATE INDEX order_list_by_platform ON order_list (platform, status, first_position);
CREATE INDEX order_list_blocked ON order_list (first_position) WHERE blocked_reason IS NOT NULL;

