"""How many API processes ``ledger serve`` runs when not told: the CPU count on PostgreSQL, one
on SQLite (one writer at a time), and the help says so."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from adapters.database import parse_database_url
from api.cli import cli
from api.processes import default_workers


def test_postgres_serves_from_every_cpu_and_sqlite_from_one_process() -> None:
    assert default_workers(parse_database_url("postgresql://u@h:5432/db")) == os.cpu_count()
    assert default_workers(parse_database_url("sqlite:///ledger.db")) == 1


def test_the_help_tells_the_default_and_the_sqlite_rule() -> None:
    shown = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "400"}).output
    text = " ".join(shown.replace("│", " ").split())
    assert "--workers" in text
    assert "LEDGER_WORKERS" in text
    assert "CPU count on PostgreSQL" in text
    assert "SQLite allows only 1" in text
