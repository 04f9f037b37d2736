"""Apply the SQL files in ``migrations/`` with yoyo-migrations (SQLite and psycopg 3 alike)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import psycopg
from yoyo import get_backend, read_migrations

from adapters.database import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrate(database: Database) -> int:
    """Bring the view tables up to date; returns how many migrations were applied."""
    if database.is_postgres:
        _ensure_schema(database)
        e = database.env
        password = (
            f":{quote(e['POSTGRES_PASSWORD'], safe='')}" if e.get("POSTGRES_PASSWORD") else ""
        )
        url = (
            f"postgresql+psycopg://{quote(e['POSTGRES_USER'], safe='')}{password}"
            f"@{e['POSTGRES_HOST']}:{e['POSTGRES_PORT']}/{quote(e['POSTGRES_DBNAME'], safe='')}"
            f"?schema={database.schema}"
        )
        folder = MIGRATIONS / "postgres"
    else:
        url = f"sqlite:///{database.sqlite_path}"
        folder = MIGRATIONS / "sqlite"
    backend = get_backend(url)
    try:
        migrations = read_migrations(str(folder))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return len(pending)
    finally:
        backend.connection.close()


def _ensure_schema(database: Database) -> None:
    with psycopg.connect(database.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"')
