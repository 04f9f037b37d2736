"""One logging configuration for every command: time, level, logger and message on each line,
or one JSON object per line with LEDGER_LOG_FORMAT=json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.e2e.conftest import start_server, stop_server

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+ \S"
)


def test_the_server_logs_time_level_logger_and_message(sqlite_url: str, tmp_path: Path) -> None:
    running = start_server(sqlite_url, tmp_path)
    httpx.get(f"{running.url}/healthz")
    stop_server(running)
    lines = running.log.read_text().splitlines()
    assert lines
    assert all(TEXT_LINE.match(line) for line in lines), lines
    # INFO lines of the ledger's own modules are kept, not only uvicorn's warnings.
    assert any(" INFO adapters.migrations applied " in line for line in lines)


def test_json_logs_are_one_object_per_line(sqlite_url: str, tmp_path: Path) -> None:
    running = start_server(sqlite_url, tmp_path, LEDGER_LOG_FORMAT="json")
    with running.client() as client:
        client.get("/healthz")
    stop_server(running)
    entries = [json.loads(line) for line in running.log.read_text().splitlines()]
    assert entries
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["logger"] == "adapters.migrations" and e["level"] == "INFO" for e in entries)


def ledger(command: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one ``ledger`` command as a user would, in a folder of its own."""
    return subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )


def test_cli_commands_log_the_same_way(sqlite_url: str, tmp_path: Path) -> None:
    done = ledger("migrate", tmp_path, LEDGER_DATABASE_URL=sqlite_url, LEDGER_LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(e["message"].startswith("applied ") for e in entries)


def test_a_bad_setting_is_named_without_a_traceback(sqlite_url: str, tmp_path: Path) -> None:
    done = ledger("migrate", tmp_path, LEDGER_DATABASE_URL=sqlite_url, LEDGER_LOG_LEVEL="loud")
    assert done.returncode == 2
    assert "LEDGER_LOG_LEVEL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_broken_secret_key_does_not_stop_the_command_that_mends_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = {"LEDGER_DATABASE_URL": sqlite_url, "LEDGER_SECRET_KEY": "not-a-key"}
    refused = ledger("migrate", tmp_path, **env)
    assert refused.returncode == 2
    assert "LEDGER_SECRET_KEY" in refused.stderr
    assert "not-a-key" not in refused.stderr
    printed = ledger("secret-key", tmp_path, **env)
    assert printed.returncode == 0, printed.stderr
    Fernet(printed.stdout.strip())  # a usable key
