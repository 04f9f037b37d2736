-- The console's sign-in sessions. The cookie holds a random secret; only its SHA-256 is kept,
-- so this table cannot be replayed. Sessions are not events: they expire and are forgotten.
CREATE TABLE IF NOT EXISTS console_sessions (
    session_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf_token TEXT NOT NULL,                -- the forms' hidden field for this session
    created_at REAL NOT NULL,                 -- epoch seconds
    last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (user_name);
