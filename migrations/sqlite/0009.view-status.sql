-- What each process running the views says about them, so that every API process (which may
-- run none) can tell whether the views are running and whether one is failing. One row per
-- view and process; times are epoch seconds of the reporting process. A row whose seen_at is
-- older than the bound in projections/status.py is a process that stopped reporting.
CREATE TABLE IF NOT EXISTS view_status (
    view TEXT NOT NULL,
    process TEXT NOT NULL,                   -- host:pid:nonce of the process running the view
    failing INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,                         -- behind a token (/views)
    problem TEXT,                            -- what /readyz may show without one
    changed_at REAL NOT NULL,                -- when failing, last_error or problem last changed
    seen_at REAL NOT NULL,                   -- the process's last heartbeat
    PRIMARY KEY (view, process)
);
