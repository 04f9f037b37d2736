"""A database password may hold anything: the server and `ledger migrate` start, and connect
where the URL says (the old connection string let `host=` in a password redirect it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import start_server, stop_server

pytestmark = pytest.mark.postgres

PASSWORD = 'p w\'d=x host=nowhere.invalid port=1 "q"'


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{quote(PASSWORD, safe='')}@", 1)


def test_a_password_with_a_space_a_quote_and_equals_signs_works(
    postgres_url: str, tmp_path: Path
) -> None:
    url = with_password(postgres_url)
    assert PASSWORD not in url
    migrated = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "migrate"],
        env={**os.environ, "LEDGER_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    running = start_server(url, tmp_path)
    try:
        with running.client() as client:
            body = {"movement_id": "m1", "sku": "SKU-1", "kind": "invoice", "quantity": "3"}
            assert client.post("/movements", json=body).status_code == 201
            assert client.get("/stock/SKU-1").json()["physical"] == "3"
    finally:
        stop_server(running)
