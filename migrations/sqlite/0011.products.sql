-- Products for search (GET /products?q=, projections/products.py): one row per product, with
-- its name folded for search (name_key: case-folded, accents stripped) and the position that
-- last changed it; and one row per barcode a product holds (a GTIN's key is its GTIN-14).
-- Barcodes name their product by id: a product's events after the first carry only its id.
-- SKUs compare as BINARY (code point order), so a SKU prefix is one range of the SKU index.
CREATE TABLE products (
    product_id TEXT PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT,
    name_key TEXT,
    position INTEGER NOT NULL
);
CREATE TABLE product_barcodes (
    key TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    units INTEGER NOT NULL
);
CREATE INDEX product_barcodes_by_product ON product_barcodes (product_id);
