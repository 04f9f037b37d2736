"""From ``LEDGER_DATABASE_URL`` to the eventsourcing environment and psycopg's connection
parameters.

The URL's parts are percent-decoded once, here, and from then on travel as separate values
(eventsourcing's pool and yoyo take keyword arguments; our own connections get a conninfo built
by psycopg, which quotes each value): a password holding a space, a quote or ``host=...`` is a
password, never a piece of a connection string.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
import psycopg_pool
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg.conninfo import make_conninfo

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Database:
    # Both may hold the password: kept out of the repr, which a log line or traceback may show.
    url: str = field(repr=False)
    backend: str  # "sqlite" or "postgres"
    env: dict[str, str] = field(repr=False)

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgres"

    @property
    def schema(self) -> str:
        return self.env.get("POSTGRES_SCHEMA", "public")

    @property
    def sqlite_path(self) -> str:
        return self.env["SQLITE_DBNAME"]

    def connection_parameters(self) -> dict[str, str]:
        e = self.env
        parameters = {
            "host": e["POSTGRES_HOST"],
            "port": e["POSTGRES_PORT"],
            "dbname": e["POSTGRES_DBNAME"],
            "user": e["POSTGRES_USER"],
        }
        if e.get("POSTGRES_PASSWORD"):
            parameters["password"] = e["POSTGRES_PASSWORD"]
        return parameters

    def psycopg_conninfo(self) -> str:
        return make_conninfo(**self.connection_parameters())


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
        host, port = _host_and_port(parts.netloc)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": host or "127.0.0.1",
            "POSTGRES_PORT": port or "5432",
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": query.get("pool_size", ["5"])[0],
            "POSTGRES_MAX_OVERFLOW": "15",
            # A writer waits for the events table's lock rather than failing at once.
            "POSTGRES_LOCK_TIMEOUT": "10",
            # How long a request waits for a connection (the library's default is 30 s): when
            # the database is gone, clients hear 503 sooner.
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": (
                "adapters.postgres_recorder:ChunkedPostgresApplicationRecorder"
            ),
        }
        return Database(url=url, backend="postgres", env=env)
    # Only the scheme is shown: the rest may hold a password.
    raise ValueError(
        f"unsupported database URL scheme {url.split(':', 1)[0]!r}: use sqlite:///path.db or "
        "postgresql://user@host/db"
    )


def _host_and_port(netloc: str) -> tuple[str, str]:
    """Host and port as written, percent-decoded (``%2Fvar%2Frun%2Fpostgresql`` is a socket
    folder): ``urlsplit``'s ``hostname`` lower-cases and keeps the escapes."""
    location = netloc.rpartition("@")[2]
    if location.startswith("["):  # [::1]:5432
        host, _, rest = location[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = location.partition(":")
    if port and not (port.isascii() and port.isdigit()):
        raise ValueError("the database URL's port must be a number")
    return unquote(host), port


# The database is down, restarting, out of connections, locked or full: worth a retry later.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,  # eventsourcing's, for the driver's; pool timeouts included
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
    sqlite3.OperationalError,  # "database is locked" beyond the busy timeout, a full disk
)

# What SQLite says when it is busy, locked, out of space or cannot open its file. Its other
# OperationalErrors ("no such table", a syntax error) are our defects, which a retry would hide.
_SQLITE_TRANSIENT = ("locked", "busy", "disk", "unable to open", "full", "readonly")


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be used now (not that we used it wrong)."""
    if not isinstance(error, UNAVAILABLE):
        return False
    cause = error if isinstance(error, sqlite3.Error) else error.__cause__
    if not isinstance(cause, sqlite3.OperationalError):
        return True
    said = str(cause).lower()
    return any(word in said for word in _SQLITE_TRANSIENT)
