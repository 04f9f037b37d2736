-- Stock levels per (SKU, warehouse), with the event position that last changed each row.
CREATE TABLE stock_levels (
    stock_id UUID PRIMARY KEY,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    physical NUMERIC(38, 6) NOT NULL DEFAULT 0,
    reserved NUMERIC(38, 6) NOT NULL DEFAULT 0,
    position BIGINT NOT NULL,
    UNIQUE (sku, warehouse)
);
CREATE INDEX stock_levels_by_warehouse ON stock_levels (warehouse, sku);
