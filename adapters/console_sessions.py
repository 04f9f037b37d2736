"""The ``console_sessions`` table (migration 0012): who is signed in, by the hash of a cookie.

The cookie's secret never reaches the database, a log or an event: only its SHA-256 does, so
a copy of this table signs nobody in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# last_seen is written at most this often per session: a page that polls every second must
# not turn every read into a write.
TOUCH_EVERY = 60.0


@dataclass(frozen=True)
class ConsoleSession:
    user_name: str
    csrf_token: str
    created_at: float
    last_seen: float


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionStore:
    def __init__(self, datastore: Any, is_postgres: bool, idle_seconds: float) -> None:
        self.datastore = datastore
        self.is_postgres = is_postgres
        self.idle_seconds = idle_seconds

    def _q(self, sql: str) -> str:
        if not self.is_postgres:
            return sql
        table = f'"{self.datastore.schema}"."console_sessions"'
        return re.sub(r"\bconsole_sessions\b", table, sql).replace("?", "%s")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as c:
            yield c

    def open(self, user_name: str) -> tuple[str, ConsoleSession]:
        """A new session: its secret (for the cookie, never stored) and the session."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        session = ConsoleSession(user_name, secrets.token_urlsafe(32), now, now)
        with self._tx() as c:
            # Signing in is when old sessions are swept: nothing else needs a timer.
            c.execute(
                self._q("DELETE FROM console_sessions WHERE last_seen < ?"),
                (now - self.idle_seconds,),
            )
            c.execute(
                self._q(
                    "INSERT INTO console_sessions "
                    "(session_hash, user_name, csrf_token, created_at, last_seen) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                (_hash(secret), user_name, session.csrf_token, now, now),
            )
        return secret, session

    def find(self, secret: str) -> ConsoleSession | None:
        """The session of a cookie's secret, if it exists and was used within the idle time;
        using it keeps it alive."""
        if not secret or len(secret) > 100:
            return None
        key = _hash(secret)
        now = time.time()
        with self._tx() as c:
            c.execute(
                self._q(
                    "SELECT user_name, csrf_token, created_at, last_seen "
                    "FROM console_sessions WHERE session_hash = ?"
                ),
                (key,),
            )
            row = c.fetchone()
            if row is None:
                return None
            session = ConsoleSession(
                row["user_name"], row["csrf_token"], row["created_at"], row["last_seen"]
            )
            if session.last_seen < now - self.idle_seconds:
                c.execute(self._q("DELETE FROM console_sessions WHERE session_hash = ?"), (key,))
                return None
            if session.last_seen < now - TOUCH_EVERY:
                c.execute(
                    self._q("UPDATE console_sessions SET last_seen = ? WHERE session_hash = ?"),
                    (now, key),
                )
        return session

    def close(self, secret: str) -> None:
        with self._tx() as c:
            c.execute(
                self._q("DELETE FROM console_sessions WHERE session_hash = ?"), (_hash(secret),)
            )

    def close_all(self, user_name: str) -> None:
        with self._tx() as c:
            c.execute(self._q("DELETE FROM console_sessions WHERE user_name = ?"), (user_name,))
