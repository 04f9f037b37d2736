-- Stock levels per (SKU, warehouse). Quantities are integer micro-units (value x 10^6):
-- SQLite has no exact decimal type, and integers add exactly inside one UPDATE.
CREATE TABLE stock_levels (
    stock_id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    physical_micros INTEGER NOT NULL DEFAULT 0,
    reserved_micros INTEGER NOT NULL DEFAULT 0,
    position INTEGER NOT NULL,
    UNIQUE (sku, warehouse)
);
CREATE INDEX stock_levels_by_warehouse ON stock_levels (warehouse, sku);
