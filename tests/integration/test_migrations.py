"""Migrations: applied once, and never stopped for good by a process killed mid-migration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from yoyo import get_backend

from adapters.database import parse_database_url
from adapters.migrations import migrate


def _yoyo_url(database_url: str) -> str:
    database = parse_database_url(database_url)
    if not database.is_postgres:
        return f"sqlite:///{database.sqlite_path}"
    e = database.env
    return (
        f"postgresql+psycopg://{e['POSTGRES_USER']}@{e['POSTGRES_HOST']}:{e['POSTGRES_PORT']}"
        f"/{e['POSTGRES_DBNAME']}?schema={database.schema}"
    )


def test_a_second_run_applies_nothing(database_url: str) -> None:
    database = parse_database_url(database_url)
    assert migrate(database) >= 3
    assert migrate(database) == 0


def test_a_lock_left_by_a_killed_migrator_does_not_block_the_next_start(
    database_url: str,
) -> None:
    """A process SIGKILLed while it held yoyo's lock leaves the lock row behind; the next start
    must still migrate, at once, instead of timing out on it forever."""
    database = parse_database_url(database_url)
    migrate(database)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    backend = get_backend(_yoyo_url(database_url))
    try:
        backend.create_lock_table()
        with backend.transaction():
            backend.execute(
                f"INSERT INTO {backend.lock_table_quoted} (locked, ctime, pid) "
                "VALUES (1, CURRENT_TIMESTAMP, :pid)",
                {"pid": holder.pid},
            )
    finally:
        backend.connection.close()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    assert migrate(database) == 0  # yoyo alone waits 10 s, then raises LockTimeout
