"""``ledger serve --workers N``: N API processes and one supervised background process that
behave, seen from outside, as the one process did: what one worker writes the other reads,
health and metrics are the whole tree's, and no process outlives ``serve``."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.settings import Settings
from api.wiring import build
from ledger.movements import MovementRequest
from ledger.stock import Stock
from tests.e2e.conftest import Server, free_port, start_server, stop_server
from tests.waiting import eventually

VIEWS = {"stock_levels", "movement_report", "order_list", "publisher", "products"}


# -- the process tree, read from /proc ---------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def _tree(pid: int) -> list[int]:
    below = _children(pid)
    return below + [p for child in below for p in _tree(child)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; its parent (the tests' zygote) reaps it


def api_workers(server: Server) -> list[int]:
    return [p for p in _children(server.process.pid) if "spawn_main" in _cmdline(p)]


def background(server: Server) -> int | None:
    found = [p for p in _children(server.process.pid) if " worker --parent" in _cmdline(p)]
    return found[0] if found else None


# -- connections to a given worker ------------------------------------------------------------


def _socket_inode(local_port: int, peer_port: int) -> str | None:
    """The inode of the server's end of the TCP connection from ``local_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        here, there = fields[1].split(":")[1], fields[2].split(":")[1]
        if int(here, 16) == peer_port and int(there, 16) == local_port:
            return fields[9]
    return None


class Connection:
    """One keep-alive HTTP connection, and the worker process that accepted it."""

    def __init__(self, server: Server, workers: list[int]) -> None:
        self.port = int(server.url.rsplit(":", 1)[1])
        self.token = server.admin_token
        self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.http.connect()
        client_port = self.http.sock.getsockname()[1]
        self.worker = eventually(lambda: self._owner(client_port, workers), "the accepting worker")

    def _owner(self, client_port: int, workers: list[int]) -> int | None:
        inode = _socket_inode(client_port, self.port)
        for pid in workers:
            try:
                links = [
                    os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")
                ]
            except OSError:
                continue
            if f"socket:[{inode}]" in links:
                return pid
        return None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.http.request(method, path, body=payload, headers=headers)
        response = self.http.getresponse()
        text = response.read().decode()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    def close(self) -> None:
        self.http.close()


def one_connection_per_worker(server: Server) -> dict[int, Connection]:
    workers = eventually(lambda: len(w := api_workers(server)) == 2 and w, "two API workers")
    held: dict[int, Connection] = {}
    spare = []
    for _ in range(200):
        connection = Connection(server, workers)
        if connection.worker in held:
            spare.append(connection)
        else:
            held[connection.worker] = connection
        if len(held) == 2:
            break
    for connection in spare:
        connection.close()
    assert len(held) == 2, "200 connections all went to one worker"
    return held


@pytest.fixture
def two_workers(postgres_url: str, tmp_path: Path) -> Iterator[Server]:
    running = start_server(postgres_url, tmp_path, LEDGER_WORKERS="2")
    yield running
    stop_server(running)


def movement(movement_id: str, sku: str, quantity: str) -> dict[str, str]:
    return {"movement_id": movement_id, "sku": sku, "kind": "invoice", "quantity": quantity}


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_what_one_worker_writes_the_other_reads_and_both_report_the_same_health(
    two_workers: Server,
) -> None:
    tree = _tree(two_workers.process.pid)
    assert len(api_workers(two_workers)) == 2, [_cmdline(p) for p in tree]
    assert background(two_workers) is not None, [_cmdline(p) for p in tree]
    connections = one_connection_per_worker(two_workers)
    (a, first), (b, second) = connections.items()
    for n, (writer, reader) in enumerate(((first, second), (second, first))):
        sku = f"SKU-{n}"
        status, written = writer.request("POST", "/movements", movement(f"m{n}", sku, "7"))
        assert status == 201, written
        position = written["position"]
        status, stock = reader.request("GET", f"/stock/{sku}")
        assert (status, stock["physical"]) == (200, "7"), stock
        status, listed = reader.request("GET", f"/stock?after={position}")
        assert status == 200, listed
        assert sku in {item["sku"] for item in listed["items"]}, listed
        status, report = reader.request("GET", f"/movements?sku={sku}&after={position}")
        assert status == 200, report
        assert [item["movement_id"] for item in report["items"]] == [f"m{n}"]
    for connection in (first, second):
        status, ready = connection.request("GET", "/readyz")
        assert (status, ready) == (200, {"status": "ready", "problems": []})
        status, views = connection.request("GET", "/views")
        assert status == 200
        assert {v["name"] for v in views["views"]} == VIEWS
        assert all(v["running"] and not v["failing"] for v in views["views"]), views
    for connection in connections.values():
        connection.close()
    assert a != b


@pytest.mark.postgres
def test_metrics_count_the_requests_of_every_worker(two_workers: Server) -> None:
    workers = eventually(lambda: len(w := api_workers(two_workers)) == 2 and w, "two workers")
    served_by: dict[int, int] = {}
    for _ in range(50):  # a new connection each: the workers take turns accepting
        connection = Connection(two_workers, workers)
        status, _ = connection.request("GET", "/stock/NO-SUCH-SKU")
        assert status == 404
        served_by[connection.worker] = served_by.get(connection.worker, 0) + 1
        connection.close()
    assert len(served_by) == 2, served_by  # both workers answered some
    series = 'ledger_http_requests_total{method="GET",route="/stock/{sku}",status="404"}'
    scrapers = set()
    for _ in range(6):
        connection = Connection(two_workers, workers)
        status, text = connection.request("GET", "/metrics")
        connection.close()
        assert status == 200
        scrapers.add(connection.worker)
        counts = [line for line in text.splitlines() if line.startswith(series)]
        assert counts == [f"{series} 50.0"], (connection.worker, counts)
        memory = [line for line in text.splitlines() if line.startswith("process_resident")]
        assert sum('role="api"' in line for line in memory) == 2, memory
        assert sum('role="background"' in line for line in memory) == 1, memory
        assert "ledger_view_failing{" in text
        assert "ledger_database_up 1.0" in text


@pytest.mark.postgres
def test_a_killed_api_worker_is_replaced_and_its_counts_stay(two_workers: Server) -> None:
    connections = one_connection_per_worker(two_workers)
    for connection in connections.values():
        for _ in range(5):
            assert connection.request("GET", "/stock/NO-SUCH-SKU")[0] == 404
        connection.close()
    victim = next(iter(connections))
    os.kill(victim, signal.SIGKILL)
    workers = eventually(
        lambda: len(w := api_workers(two_workers)) == 2 and victim not in w and w,
        "uvicorn to replace the killed worker",
    )
    series = 'ledger_http_requests_total{method="GET",route="/stock/{sku}",status="404"}'

    def api_pids(text: str) -> set[str]:
        return {
            line.split('pid="')[1].split('"')[0]
            for line in text.splitlines()
            if line.startswith("process_resident") and 'role="api"' in line
        }

    def scraped() -> str | None:
        # Until the replacement has started and registered its process figures.
        connection = Connection(two_workers, workers)
        status, text = connection.request("GET", "/metrics")
        connection.close()
        return text if status == 200 and api_pids(text) == {str(p) for p in workers} else None

    text = eventually(scraped, "a scrape showing both live workers and not the dead one")
    assert f"{series} 10.0" in text  # the dead worker's five still count
    assert str(victim) not in api_pids(text)


@pytest.mark.postgres
def test_a_killed_background_process_is_restarted_and_no_event_is_applied_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    running = start_server(postgres_url, tmp_path, LEDGER_WORKERS="2")
    stop = threading.Event()
    written: list[int] = []

    def stream() -> None:
        with running.client() as client:
            n = 0
            while not stop.is_set():
                n += 1
                rows = [movement(f"b{n}-{k}", f"S{k % 7}", "1") for k in range(20)]
                response = client.post("/movements/batch", json={"movements": rows})
                assert response.status_code == 201, response.text
                written.append(len(rows))

    writer = threading.Thread(target=stream)
    try:
        first = eventually(lambda: background(running), "the background process")
        writer.start()
        killed = []
        current = first
        for _ in range(3):
            time.sleep(0.8)
            os.kill(current, signal.SIGKILL)
            killed.append(current)
            current = eventually(
                lambda: (p := background(running)) not in (*killed, None) and p,
                "a new background process",
            )
        time.sleep(1.0)  # more writes after the last restart
        stop.set()
        writer.join()
        head = running.head()

        def caught_up() -> list[dict[str, Any]] | None:
            views = running.views()["views"]
            return views if all(v["position"] >= head for v in views) else None

        views = eventually(caught_up, "the views to catch up with every write", timeout=120)
        assert all(v["running"] and not v["failing"] for v in views), views
        assert not any(_alive(p) for p in killed)
    finally:
        stop.set()
        if writer.is_alive():
            writer.join()
        stop_server(running)
    log = running.log.read_text()
    for pid in killed:
        assert f"background process [{pid}] exited with SIGKILL; restarting it in" in log
    verified = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "verify"],
        env={**os.environ, "LEDGER_DATABASE_URL": postgres_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"movement_report: {sum(written)} rows" in verified.stdout, verified.stdout


@pytest.mark.postgres
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_process_outlives_serve(postgres_url: str, tmp_path: Path, how: signal.Signals) -> None:
    running = start_server(postgres_url, tmp_path, LEDGER_WORKERS="2")
    tree: list[int] = []
    try:
        eventually(lambda: len(api_workers(running)) == 2 and background(running), "children")
        tree = _tree(running.process.pid)
        assert len(tree) >= 3, [_cmdline(p) for p in tree]
        running.process.send_signal(how)
        running.process.wait(timeout=30)
        eventually(
            lambda: not [p for p in tree if _alive(p)],
            f"every child of serve to stop after {how.name}",
            timeout=30,
        )
    finally:
        for pid in tree + _tree(running.process.pid):  # left only if the test failed
            if _alive(pid) and ("spawn_main" in _cmdline(pid) or "worker" in _cmdline(pid)):
                os.kill(pid, signal.SIGKILL)
    if how is signal.SIGTERM:
        log = running.log.read_text()
        assert "Traceback" not in log, log[-4000:]
        assert "background process" in log
        assert "stopped" in log


@pytest.mark.postgres
def test_a_failing_view_in_the_background_process_shows_in_every_worker(
    postgres_url: str, tmp_path: Path
) -> None:
    running = start_server(postgres_url, tmp_path, LEDGER_WORKERS="2")
    try:
        connections = one_connection_per_worker(running)
        # An event no entry point accepts any more (a NUL in a SKU), as an older version
        # could have written it: PostgreSQL's text cannot hold a NUL.
        writer = build(Settings(database_url=postgres_url))
        try:
            good = MovementRequest.parse(
                {"movement_id": "ok", "sku": "GOOD", "kind": "invoice", "quantity": "1"}
            )
            writer.app.record_movements([good], recorded_by="t")
            _, poisoned = Stock.opened("BAD\x00SKU", "main", Stock.Opened.create_timestamp())
            [position] = writer.app.store_events([poisoned]).values()
        finally:
            writer.close()
        expected = f"cannot apply event {position} (Stock.Opened): DataError"
        for connection in connections.values():
            # (A loaded machine may first answer a probe that outlived its 3 s bound.)
            _, ready = eventually(
                lambda c=connection: (
                    (r := c.request("GET", "/readyz"))[0] == 503
                    and "view stock_levels" in json.dumps(r[1])
                    and r
                ),
                f"worker {connection.worker} to be unready for the view",
            )
            problems = {p["component"]: p["problem"] for p in ready["problems"]}
            assert problems["view stock_levels"] == expected, ready
            assert all(name.startswith("view ") for name in problems), ready  # nothing else
            assert "view order_list" not in problems, ready
            _, views = connection.request("GET", "/views")
            by_name = {v["name"]: v for v in views["views"]}
            assert by_name["stock_levels"]["failing"], views
            assert by_name["stock_levels"]["problem"] == expected
            assert "DataError" in by_name["stock_levels"]["last_error"]
            assert not by_name["order_list"]["failing"]
            _, text = connection.request("GET", "/metrics")
            assert 'ledger_view_failing{view="stock_levels"} 1.0' in text
        for connection in connections.values():
            connection.close()
    finally:
        stop_server(running, expect_tracebacks=True)


@pytest.mark.postgres
def test_api_workers_without_background_work_are_unready_and_say_why(
    postgres_url: str, tmp_path: Path
) -> None:
    running = start_server(
        postgres_url,
        tmp_path,
        LEDGER_WORKERS="2",
        LEDGER_BACKGROUND="false",
        LEDGER_READ_WAIT_SECONDS="0.5",
    )
    try:
        assert background(running) is None
        with running.client() as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["problems"] == [
                {"component": "background", "problem": "no process running the views seen for 15 s"}
            ]
            views = client.get("/views").json()["views"]
            assert not any(v["running"] for v in views), views
            written = client.post("/movements", json=movement("m", "SKU-1", "1")).json()
            lagging = client.get("/movements", params={"after": written["position"]})
            assert lagging.status_code == 503
            assert lagging.json()["error"] == "view_lagging"
    finally:
        stop_server(running)


@pytest.mark.postgres
def test_one_worker_runs_everything_in_one_process(postgres_url: str, tmp_path: Path) -> None:
    running = start_server(postgres_url, tmp_path, LEDGER_WORKERS="1")
    try:
        assert _tree(running.process.pid) == []
        views = running.views()["views"]
        assert all(v["running"] and v["heartbeat_age"] is None for v in views), views
    finally:
        stop_server(running)


def test_sqlite_refuses_more_than_one_worker(sqlite_url: str, tmp_path: Path) -> None:
    for args, env in ((["--workers", "2"], {}), ([], {"LEDGER_WORKERS": "3"})):
        refused = subprocess.run(
            [sys.executable, "-c", "from api.cli import main; main()", "serve", *args],
            env={**os.environ, "LEDGER_DATABASE_URL": sqlite_url, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode == 2, refused.stderr
        assert "on SQLite" in refused.stderr
        assert "use PostgreSQL" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_sqlite_serves_from_one_process_by_default(sqlite_url: str, tmp_path: Path) -> None:
    """The README's first command: `ledger serve` on SQLite, no setting about workers."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(port)],
        env={**environment, "LEDGER_DATABASE_URL": sqlite_url, "LEDGER_ADMIN_TOKEN": "t"},
        cwd=tmp_path,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> httpx.Response | None:
            try:
                answer = httpx.get(f"{url}/readyz", timeout=5)
            except httpx.TransportError:
                return None
            return answer if answer.status_code == 200 else None

        assert eventually(ready, "serve on SQLite to be ready", timeout=90)
        assert _children(process.pid) == []  # API and background work in one process
        views = httpx.get(f"{url}/views", headers={"Authorization": "Bearer t"}).json()
        assert all(v["running"] for v in views["views"]), views
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Traceback" not in log.read_text()
