"""Apply the SQL files in ``migrations/`` with yoyo-migrations (SQLite and psycopg 3 alike)."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
from yoyo import read_migrations
from yoyo.backends import get_backend_class
from yoyo.connections import DatabaseURI
from yoyo.migrations import default_migration_table

from adapters.database import Database

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrate(database: Database) -> int:
    """Bring the view tables up to date; returns how many migrations were applied."""
    if database.is_postgres:
        _ensure_schema(database)
        parameters = database.connection_parameters()
        uri = DatabaseURI(
            scheme="postgresql+psycopg",
            username=parameters["user"],
            password=parameters.get("password"),
            hostname=parameters["host"],
            port=int(parameters["port"]),
            database=parameters["dbname"],
            args={"schema": database.schema},
        )
        folder = MIGRATIONS / "postgres"
    else:
        # yoyo opens "file:<path>?cache=shared" as an SQLite URI, which decodes escapes.
        path = quote(database.sqlite_path, safe="/")
        uri = DatabaseURI("sqlite", None, None, None, None, path, {})
        folder = MIGRATIONS / "sqlite"
    with _held_while_alive(database):
        # The URI's parts as values, not as a URL for yoyo to parse again: a password or a
        # socket folder needs no escaping that could go wrong.
        backend = get_backend_class(uri.scheme)(uri, default_migration_table)
        backend.init_database()
        try:
            # yoyo's own lock is a row that outlives a process killed while holding it, which
            # would stop every later start for good; ours dies with its holder, so any row
            # found here is stale.
            backend.create_lock_table()
            backend.break_lock()
            migrations = read_migrations(str(folder))
            with backend.lock():
                pending = backend.to_apply(migrations)
                backend.apply_migrations(pending)
            if pending:
                log.info(
                    "applied %d migration(s): %s", len(pending), ", ".join(m.id for m in pending)
                )
            return len(pending)
        finally:
            backend.connection.close()


MIGRATION_LOCK_KEY = 0x6C65646D  # "ledm": the advisory lock key that serialises migrations


@contextmanager
def _held_while_alive(database: Database) -> Iterator[None]:
    """Serialise migrations with a lock the operating system or PostgreSQL releases when its
    holder dies: a session advisory lock, or an flock on a file beside the SQLite database."""
    if database.is_postgres:
        with psycopg.connect(database.psycopg_conninfo(), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            yield
        return
    with open(f"{database.sqlite_path}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _ensure_schema(database: Database) -> None:
    with psycopg.connect(database.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"')
