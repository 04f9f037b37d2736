"""Liveness, readiness and what the service says when a view cannot apply an event or the
database goes away: without a token, and without the database's address or data."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

import httpx
import pytest

from api.settings import Settings
from api.wiring import build
from ledger.movements import MovementRequest
from ledger.stock import Stock
from tests.e2e.conftest import Server, start_server, stop_server
from tests.waiting import eventually


def test_probes_answer_without_a_token(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "problems": []})
    assert httpx.get(f"{server.url}/views").status_code == 401


@pytest.mark.postgres
def test_a_view_that_cannot_apply_an_event_says_which_and_keeps_the_ones_before(
    postgres_url: str, tmp_path: Path
) -> None:
    running = start_server(postgres_url, tmp_path)
    try:
        # Events no entry point accepts any more (a NUL in a SKU), written as an older
        # version could have: PostgreSQL's text cannot hold a NUL.
        writer = build(Settings(database_url=postgres_url))
        try:
            good = MovementRequest.parse(
                {"movement_id": "ok", "sku": "GOOD", "kind": "invoice", "quantity": "1"}
            )
            [before] = writer.app.record_movements([good], recorded_by="t")
            _, poisoned = Stock.opened("BAD\x00SKU", "main", Stock.Opened.create_timestamp())
            [position] = writer.app.store_events([poisoned]).values()
        finally:
            writer.close()
        ready = eventually(
            lambda: (r := httpx.get(f"{running.url}/readyz")).status_code == 503 and r
        )
        assert ready, "the view never reported the event it cannot apply"
        problems = {p["component"]: p["problem"] for p in ready.json()["problems"]}
        expected = f"cannot apply event {position} (Stock.Opened): DataError"
        assert problems["view stock_levels"] == expected
        assert "127.0.0.1" not in ready.text
        assert "BAD" not in ready.text
        assert httpx.get(f"{running.url}/healthz").status_code == 200  # alive all the same
        views = {v["name"]: v for v in running.views()["views"]}
        assert views["stock_levels"]["position"] >= (before.position or 0)
        assert views["stock_levels"]["position"] < position
        assert views["stock_levels"]["problem"] == expected
        with running.client() as client:
            metrics = client.get("/metrics").text
        assert 'ledger_view_failing{view="stock_levels"} 1.0' in metrics
        assert 'ledger_view_failing{view="order_list"} 0.0' in metrics
    finally:
        stop_server(running, expect_tracebacks=True)
    assert f"cannot apply event {position} (Stock.Opened)" in running.log.read_text()


class _Proxy:
    """A TCP forwarder the test can cut, to take the database away from the server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        self.cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut_off(self) -> None:
        self.cut = True
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.mark.postgres
def test_without_its_database_the_service_is_alive_but_not_ready(
    postgres_url: str, tmp_path: Path
) -> None:
    proxy = _Proxy(("127.0.0.1", 5432))
    url = postgres_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    running = start_server(url, tmp_path)
    try:
        assert httpx.get(f"{running.url}/readyz").status_code == 200
        proxy.cut_off()
        ready = eventually(
            lambda: (r := httpx.get(f"{running.url}/readyz", timeout=30)).status_code == 503 and r
        )
        assert ready.json() == {
            "status": "unready",
            "problems": [{"component": "database", "problem": "unreachable"}],
        }
        assert str(proxy.port) not in ready.text
        assert httpx.get(f"{running.url}/healthz").json() == {"status": "ok"}
    finally:
        stop_server(running, expect_tracebacks=True)


def test_metrics_hold_the_process_requests_by_route_and_oversold_stocks(server: Server) -> None:
    with server.client() as client:
        body = {"movement_id": "m1", "sku": "SKU-1", "kind": "invoice", "quantity": "1"}
        assert client.post("/movements", json=body).status_code == 201
        client.put("/platforms/shop", json={"type": "webhook", "carriers": {"PAC": "pac"}})
        order = {
            "platform": "shop",
            "order_id": "o1",
            "status": "payment_confirmed",
            "carrier": "PAC",
            "items": [{"sku": "SKU-1", "quantity": "3"}],
        }
        placed = client.post("/orders", json=order).json()
        client.get("/stock/anything-at-all")  # a 404, labelled by the route's template
        client.get("/movements", params={"after": placed["position"]})
        client.get("/stock", params={"after": placed["position"]})
        text = client.get("/metrics").text
    assert "process_resident_memory_bytes " in text
    assert "python_gc_objects_collected_total{" in text
    assert 'ledger_http_requests_total{method="POST",route="/movements",status="201"} 1.0' in text
    assert 'ledger_http_requests_total{method="GET",route="/stock/{sku}",status="404"} 1.0' in text
    assert "anything-at-all" not in text
    assert 'ledger_http_request_duration_seconds_count{method="POST",route="/orders"} 1.0' in text
    assert "ledger_stocks_oversold 1.0" in text  # physical 1, reserved 3
    assert "ledger_database_up 1.0" in text
