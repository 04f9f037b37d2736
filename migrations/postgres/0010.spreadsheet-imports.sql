-- Spreadsheet imports (POST /imports): the file as uploaded, what its preview found, and
-- whether it was committed. The movements a commit records are events like any other; this
-- table only lets a preview be committed later, and lists past imports.
CREATE TABLE IF NOT EXISTS spreadsheet_imports (
    import_id TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,    -- epoch seconds
    created_by TEXT NOT NULL,
    filename TEXT,
    file_sha256 TEXT NOT NULL,
    mode TEXT NOT NULL,                      -- add | set
    warehouse TEXT NOT NULL,                 -- for rows without one
    status TEXT NOT NULL,                    -- previewed | committed
    total_rows INTEGER NOT NULL,
    valid_rows INTEGER NOT NULL,
    summary TEXT NOT NULL,                   -- JSON: errors, warnings, changes (capped)
    file BYTEA NOT NULL,
    committed_at DOUBLE PRECISION,
    committed_by TEXT,
    position BIGINT                          -- of the commit's last event
);
CREATE INDEX IF NOT EXISTS spreadsheet_imports_newest ON spreadsheet_imports (created_at DESC);
