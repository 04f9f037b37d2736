"""From ``LEDGER_DATABASE_URL`` to the eventsourcing environment and a migrations URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Database:
    url: str
    backend: str  # "sqlite" or "postgres"
    env: dict[str, str]

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgres"

    @property
    def schema(self) -> str:
        return self.env.get("POSTGRES_SCHEMA", "public")

    @property
    def sqlite_path(self) -> str:
        return self.env["SQLITE_DBNAME"]

    def psycopg_conninfo(self) -> str:
        e = self.env
        parts = [
            f"host={e['POSTGRES_HOST']}",
            f"port={e['POSTGRES_PORT']}",
            f"dbname={e['POSTGRES_DBNAME']}",
            f"user={e['POSTGRES_USER']}",
        ]
        if e.get("POSTGRES_PASSWORD"):
            parts.append(f"password={e['POSTGRES_PASSWORD']}")
        return " ".join(parts)


def parse_database_url(url: str) -> Database:
    """Accept ``sqlite:///relative.db``, ``sqlite:////absolute.db`` and
    ``postgresql://user:pass@host:port/dbname[?schema=name]``."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path.removeprefix("/"))
        if not path:
            raise ValueError("a sqlite URL needs a file path, e.g. sqlite:///ledger.db")
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return Database(
            url=url,
            backend="sqlite",
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "30",
            },
        )
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        query = parse_qs(parts.query)
        schema = query.get("schema", ["public"])[0]
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid schema name {schema!r}")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": query.get("pool_size", ["5"])[0],
            "POSTGRES_MAX_OVERFLOW": "15",
            # A writer waits for the events table's lock rather than failing at once.
            "POSTGRES_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": (
                "adapters.postgres_recorder:ChunkedPostgresApplicationRecorder"
            ),
        }
        return Database(url=url, backend="postgres", env=env)
    raise ValueError(
        f"unsupported database URL {url!r}: use sqlite:///path.db or postgresql://user@host/db"
    )
