-- Retryable failures are never permanent, and each platform has one request budget and one
-- health, shared by every dispatcher. Times are epoch seconds of the dispatching processes.

-- When the first of a retrying delivery's failed attempts happened (cleared once delivered).
ALTER TABLE deliveries ADD COLUMN first_failed_at REAL;

-- The previous version gave up after a number of attempts and could no longer tell an outage
-- from a refusal: its failed rows are tried again (a refusal is refused again, once), and its
-- rows backing off are now called retrying.
UPDATE deliveries SET state = 'retrying', failed_at = NULL
WHERE state = 'failed' OR (state = 'pending' AND attempts > 0);

-- What a claim reads: the rows waiting, zero stock first, then the longest due.
CREATE INDEX deliveries_waiting ON deliveries (platform, urgent DESC, due_at)
WHERE state IN ('pending', 'retrying');

-- One row per platform, locked by each claim and each round of results.
CREATE TABLE dispatch_platforms (
    platform TEXT PRIMARY KEY,
    tokens REAL NOT NULL DEFAULT 0,                  -- the request budget (a token bucket) ...
    refilled_at REAL NOT NULL DEFAULT 0,             -- ... as it stood then
    paused_until REAL NOT NULL DEFAULT 0,            -- a 429 pauses every dispatcher until then
    failures INTEGER NOT NULL DEFAULT 0,             -- failed attempts since it last answered
    first_failure TEXT,                              -- the delivery that failed first among them
    spread INTEGER NOT NULL DEFAULT 0,               -- whether they involve another delivery too
    failing_since REAL,                              -- set while it fails (probed, not fed)
    probes INTEGER NOT NULL DEFAULT 0,               -- probes sent while failing
    probe_at REAL,                                   -- no probe before this
    last_error TEXT,
    last_error_at REAL,
    halted TEXT,                                     -- why no dispatcher can serve it (its adapter)
    halted_until REAL,                               -- shown until then unless said again
    delivered INTEGER NOT NULL DEFAULT 0,            -- attempts by outcome, for /metrics
    retryable_errors INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    unexpected_errors INTEGER NOT NULL DEFAULT 0
);
