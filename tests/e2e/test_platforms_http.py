"""Platforms end to end: the real server (a process) against the VTEX emulator over real HTTP.

Every request the ledger sends the emulator is checked against the project's own description of
VTEX's endpoints, and against VTEX's official OpenAPI files where they are found; an invalid one
would be answered 400, counted as a failed delivery and fail these tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.vtex_emulator import VtexEmulator
from tests.e2e.conftest import TEST_SECRET_KEY, Server, start_server, stop_server
from tests.vtex_contract import require_official
from tests.waiting import eventually

HOOK_SECRET = "hook-s3cret"
FAST_RETRIES = {
    "LEDGER_DISPATCH_BACKOFF_BASE": "0.1",
    "LEDGER_DISPATCH_BACKOFF_CAP": "1",
}


@pytest.fixture
def vtex() -> Iterator[VtexEmulator]:
    with VtexEmulator().start() as emulator:
        yield emulator


def configure(server: Server, vtex: VtexEmulator, **extra: Any) -> None:
    with server.client() as client:
        response = client.put(
            "/platforms/vtex",
            json={
                "type": "vtex",
                "base_url": vtex.url,
                "credentials": {
                    "app_key": vtex.app_key,
                    "app_token": vtex.app_token,
                    "hook_secret": HOOK_SECRET,
                },
                "import_from": "awaiting_payment",
                "warehouses": {"main": "1_1"},
                "carriers": {"Correios": "correios"},
                "feed_interval_seconds": 1,
                "payment_check_seconds": 1,
                **extra,
            },
        )
        assert response.status_code == 200, response.text


def move(client: httpx.Client, movement_id: str, sku: str, quantity: int | str) -> None:
    response = client.post(
        "/movements",
        json={"movement_id": movement_id, "sku": sku, "kind": "manual", "quantity": str(quantity)},
    )
    assert response.status_code in (200, 201), response.text


def batch(client: httpx.Client, rows: list[tuple[str, str, int]]) -> None:
    response = client.post(
        "/movements/batch",
        json={
            "movements": [
                {"movement_id": m, "sku": s, "kind": "manual", "quantity": str(q)}
                for m, s, q in rows
            ]
        },
    )
    assert response.status_code == 201, response.text


def available(client: httpx.Client, sku: str) -> int | None:
    """What the store should show; None while the stock view has not seen the SKU yet."""
    response = client.get(f"/stock/{sku}")
    if response.status_code == 404:
        return None
    [level] = [w for w in response.json()["warehouses"] if w["warehouse"] == "main"]
    return max(int(float(level["available"])), 0)


def status(server: Server) -> dict[str, Any]:
    with server.client() as client:
        return client.get("/platforms/vtex/status").json()


def converged(server: Server, vtex: VtexEmulator, skus: list[str]) -> bool:
    with server.client() as client:
        return all(
            (shown := available(client, s)) is not None and vtex.stock(s, "1_1") == shown
            for s in skus
        )


@pytest.fixture
def shop(database_url: str, tmp_path: Path, vtex: VtexEmulator) -> Iterator[Server]:
    server = start_server(database_url, tmp_path, **FAST_RETRIES)
    configure(server, vtex)
    yield server
    stop_server(server)


def test_the_seeds_example_end_to_end(shop: Server, vtex: VtexEmulator) -> None:
    """Stock 10 in the ledger and the store; the store sells 5: the store is sent 5. Cancelled:
    it is sent 10. Invoiced instead: the invoice reaches VTEX, valid, with no payment data."""
    with shop.client() as client:
        move(client, "in-1", "123", 10)
        eventually(lambda: vtex.stock("123", "1_1") == 10, what="the store shows 10")

        vtex.add_order(
            "1001-01", [{"sku": "123", "quantity": 5, "price": 1990}], state="ready-for-handling"
        )
        eventually(lambda: vtex.stock("123", "1_1") == 5, what="the store shows 5")
        order = client.get("/orders/vtex/1001-01").json()
        assert order["status"] == "payment_confirmed"
        assert order["holds_reservation"] is True

        vtex.set_state("1001-01", "canceled")
        eventually(lambda: vtex.stock("123", "1_1") == 10, what="the store shows 10 again")
        assert client.get("/orders/vtex/1001-01").json()["status"] == "cancelled"

        vtex.add_order(
            "1002-01", [{"sku": "123", "quantity": 5, "price": 1990}], state="payment-approved"
        )
        eventually(lambda: vtex.stock("123", "1_1") == 5, what="the second order reserves")
        response = client.post(
            "/orders/vtex/1002-01/invoice",
            json={"number": "NF-77", "key": "3519" + "0" * 40, "value": "99.50"},
        )
        assert response.status_code == 200, response.text
        [invoice] = eventually(lambda: vtex.invoices("1002-01"), what="the invoice arrives")
        assert invoice["invoiceNumber"] == "NF-77"
        assert invoice["invoiceValue"] == "9950"
        assert all(isinstance(item["price"], int) for item in invoice["items"])
        assert "payment" not in str(invoice).lower()
        position = response.json()["position"]
        level = client.get(f"/stock/123?after={position}").json()["warehouses"][0]
        assert (level["physical"], level["reserved"], level["available"]) == ("5", "0", "5")

        # Tracking known later: the same invoice with it, sent on as a PATCH.
        response = client.post(
            "/orders/vtex/1002-01/invoice",
            json={
                "number": "NF-77",
                "key": "3519" + "0" * 40,
                "value": "99.50",
                "tracking_code": "BR123",
                "tracking_url": "https://track.example/BR123",
            },
        )
        assert response.status_code == 200, response.text
        eventually(
            lambda: any(
                p.get("trackingNumber") == "BR123" for p in vtex.tracking_updates("1002-01")
            ),
            what="the tracking arrives",
        )
    assert vtex.stock("123", "1_1") == 5
    assert all(r["valid"] for r in vtex.requests())
    assert status(shop)["deliveries"]["failed"] == 0


def test_a_burst_on_one_sku_sends_few_puts_and_the_last_value(
    shop: Server, vtex: VtexEmulator
) -> None:
    """2,000 movements on one SKU within a second end as one right quantity after at most 20
    PUTs for that SKU."""
    with shop.client() as client:
        batch(client, [("seed", "HOT", 5000)])
        eventually(lambda: vtex.stock("HOT", "1_1") == 5000, what="the seed arrives")
        before = len(vtex.stock_updates("HOT", "1_1"))
        started = time.monotonic()
        for n in range(40):
            batch(client, [(f"b{n}-{k}", "HOT", -1) for k in range(50)])
        elapsed = time.monotonic() - started
        eventually(lambda: vtex.stock("HOT", "1_1") == 3000, what="the burst converges")
    time.sleep(1)  # anything still in flight would show up now
    puts = vtex.stock_updates("HOT", "1_1")[before:]
    assert vtex.stock("HOT", "1_1") == 3000
    assert len(puts) <= 20, (len(puts), elapsed)
    quantities = [p["quantity"] for p in puts]
    assert quantities == sorted(quantities, reverse=True), "an older value came after a newer"


def test_the_store_down_for_30_seconds_then_everything_converges(
    postgres_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    server = start_server(postgres_url, tmp_path, **FAST_RETRIES)
    try:
        configure(server, vtex)
        skus = [f"D{k}" for k in range(30)]
        with server.client() as client:
            batch(client, [(f"seed-{s}", s, 100) for s in skus])
            eventually(lambda: converged(server, vtex, skus), what="seeded")
            vtex.stop()
            for second in range(30):
                batch(client, [(f"down-{second}-{s}", s, -1) for s in skus[second % 3 :: 3]])
                time.sleep(1)
            waiting = status(server)["deliveries"]
            assert waiting["pending"] + waiting["retrying"] > 0
            vtex.start()
        eventually(lambda: converged(server, vtex, skus), what="converged after the outage")
        assert status(server)["deliveries"]["failed"] == 0
    finally:
        stop_server(server)


def test_rate_limit_and_lock_storms_only_delay(shop: Server, vtex: VtexEmulator) -> None:
    skus = [f"S{k}" for k in range(20)]
    with shop.client() as client:
        vtex.fault("429-retry-after", seconds=3, retry_after=1)
        batch(client, [(f"a-{s}", s, 50) for s in skus])
        time.sleep(1.5)
        vtex.fault("429", seconds=2)
        batch(client, [(f"b-{s}", s, -7) for s in skus])
        eventually(lambda: converged(shop, vtex, skus), what="converged after 429s")
        vtex.fault("423", count=60)
        batch(client, [(f"c-{s}", s, -3) for s in skus])
        eventually(lambda: converged(shop, vtex, skus), what="converged after 423s")
        vtex.fault("500", count=10)
        vtex.fault("drop", count=5)
        batch(client, [(f"d-{s}", s, -1) for s in skus])
        eventually(lambda: converged(shop, vtex, skus), what="converged after 500s and drops")
    assert status(shop)["deliveries"]["failed"] == 0
    statuses = {r["status"] for r in vtex.requests()}
    assert {429, 423, 500} <= statuses


def test_a_refusal_fails_is_shown_and_is_sent_again_by_retry(
    database_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    """An invoice for an order VTEX does not know is refused (404): repeating cannot fix it,
    so it fails at once, shows in the status, and goes out again on POST .../retry."""
    server = start_server(database_url, tmp_path, **FAST_RETRIES)
    try:
        configure(server, vtex)
        with server.client() as client:
            move(client, "in-1", "R1", 4)
            imported = client.post(
                "/orders",
                json={
                    "platform": "vtex",
                    "order_id": "9001-01",
                    "status": "payment_confirmed",
                    "carrier": "Correios",
                    "items": [{"sku": "R1", "quantity": "1"}],
                },
            )
            assert imported.status_code == 201, imported.text
            invoiced = client.post(
                "/orders/vtex/9001-01/invoice", json={"number": "NF-1", "value": "19.90"}
            )
            assert invoiced.status_code == 200, invoiced.text
            failed = eventually(
                lambda: status(server)["deliveries"]["failed_deliveries"], what="marked failed"
            )
            assert failed[0]["subject"] == "9001-01"
            assert "404" in failed[0]["last_error"]
            assert failed[0]["attempts"] == 1
            assert status(server)["deliveries"]["retrying"] == 0
            vtex.add_order("9001-01", [{"sku": "R1", "quantity": 1, "price": 1990}])
            response = client.post("/platforms/vtex/retry")
            assert response.json() == {"retried": 1}
            [invoice] = eventually(lambda: vtex.invoices("9001-01"), what="sent after the retry")
            assert invoice["invoiceNumber"] == "NF-1"
            eventually(lambda: status(server)["deliveries"]["failed"] == 0, what="not failed")
            reader = client.post("/tokens", json={"name": "r", "permissions": ["read"]}).json()
            forbidden = httpx.post(
                f"{server.url}/platforms/vtex/retry",
                headers={"Authorization": f"Bearer {reader['token']}"},
            )
            assert forbidden.status_code == 403
    finally:
        stop_server(server)


def metric(server: Server, name: str, **labels: str) -> float | None:
    """One sample of /metrics, read with prometheus_client's own parser."""
    with server.client() as client:
        text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_an_outage_longer_than_any_attempt_limit_converges_by_itself(
    database_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    """VTEX answers 503 for 18 s while stock keeps changing: far longer than the cap (1 s) times
    the old limit of attempts. Meanwhile the status shows the deliveries retrying and the
    platform failing; afterwards every SKU shows its available stock, with nobody calling
    /retry. The old LEDGER_DISPATCH_MAX_ATTEMPTS is set to 2: it still starts, and it no
    longer gives anything up."""
    server = start_server(database_url, tmp_path, **FAST_RETRIES, LEDGER_DISPATCH_MAX_ATTEMPTS="2")
    try:
        configure(server, vtex)
        skus = [f"O{k}" for k in range(20)]
        with server.client() as client:
            batch(client, [(f"seed-{s}", s, 100) for s in skus])
            eventually(lambda: converged(server, vtex, skus), what="seeded")
            outage_started = time.time()
            vtex.fault(503, path_prefix="/api/logistics")  # until cleared
            for second in range(12):
                batch(client, [(f"down-{second}-{s}", s, -1) for s in skus[second % 3 :: 3]])
                time.sleep(1)
            during = status(server)["deliveries"]
            assert during["retrying"] > 0, during
            assert during["failing"], during
            assert "503" in during["last_error"]
            assert during["failed"] == 0
            [first, *_] = during["retrying_deliveries"]
            assert first["attempts"] >= 1
            # Past the old limit of 2 attempts, and still retrying: not failed.
            assert max(d["attempts"] for d in during["retrying_deliveries"]) > 2, during
            assert first["first_failed_at"] >= outage_started
            assert "503" in first["last_error"]
            assert metric(server, "ledger_platform_failing", platform="vtex") == 1.0
            retrying = metric(
                server, "ledger_platform_deliveries", platform="vtex", state="retrying"
            )
            assert (retrying or 0) > 0
            # A failing platform never makes the service look unwell.
            ready = httpx.get(f"{server.url}/readyz", timeout=10)
            assert (ready.status_code, ready.json()["status"]) == (200, "ready")
        time.sleep(max(0.0, outage_started + 18 - time.time()))  # the outage lasts 18 s
        vtex.clear_faults()
        eventually(lambda: converged(server, vtex, skus), timeout=120, what="converged")

        # The store holds every SKU's stock; a row re-queued by the last changes may still be
        # on its way, so the status is awaited too, never assumed in the same instant.
        def settled() -> bool:
            after = status(server)["deliveries"]
            return (after["failed"], after["retrying"], after["failing"]) == (0, 0, False)

        eventually(settled, timeout=60, what="no delivery failed or retrying")
        assert metric(server, "ledger_platform_failing", platform="vtex") == 0.0
        # While it failed, the platform was probed, not sent every row at every backoff.
        refused = [r for r in vtex.requests() if r["fault"] == "503"]
        assert len(refused) < 20 * 18 / 2, len(refused)
    finally:
        stop_server(server)


def stop_workers(workers: list[subprocess.Popen[bytes]], log: Path) -> None:
    """SIGTERM every worker, then wait for each; one that does not stop is made to print its
    threads' stacks (faulthandler, on SIGABRT) into its log, and the test fails with them."""
    for worker in workers:
        worker.terminate()
    hung = []
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.send_signal(signal.SIGABRT)
            worker.wait()
            hung.append(worker.pid)
    assert not hung, f"workers {hung} did not stop: {log.read_text()[-20000:]}"


def _worker(database_url: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from api.cli import main; main()", "worker"],
        env={
            **os.environ,
            "LEDGER_DATABASE_URL": database_url,
            # A killed worker's claims wait out their lease (2 x timeout + 5 s) before
            # the other takes them over.
            "LEDGER_PLATFORM_TIMEOUT": "2",
            # The API's key: every process reads the credentials it stored.
            "LEDGER_SECRET_KEY": TEST_SECRET_KEY,
            "PYTHONFAULTHANDLER": "1",  # stacks on SIGABRT: see stop_workers
            **FAST_RETRIES,
            **env,
        },
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_dispatchers_killed_and_doubled_lose_nothing_and_never_go_back(
    postgres_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    """Two workers dispatch at once, and one is SIGKILLed mid-stream and restarted: every SKU
    ends right, and since stock only falls here, no SKU ever saw a value go back up."""
    api = start_server(postgres_url, tmp_path, LEDGER_BACKGROUND="false")
    log = tmp_path / "workers.log"
    workers = [_worker(postgres_url, log), _worker(postgres_url, log)]
    try:
        configure(api, vtex)
        skus = [f"K{k}" for k in range(25)]
        stop = threading.Event()

        def stream() -> None:
            with api.client() as client:
                batch(client, [(f"seed-{s}", s, 100_000) for s in skus])
                n = 0
                while not stop.is_set():
                    n += 1
                    batch(client, [(f"o{n}-{s}", s, -1) for s in skus[n % 5 :: 5]])
                    time.sleep(0.02)

        writer = threading.Thread(target=stream)
        writer.start()
        for _ in range(3):
            time.sleep(1.5)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            workers[0] = _worker(postgres_url, log)
        time.sleep(1)
        stop.set()
        writer.join()
        eventually(lambda: converged(api, vtex, skus), timeout=120, what="converged")
        for sku in skus:
            quantities = [p["quantity"] for p in vtex.stock_updates(sku, "1_1")]
            assert quantities == sorted(quantities, reverse=True), (sku, quantities)
    finally:
        try:
            stop_workers(workers, log)
        finally:
            stop_server(api)
    assert "Traceback" not in log.read_text()


def test_a_dispatcher_killed_in_an_outage_is_followed_by_one_that_converges(
    postgres_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    api = start_server(postgres_url, tmp_path, LEDGER_BACKGROUND="false")
    log = tmp_path / "workers.log"
    worker = _worker(postgres_url, log)
    try:
        configure(api, vtex)
        skus = [f"X{k}" for k in range(15)]
        with api.client() as client:
            batch(client, [(f"seed-{s}", s, 50) for s in skus])
            eventually(lambda: converged(api, vtex, skus), what="seeded")
            vtex.fault("500", path_prefix="/api/logistics")  # until cleared
            for n in range(4):
                batch(client, [(f"a{n}-{s}", s, -1) for s in skus])
                time.sleep(0.5)
            eventually(lambda: status(api)["deliveries"]["failing"], what="failing")
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            for n in range(4):
                batch(client, [(f"b{n}-{s}", s, -2) for s in skus])
                time.sleep(0.5)
        started = time.time()
        worker = _worker(postgres_url, log)
        # The new worker meets the outage itself (its probe is refused) before VTEX recovers:
        # it takes over the failing state, and the killed one's claims, from the tables.
        eventually(
            lambda: any(r["fault"] and r["at"] > started + 1 for r in vtex.requests()),
            what="the new worker's request refused by the outage",
        )
        vtex.clear_faults()
        eventually(lambda: converged(api, vtex, skus), timeout=120, what="converged")
        after = status(api)["deliveries"]
        assert (after["failed"], after["retrying"], after["failing"]) == (0, 0, False)
    finally:
        try:
            stop_workers([worker], log)
        finally:
            stop_server(api)
    assert "Traceback" not in log.read_text()


def _windows(times: list[float], width: float) -> int:
    """The most requests received within any ``width`` seconds."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > width:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_two_dispatchers_keep_to_one_rate_and_a_429_pauses_both(
    postgres_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    """At a rate_limit of 10/s, two workers together keep near 10 requests in any second, not
    the 20 two budgets would allow; a 429 asking for 4 s pauses both. The bound leaves room
    for the bucket's burst, clock reads and requests held in flight across a window's edge
    (the emulator stamps arrival, the budget is spent before sending): at 12 it failed about
    one run in three on a loaded 2-core machine."""
    api = start_server(postgres_url, tmp_path, LEDGER_BACKGROUND="false")
    log = tmp_path / "workers.log"
    slow = {"LEDGER_DISPATCH_BACKOFF_CAP": "10"}  # lets a 429 pause for its 4 s
    workers = [_worker(postgres_url, log, **slow), _worker(postgres_url, log, **slow)]
    try:
        configure(api, vtex, rate_limit=10)
        skus = [f"Q{k:03d}" for k in range(120)]
        with api.client() as client:
            batch(client, [(f"seed-{s}", s, 10) for s in skus])
            eventually(lambda: len(stock_requests(vtex)) >= 30, what="sending")
            vtex.fault("429-retry-after", count=1, retry_after=4, path_prefix="/api/logistics")
            eventually(lambda: converged(api, vtex, skus), timeout=180, what="converged")
    finally:
        try:
            stop_workers(workers, log)
        finally:
            stop_server(api)
    requests = stock_requests(vtex)
    times = sorted(r["at"] for r in requests)
    assert _windows(times, 1.0) <= 15, _windows(times, 1.0)
    [limited] = [r for r in requests if r["status"] == 429]
    paused = [r for r in requests if limited["at"] + 1 < r["at"] < limited["at"] + 3.5]
    assert paused == [], paused
    assert "Traceback" not in log.read_text()


def stock_requests(vtex: VtexEmulator) -> list[dict[str, Any]]:
    return [r for r in vtex.requests() if r["path"].startswith("/api/logistics")]


def test_the_hook_answers_the_ping_refuses_forgeries_and_shrugs_off_repeats(
    shop: Server, vtex: VtexEmulator
) -> None:
    # Only the hook brings orders here: the feed robot has read once and waits a day.
    configure(shop, vtex, feed_interval_seconds=86_400)
    time.sleep(1.5)
    with shop.client() as client:
        move(client, "in-1", "777", 10)
        eventually(lambda: vtex.stock("777", "1_1") == 10, what="stocked")
    vtex.add_order(
        "2001-01", [{"sku": "777", "quantity": 2, "price": 500}], state="payment-approved"
    )
    notification = {
        "Domain": "Marketplace",
        "OrderId": "2001-01",
        "State": "payment-approved",
        "LastState": "payment-pending",
        "LastChange": "2026-11-29T10:00:00Z",
        "CurrentChange": "2026-11-29T10:00:01Z",
        "Origin": {"Account": "acme", "Key": vtex.app_key},
    }
    hook = f"{shop.url}/platforms/vtex/hook"
    forged = httpx.post(hook, json=notification, headers={"X-Ledger-Hook-Secret": "guess"})
    assert forged.status_code == 401
    assert forged.json()["error"] == "invalid_signature"
    missing = httpx.post(hook, json=notification)
    assert missing.status_code == 401
    with shop.client() as client:
        assert client.get("/orders/vtex/2001-01").status_code == 404

    vtex.configure_hook(hook, {"X-Ledger-Hook-Secret": HOOK_SECRET})  # pings first
    assert vtex.hook_deliveries()[0]["kind"] == "ping"
    headers = {"X-Ledger-Hook-Secret": HOOK_SECRET}
    for _ in range(3):  # duplicated
        assert httpx.post(hook, json=notification, headers=headers).status_code == 200
    late = {**notification, "State": "payment-pending", "LastState": "order-created"}
    assert httpx.post(hook, json=late, headers=headers).status_code == 200  # out of order
    with shop.client() as client:
        order = client.get("/orders/vtex/2001-01").json()
        assert order["status"] == "payment_confirmed"
        eventually(
            lambda: client.get("/stock/777").json()["warehouses"][0]["reserved"] == "2",
            what="2 reserved",
        )
        time.sleep(0.5)  # a second reservation, had there been one, would show by now
        level = client.get("/stock/777").json()["warehouses"][0]
        assert level["reserved"] == "2"  # reserved once, whatever the repeats
    eventually(lambda: vtex.stock("777", "1_1") == 8, what="the store shows 8")
    bad = httpx.post(hook, content=b"not json", headers=headers)
    assert bad.status_code == 422
    assert httpx.post(f"{shop.url}/platforms/nope/hook", json={}).status_code == 404


def test_payment_follow_up_moves_orders_without_anyone(shop: Server, vtex: VtexEmulator) -> None:
    with shop.client() as client:
        move(client, "in-1", "555", 10)
        vtex.add_order("3001-01", [{"sku": "555", "quantity": 3, "price": 100}])
        vtex.add_order("3002-01", [{"sku": "555", "quantity": 1, "price": 100}])
        eventually(
            lambda: client.get("/orders/vtex/3002-01").status_code == 200, what="both imported"
        )
        # VTEX holds the reservation while payment is pending.
        assert client.get("/stock/555").json()["warehouses"][0]["reserved"] == "0"
        vtex.set_state("3001-01", "payment-approved", notify=False)
        vtex.set_state("3002-01", "canceled", notify=False)
        eventually(
            lambda: client.get("/orders/vtex/3001-01").json()["status"] == "payment_confirmed",
            what="payment confirmed by the follow-up",
        )
        eventually(
            lambda: client.get("/orders/vtex/3002-01").json()["status"] == "cancelled",
            what="cancelled by the follow-up",
        )
        # The stock view follows the order's write a moment later.
        eventually(
            lambda: client.get("/stock/555").json()["warehouses"][0]["reserved"] == "3",
            what="3 reserved",
        )
        eventually(lambda: vtex.stock("555", "1_1") == 7, what="the store shows 7")
    assert status(shop)["jobs"]["payments"]["report"] is not None


def test_drift_is_found_repaired_and_reported(
    database_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    server = start_server(database_url, tmp_path, **FAST_RETRIES)
    try:
        configure(server, vtex, drift_check_seconds=2)
        with server.client() as client:
            move(client, "in-1", "DR", 6)
            eventually(lambda: vtex.stock("DR", "1_1") == 6, what="sent")
        vtex.set_stock("DR", "1_1", 40)  # someone edits the store by hand

        def reported() -> bool:
            report = status(server)["jobs"].get("drift", {}).get("report") or {}
            return {"sku": "DR", "warehouse": "main", "shown": 40, "ledger": 6} in report.get(
                "repaired", []
            )

        eventually(reported, what="the repair reported")
        eventually(lambda: vtex.stock("DR", "1_1") == 6, what="repaired")
    finally:
        stop_server(server)


def test_local_edits_of_an_order_never_reach_vtex(
    sqlite_url: str, tmp_path: Path, vtex: VtexEmulator
) -> None:
    """The seller changes an imported order's items here; the invoice VTEX receives still has
    VTEX's own items, quantities and prices (domain: local edits stay in the ERP)."""
    server = start_server(sqlite_url, tmp_path, **FAST_RETRIES)
    try:
        configure(server, vtex)
        vtex.add_order(
            "4001-01", [{"sku": "321", "quantity": 5, "price": 1990}], state="payment-approved"
        )
        with server.client() as client:
            move(client, "in-1", "321", 10)
            eventually(
                lambda: client.get("/orders/vtex/4001-01").status_code == 200, what="imported"
            )
            edited = client.patch(
                "/orders/vtex/4001-01", json={"items": [{"sku": "321", "quantity": "4"}]}
            )
            assert edited.status_code == 200, edited.text
            invoiced = client.post(
                "/orders/vtex/4001-01/invoice", json={"number": "NF-9", "value": "79.60"}
            )
            assert invoiced.status_code == 200, invoiced.text
        [invoice] = eventually(lambda: vtex.invoices("4001-01"), what="the invoice arrives")
        assert [(i["quantity"], i["price"]) for i in invoice["items"]] == [(5, 1990)]
        assert invoice["invoiceValue"] == "7960"  # the invoice's own value is invoice data
    finally:
        stop_server(server)


OFFSETS = ["2026-11-28T10:15:30Z", "2026-11-28T10:15:30-03:00", "2026-11-28T10:15:30+05:30"]


def test_a_full_invoice_reaches_vtex_as_vtex_wants_it_whatever_the_offset(
    shop: Server, vtex: VtexEmulator
) -> None:
    """Every field of the contract's invoice, with issue dates in three offsets: each reaches
    VTEX, passing the own description (and VTEX's official schema when that layer is on),
    and no delivery is left pending or failed."""
    # Ids a URL could misread: each must stay one segment on the way to VTEX.
    sku, invoice_prefix = "camisa/açaí 100%?#..x", "NF/77 ?#%"
    orders = [f"500{n} #?%-é..x-01" for n in range(len(OFFSETS))]
    with shop.client() as client:
        move(client, "in-1", sku, 30)
        for order_id in orders:
            vtex.add_order(
                order_id, [{"sku": sku, "quantity": 2, "price": 4975}], state="payment-approved"
            )
        eventually(lambda: vtex.stock(sku, "1_1") == 24, what="the orders reserve")
        for n, (order_id, issued_at) in enumerate(zip(orders, OFFSETS, strict=True)):
            response = client.post(
                f"/orders/vtex/{quote(order_id, safe='')}/invoice",
                json={
                    "number": f"{invoice_prefix}{n}",
                    "key": "3526" + str(n) * 40,
                    "issued_at": issued_at,
                    "value": "99.50",
                    "tracking_code": f"BR{n}",
                    "tracking_url": f"https://track.example/BR{n}",
                },
            )
            assert response.status_code == 200, response.text
    for n, (order_id, issued_at) in enumerate(zip(orders, OFFSETS, strict=True)):
        [invoice] = eventually(lambda o=order_id: vtex.invoices(o), what=f"invoice of {order_id}")
        issued = datetime.fromisoformat(invoice.pop("issuanceDate"))
        assert issued == datetime.fromisoformat(issued_at.replace("Z", "+00:00"))
        assert invoice == {
            "type": "Output",
            "invoiceNumber": f"{invoice_prefix}{n}",
            "invoiceKey": "3526" + str(n) * 40,
            "invoiceValue": "9950",
            "trackingNumber": f"BR{n}",
            "trackingUrl": f"https://track.example/BR{n}",
            "courier": "Correios",
            "items": [{"id": sku, "quantity": 2, "price": 4975}],
        }
        assert vtex.order(order_id)["status"] == "invoiced"

    # The emulator logs a request once it has answered it, after the order shows "invoiced".
    def invoice_posts() -> list[dict[str, Any]] | None:
        found = [r for r in vtex.requests() if r["method"] == "POST" and "invoice" in r["path"]]
        return found if len(found) >= len(orders) else None

    posted = eventually(invoice_posts, what="every invoice POST in the emulator's log")
    assert sorted(r["params"]["orderId"] for r in posted) == sorted(orders)
    assert all(r["status"] == 200 and r["valid"] for r in posted)
    eventually(lambda: status(shop)["deliveries"]["pending"] == 0, what="nothing left pending")
    assert status(shop)["deliveries"]["failed"] == 0
    assert vtex.stock(sku, "1_1") == 24
    if not vtex.official:
        require_official()  # a bare clone: skipped, saying why, after the own checks; CI: fails
    assert all(r["official_valid"] is True for r in posted)


def test_the_lead_time_set_in_vtex_survives_the_ledgers_stock_updates(
    shop: Server, vtex: VtexEmulator
) -> None:
    vtex.set_lead_time("LT-1", "1_1", "05.12:00:00")  # the seller's handling time, set in VTEX
    with shop.client() as client:
        move(client, "in-1", "LT-1", 10)
        eventually(lambda: vtex.stock("LT-1", "1_1") == 10, what="the store shows 10")
        move(client, "out-1", "LT-1", -3)
        eventually(lambda: vtex.stock("LT-1", "1_1") == 7, what="the store shows 7")
    assert vtex.lead_time("LT-1", "1_1") == "05.12:00:00"
    updates = vtex.stock_updates("LT-1", "1_1")
    assert {u["method"] for u in updates} == {"PATCH"}
