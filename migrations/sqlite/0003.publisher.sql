-- Quantities are integer micro-units (see 0001).
-- What each platform should show: per platform and mapped warehouse, one row per SKU.
CREATE TABLE publisher_desired (
    platform TEXT NOT NULL,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    platform_warehouse TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (platform, sku, warehouse)
);
CREATE INDEX publisher_desired_by_change ON publisher_desired (platform, position);

-- The view's own available quantity per stock, and its SKU and warehouse.
CREATE TABLE publisher_stocks (
    stock_id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    available INTEGER NOT NULL
);
CREATE INDEX publisher_stocks_by_warehouse ON publisher_stocks (warehouse);

-- Each platform's warehouse mapping (ledger warehouse -> platform warehouse), as JSON.
CREATE TABLE publisher_platforms (
    platform TEXT PRIMARY KEY,
    platform_id TEXT NOT NULL,
    warehouses TEXT NOT NULL
);
