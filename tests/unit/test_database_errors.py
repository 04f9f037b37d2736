"""Which database errors a client may retry (503) and which are our defects (500, logged)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eventsourcing.persistence import OperationalError

from adapters.database import is_unavailable


def _raised(connection: sqlite3.Connection, statement: str) -> sqlite3.OperationalError:
    with pytest.raises(sqlite3.OperationalError) as caught:
        connection.execute(statement)
    return caught.value


def _wrapped(error: sqlite3.OperationalError) -> OperationalError:
    try:
        raise OperationalError(error) from error  # as eventsourcing's SQLite recorder does
    except OperationalError as wrapped:
        return wrapped


def test_a_missing_table_is_a_defect_not_an_outage() -> None:
    error = _raised(sqlite3.connect(":memory:"), "SELECT * FROM no_such_table")
    assert not is_unavailable(error)
    assert not is_unavailable(_wrapped(error))


def test_a_locked_database_is_worth_a_retry(tmp_path: Path) -> None:
    holder = sqlite3.connect(tmp_path / "db", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(tmp_path / "db", timeout=0, isolation_level=None)
    error = _raised(other, "BEGIN IMMEDIATE")
    assert "locked" in str(error)
    assert is_unavailable(error)
    assert is_unavailable(_wrapped(error))
