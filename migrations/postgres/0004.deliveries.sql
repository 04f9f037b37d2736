-- What the dispatcher owes each platform: one row per (platform, kind, subject), holding the
-- newest value wanted, what was last delivered, and the retry state. Times are epoch seconds of
-- the dispatching processes' clocks.
CREATE TABLE deliveries (
    platform TEXT NOT NULL,
    kind TEXT NOT NULL,               -- stock | order
    subject TEXT NOT NULL,            -- the SKU, or the order id
    scope TEXT NOT NULL,              -- the ledger warehouse, or '' for an order
    payload TEXT NOT NULL,            -- JSON of the newest value wanted
    position BIGINT NOT NULL,         -- of the event that produced it
    urgent BOOLEAN NOT NULL,          -- stock that just reached zero goes first
    state TEXT NOT NULL,              -- pending | sent | failed
    attempts INTEGER NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    wanted_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION,
    last_error TEXT,
    failed_at DOUBLE PRECISION,
    sent TEXT,                        -- JSON of what the platform last accepted
    sent_position BIGINT,
    sent_at DOUBLE PRECISION,
    PRIMARY KEY (platform, kind, subject, scope)
);
CREATE INDEX deliveries_due ON deliveries (platform, state, urgent, due_at);

-- How far each platform's dispatching has read the views it follows (keyset position).
CREATE TABLE dispatch_cursors (
    platform TEXT NOT NULL,
    kind TEXT NOT NULL,
    position BIGINT NOT NULL,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    PRIMARY KEY (platform, kind)
);

-- Periodic platform jobs (feed robot, payment follow-up, drift repair) run in one process at a
-- time; a lease that expires lets another take over when its holder dies.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until DOUBLE PRECISION NOT NULL,
    last_run_at DOUBLE PRECISION,
    last_report TEXT
);

CREATE INDEX IF NOT EXISTS order_list_by_change ON order_list (platform, position);
