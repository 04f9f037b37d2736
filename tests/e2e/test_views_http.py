"""The read models through the real entry points: HTTP reads, ``ledger rebuild``, ``ledger
verify`` and ``ledger worker``, against real SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import Server, start_server, stop_server


def ledger(database_url: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", *args],
        env={**os.environ, "LEDGER_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def move(client: httpx.Client, movement_id: str, quantity: str, **extra: str) -> dict[str, Any]:
    body = {"movement_id": movement_id, "sku": "SKU-1", "kind": "invoice", "quantity": quantity}
    response = client.post("/movements", json={**body, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_the_report_pages_as_json_and_streams_as_csv(server: Server) -> None:
    with server.client() as client:
        last = {}
        for n in range(7):
            last = move(client, f"m{n}", str(n + 1), reference=f"NF {n}", note='a,b "quoted"')
        first = client.get(
            "/movements", params={"sku": "SKU-1", "limit": 3, "after": last["position"]}
        )
        assert first.status_code == 200
        page = first.json()
        assert [i["movement_id"] for i in page["items"]] == ["m6", "m5", "m4"]
        assert page["items"][0]["physical_after"] == "28"
        assert page["items"][0]["available_after"] == "28"
        assert page["items"][1]["physical_after"] == "21"
        second = client.get(
            "/movements", params={"sku": "SKU-1", "limit": 3, "cursor": page["next_cursor"]}
        )
        third = client.get(
            "/movements",
            params={"sku": "SKU-1", "limit": 3, "cursor": second.json()["next_cursor"]},
        )
        assert [i["movement_id"] for i in second.json()["items"]] == ["m3", "m2", "m1"]
        assert [i["movement_id"] for i in third.json()["items"]] == ["m0"]
        assert third.json()["next_cursor"] is None
        streamed = client.get("/movements", params={"sku": "SKU-1"}, headers={"Accept": "text/csv"})
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(streamed.text)))
        assert [r["movement_id"] for r in rows] == [f"m{n}" for n in reversed(range(7))]
        assert rows[0]["physical_after"] == "28"
        assert rows[0]["note"] == 'a,b "quoted"'
        assert rows[0]["counted"] == ""
        limited = client.get("/movements", params={"limit": 2}, headers={"Accept": "text/csv"})
        assert len(list(csv.DictReader(io.StringIO(limited.text)))) == 2
        empty = client.get("/movements", params={"sku": "nope"}, headers={"Accept": "text/csv"})
        assert empty.text.splitlines()[0].startswith("movement_id,sku,warehouse,kind")
        assert len(empty.text.splitlines()) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "teleport"}, "kind"),
        ({"cursor": "not-a-cursor!"}, "cursor"),
        ({"cursor": "eDk"}, "cursor"),  # base64 of "x9": decodes, but is not one of ours
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-11-01T10:00:00"}, "until"),  # no zone
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"after": "-1"}, "after"),
        ({"cursor": "cMKy"}, "cursor"),  # "p²": a digit to str.isdigit(), not to int()
        ({"cursor": "dDk5OTk5OTk5OTk5OTk5OTk5OTl8MjAyNi0wMS0wMVQwMDowMDowMCswMDowMA"}, "cursor"),
        ({"sku": "A\x00B"}, "sku"),
        ({"warehouse": "\x07"}, "warehouse"),
        ({"reference": "x\x00"}, "reference"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-01:00"}, "until"),
    ],
)
def test_bad_report_queries_are_422_naming_the_field(
    shared_server: Server, params: dict[str, str], field: str
) -> None:
    with shared_server.client() as client:
        response = client.get("/movements", params=params)
    assert response.status_code == 422, response.text
    assert field in response.text


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/orders", {"cursor": "cDk5OTk5OTk5OTk5OTk5OTk5OTk"}, "cursor"),  # > BIGINT
        ("/orders", {"platform": "\x00"}, "platform"),
        ("/stock", {"cursor": "AA"}, "cursor"),  # a NUL once decoded
        ("/stock", {"warehouse": "a\x00"}, "warehouse"),
        ("/stock/SKU%00", {}, "sku"),
    ],
)
def test_bad_reads_elsewhere_are_422_too(
    shared_server: Server, path: str, params: dict[str, str], field: str
) -> None:
    with shared_server.client() as client:
        response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert field in response.text


def test_stock_at_a_moment_over_http(server: Server) -> None:
    with server.client() as client:
        move(client, "a", "10", occurred_at="2026-11-01T10:00:00Z")
        last = move(client, "b", "-3", occurred_at="2026-11-02T10:00:00-03:00")

        def at(moment: str) -> Any:
            return client.get("/stock/SKU-1", params={"at": moment, "after": last["position"]})

        assert at("2026-11-01T09:59:59Z").json()["physical"] == "0"
        assert at("2026-11-01T10:00:00Z").json()["physical"] == "10"
        assert at("2026-11-02T12:59:59Z").json()["physical"] == "10"
        on_time = at("2026-11-02T13:00:00Z").json()
        assert on_time["physical"] == "7"
        assert on_time["at"] == "2026-11-02T13:00:00Z"
        assert at("soon").status_code == 422
        assert client.get("/stock/NEVER", params={"at": "2026-11-01T10:00:00Z"}).status_code == 404


def test_reads_wait_for_the_write_they_are_given(database_url: str, tmp_path: Path) -> None:
    running = start_server(database_url, tmp_path, LEDGER_READ_WAIT_SECONDS="0.5")
    try:
        with running.client() as client:
            written = move(client, "a", "4")
            position = written["position"]
            assert client.get("/stock/SKU-1", params={"after": position}).json()["physical"] == "4"
            report = client.get("/movements", params={"after": position}).json()
            assert report["items"][0]["movement_id"] == "a"
            client.put("/platforms/shop", json={"type": "webhook", "carriers": {"PAC": "p"}})
            order = client.post(
                "/orders",
                json={
                    "platform": "shop",
                    "order_id": "o1",
                    "status": "payment_confirmed",
                    "carrier": "PAC",
                    "items": [{"sku": "SKU-1", "quantity": "1"}],
                },
            ).json()
            listed = client.get("/orders", params={"after": order["position"]}).json()
            assert [o["order_id"] for o in listed["items"]] == ["o1"]
            assert listed["items"][0]["holds_reservation"] is True
            # Beyond the newest event: no write returned it, so waiting could never end well.
            for path in ("/stock/SKU-1", "/stock", "/movements", "/orders"):
                too_far = client.get(path, params={"after": position + 10_000})
                assert too_far.status_code == 422, path
                assert too_far.json()["error"] == "unknown_position"
                assert too_far.json()["field"] == "after"
    finally:
        stop_server(running)


def test_a_view_that_does_not_reach_a_real_position_answers_view_lagging(
    database_url: str, tmp_path: Path
) -> None:
    # No background work in this process and no worker: the views never move.
    running = start_server(
        database_url, tmp_path, LEDGER_READ_WAIT_SECONDS="0.5", LEDGER_BACKGROUND="false"
    )
    try:
        with running.client() as client:
            written = move(client, "a", "4")
            lagging = client.get("/movements", params={"after": written["position"]})
            assert lagging.status_code == 503
            assert lagging.json()["error"] == "view_lagging"
            assert lagging.headers["retry-after"] == "1"
    finally:
        stop_server(running)


def test_many_waiting_reads_do_not_hold_the_servers_threads(
    database_url: str, tmp_path: Path
) -> None:
    # FastAPI runs plain routes on a pool of 40 threads: 60 reads waiting for a lagging view
    # must not keep a write (or a health check) from being served meanwhile.
    running = start_server(
        database_url, tmp_path, LEDGER_READ_WAIT_SECONDS="8", LEDGER_BACKGROUND="false"
    )
    try:
        with running.client() as client:
            written = move(client, "a", "4")
        pool = ThreadPoolExecutor(60)
        with httpx.Client(
            base_url=running.url,
            headers={"Authorization": f"Bearer {running.admin_token}"},
            timeout=60,
            limits=httpx.Limits(max_connections=70),
        ) as waiting:
            futures = [
                pool.submit(waiting.get, "/movements", params={"after": written["position"]})
                for _ in range(60)
            ]
            time.sleep(1)  # let them all arrive and start waiting
            with running.client() as client:
                served = move(client, "b", "1")
                assert served["physical"] == "5"
                assert not any(f.done() for f in futures)  # still waiting: the write got through
            assert {f.result().status_code for f in futures} == {503}
        pool.shutdown()
    finally:
        stop_server(running)


def test_health_and_metrics_show_each_views_position_and_lag(server: Server) -> None:
    with server.client() as client:
        written = move(client, "a", "4")
        client.get("/movements", params={"after": written["position"]})
        assert httpx.get(f"{server.url}/views").status_code == 401  # positions need a token
        for _ in range(100):
            health = server.views()
            if all(v["lag"] == 0 for v in health["views"]):
                break
            time.sleep(0.05)
        assert {v["name"] for v in health["views"]} == {
            "stock_levels",
            "movement_report",
            "order_list",
            "publisher",
            "products",
        }
        assert all(v["lag"] == 0 and not v["failing"] for v in health["views"])
        assert httpx.get(f"{server.url}/metrics").status_code == 401  # the contract: a token
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        text = metrics.text
        head = health["event_store_position"]
        assert f"ledger_event_store_position {float(head)}" in text
        for view in ("stock_levels", "movement_report", "order_list", "publisher", "products"):
            assert f'ledger_view_lag_events{{view="{view}"}} 0.0' in text
            assert f'ledger_view_failing{{view="{view}"}} 0.0' in text


def tamper(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            db.execute("UPDATE stock_levels SET physical_micros = physical_micros + 1")
        return
    url, _, schema = database_url.partition("?schema=")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'UPDATE "{schema or "public"}".stock_levels SET physical = physical + 1')


def test_rebuild_while_the_api_serves_then_verify_catches_tampering(server: Server) -> None:
    stop = threading.Event()
    errors: list[str] = []

    def keep_writing_and_reading() -> None:
        with server.client() as client:
            n = 0
            while not stop.is_set():
                n += 1
                written = client.post(
                    "/movements",
                    json={
                        "movement_id": f"w{n}",
                        "sku": f"S{n % 5}",
                        "kind": "invoice",
                        "quantity": "1",
                    },
                )
                position = written.json().get("position", 0)
                read = client.get("/movements", params={"limit": 5, "after": position})
                stock = client.get(f"/stock/S{n % 5}", params={"after": position})
                for response in (written, read, stock):
                    if response.status_code not in (200, 201):
                        errors.append(response.text)

    with server.client() as client:
        for n in range(200):
            move(client, f"m{n}", "1")
    worker = threading.Thread(target=keep_writing_and_reading)
    worker.start()
    try:
        time.sleep(0.5)
        rebuilt = ledger(server.database_url, "rebuild")
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join()
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "movement_report: rebuilt up to position" in rebuilt.stdout
    assert errors == []
    with server.client() as client:
        last = move(client, "last", "1")
        client.get("/stock/SKU-1", params={"after": last["position"]})
        client.get("/movements", params={"after": last["position"]})
        client.get("/orders", params={"after": last["position"]})
    verified = ledger(server.database_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "stock_levels:" in verified.stdout
    assert "ok" in verified.stdout
    tamper(server.database_url)
    caught = ledger(server.database_url, "verify", "stock_levels")
    assert caught.returncode == 1
    assert "physical: expected" in caught.stdout
    unknown = ledger(server.database_url, "rebuild", "nope")
    assert unknown.returncode == 2
    assert "no view named nope" in unknown.stderr


def test_views_count_every_event_once_across_sigkills_of_the_worker(
    database_url: str, tmp_path: Path
) -> None:
    """The process running the projections is killed (SIGKILL) again and again while events
    stream in; once restarted and caught up, every view equals a fresh replay."""
    api = start_server(database_url, tmp_path, LEDGER_BACKGROUND="false")

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; main()", "worker"],
            env={**os.environ, "LEDGER_DATABASE_URL": database_url},
            stdout=(tmp_path / "worker.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    stop = threading.Event()
    written: list[int] = []

    def stream() -> None:
        with api.client() as client:
            n = 0
            while not stop.is_set():
                n += 1
                rows = [
                    {
                        "movement_id": f"b{n}-{k}",
                        "sku": f"S{k % 7}",
                        "kind": "invoice",
                        "quantity": "1",
                    }
                    for k in range(20)
                ]
                response = client.post("/movements/batch", json={"movements": rows})
                assert response.status_code == 201, response.text
                written.append(len(rows))

    writer = threading.Thread(target=stream)
    writer.start()
    worker = start_worker()
    try:
        for _ in range(4):
            time.sleep(random.uniform(0.4, 1.2))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            worker = start_worker()
        time.sleep(0.5)
        stop.set()
        writer.join()
        head = api.head()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            views = api.views()["views"]
            if all(v["position"] >= head for v in views):
                break
            time.sleep(0.2)
        assert all(v["position"] >= head for v in views), (
            views,
            (tmp_path / "worker.log").read_text()[-3000:],
        )
    finally:
        stop.set()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        stop_server(api)
    verified = ledger(database_url, "verify")
    assert verified.returncode == 0, verified.stdout
    assert f"{sum(written)} rows" in verified.stdout  # the report: one row per movement
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log, log[-3000:]
