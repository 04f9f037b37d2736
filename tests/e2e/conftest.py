"""The real server, started as a process (``ledger serve``) and driven over HTTP."""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.e2e import zygote
from tests.e2e.zygote import ForkedProcess


@dataclass
class Server:
    url: str
    admin_token: str
    database_url: str
    process: subprocess.Popen[bytes] | ForkedProcess
    log: Path

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def head(self) -> int:
        return self.views()["event_store_position"]

    def views(self) -> dict:
        """The event store's position and each view's (``GET /views``, a read token)."""
        with self.client() as client:
            return client.get("/views", timeout=10).json()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# PostgreSQL servers get a secret key (they need one to store platform credentials); SQLite
# servers create their key file, as a SQLite deployment does. LEDGER_SECRET_KEY="" unsets it.
TEST_SECRET_KEY = Fernet.generate_key().decode()


# One per test process: it forks each server from a process that has imported the ledger.
_ZYGOTE = zygote.Zygote()
atexit.register(_ZYGOTE.close)


def start_server(database_url: str, workdir: Path, **env: str) -> Server:
    if database_url.startswith("postgres"):
        env = {"LEDGER_SECRET_KEY": TEST_SECRET_KEY, **env}
    for _ in range(3):
        try:
            return _start_server(database_url, workdir, env)
        except _PortTaken:  # another test process took the free port first: take another
            continue
    raise RuntimeError("no free port could be bound three times in a row")


class _PortTaken(Exception):
    pass


def _start_server(database_url: str, workdir: Path, env: dict[str, str]) -> Server:
    port = free_port()
    admin = secrets.token_urlsafe(16)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"server-{port}-{admin[:6]}.log"  # never an earlier server's log or exit
    argv = ["serve", "--port", str(port), "--log-level", "warning"]
    environment = {
        **os.environ,
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_ADMIN_TOKEN": admin,
        # A bound on ?after= waits, not a timing claim: a 50,000-row batch is 100,000
        # events for three views to read.
        "LEDGER_READ_WAIT_SECONDS": "60",
        # One process, as before `serve` defaulted to the CPU count on PostgreSQL: the suite
        # starts well over a hundred servers, and N spawned workers each import the ledger
        # anew. tests/e2e/test_serve_workers.py runs the multi-process shape.
        "LEDGER_WORKERS": "1",
        **env,
    }
    process: subprocess.Popen[bytes] | ForkedProcess
    if zygote.enabled():
        process = _ZYGOTE.start(argv, environment, workdir, log)
    else:
        process = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; main()", *argv],
            env=environment,
            cwd=workdir,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    # Generous: on a loaded machine (CI runs two test processes) a start takes seconds.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text()
            if "address already in use" in text:
                raise _PortTaken
            raise RuntimeError(f"server exited: {text}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                # Our server, or another test process's that bound the port first?
                mine = {"Authorization": f"Bearer {admin}"}
                if httpx.get(f"{url}/views", headers=mine, timeout=10).status_code == 401:
                    process.kill()
                    raise _PortTaken
                return Server(url, admin, database_url, process, log)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def stop_server(server: Server, *, expect_tracebacks: bool = False) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    text = server.log.read_text()
    if expect_tracebacks:  # a test that breaks the database or a view on purpose
        assert 'HTTP/1.1" 500' not in text, text[-4000:]
        return
    # A 500 or a traceback in the server's log is a defect whatever the client saw.
    assert "Traceback" not in text, text[-4000:]
    # (A platform's 500, which the dispatcher logs as it retries, is not ours.)
    assert 'HTTP/1.1" 500' not in text, text[-4000:]
    assert "Internal Server Error" not in text, text[-4000:]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    running = start_server(database_url, tmp_path)
    yield running
    stop_server(running)


@pytest.fixture
def pg_server(postgres_url: str, tmp_path: Path) -> Iterator[Server]:
    running = start_server(postgres_url, tmp_path)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def shared_server(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server for a whole module: for tests that check they changed nothing."""
    running = start_server(module_database_url, tmp_path_factory.mktemp("server"))
    yield running
    stop_server(running)
