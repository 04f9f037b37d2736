"""The generic webhook platform end to end: signed JSON out to a receiver, signed orders in."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.waiting import eventually

SECRET = "webhook-s3cret"


class Receiver:
    """A platform's endpoint: keeps what it receives and whether each signature was right."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(expected, self.headers.get("X-Ledger-Signature", ""))
                receiver.received.append((json.loads(body), signed))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ledger"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [message for message, _ in self.received if message["event"] == kind]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


@pytest.fixture
def shop(sqlite_url: str, tmp_path: Path, receiver: Receiver) -> Iterator[Server]:
    server = start_server(sqlite_url, tmp_path)
    with server.client() as client:
        response = client.put(
            "/platforms/hooky",
            json={
                "type": "webhook",
                "base_url": receiver.url,
                "credentials": {"secret": SECRET},
                "warehouses": {"main": "W1"},
                "carriers": {"PAC": "pac"},
            },
        )
        assert response.status_code == 200, response.text
    yield server
    stop_server(server)


def signed(body: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Ledger-Signature": signature, "Content-Type": "application/json"}


def test_stock_and_order_status_go_out_signed_and_orders_come_in_signed(
    shop: Server, receiver: Receiver
) -> None:
    with shop.client() as client:
        response = client.post(
            "/movements",
            json={"movement_id": "in-1", "sku": "W-1", "kind": "manual", "quantity": "8"},
        )
        assert response.status_code == 201, response.text
    eventually(
        lambda: any(e["sku"] == "W-1" and e["quantity"] == "8" for e in receiver.events("stock")),
        what="the stock arrives",
    )

    order = {
        "order_id": "H-1",
        "status": "payment_confirmed",
        "carrier": "PAC",
        "items": [{"sku": "W-1", "quantity": "3"}],
    }
    hook = f"{shop.url}/platforms/hooky/hook"
    raw, headers = signed(order, secret="wrong")
    assert httpx.post(hook, content=raw, headers=headers).status_code == 401
    raw, headers = signed(order)
    assert httpx.post(hook, content=raw + b" ", headers=headers).status_code == 401  # altered
    for _ in range(2):  # a repeated delivery imports once
        response = httpx.post(hook, content=raw, headers=headers)
        assert response.status_code == 200, response.text
    position = response.json()["position"] or 0
    with shop.client() as client:
        level = client.get(f"/stock/W-1?after={position}").json()["warehouses"][0]
        assert level["reserved"] == "3"
        eventually(
            lambda: any(e["quantity"] == "5" for e in receiver.events("stock")), what="5 is sent"
        )
        assert client.post("/orders/hooky/H-1/cancel").status_code == 200
    eventually(
        lambda: any(
            e["order_id"] == "H-1" and e["status"] == "cancelled" for e in receiver.events("order")
        ),
        what="the cancellation is sent",
    )
    eventually(
        lambda: receiver.events("stock")[-1]["quantity"] == "8", what="8 again after the cancel"
    )
    assert all(ok for _, ok in receiver.received)
    # Status and invoice only: no payment data, no lines (local edits stay in the ledger).
    allowed = {"event", "platform", "order_id", "status", "deleted", "invoice", "sent_at"}
    assert all(set(m) <= allowed for m in receiver.events("order"))


def test_hostile_hooks_and_mappings_get_clear_errors(shop: Server) -> None:
    hook = f"{shop.url}/platforms/hooky/hook"
    raw, _ = signed({"order_id": "X"})
    weird = httpx.post(hook, content=raw, headers={"X-Ledger-Signature": "sha256=\u00e9".encode()})
    assert weird.status_code == 401
    deep = b"[" * 50_000 + b"]" * 50_000
    _, headers = signed({"x": 1})
    headers["X-Ledger-Signature"] = (
        "sha256=" + hmac.new(SECRET.encode(), deep, hashlib.sha256).hexdigest()
    )
    assert httpx.post(hook, content=deep, headers=headers).status_code in (413, 422)
    with shop.client() as client:
        twice = client.put(
            "/platforms/hooky",
            json={"type": "webhook", "warehouses": {"main": "W1", "other": "W1"}},
        )
        assert twice.status_code == 422
        assert "same platform id" in twice.text


def test_an_invoice_with_its_date_and_value_reaches_the_platform(
    shop: Server, receiver: Receiver
) -> None:
    """The contract's full invoice (an issue moment with its offset, a decimal value) goes out
    as plain JSON; it used to crash the delivery and leave it pending forever."""
    order = {
        "order_id": "H-2",
        "status": "payment_confirmed",
        "carrier": "PAC",
        "items": [{"sku": "W-2", "quantity": "1"}],
    }
    raw, headers = signed(order)
    assert httpx.post(f"{shop.url}/platforms/hooky/hook", content=raw, headers=headers).is_success
    with shop.client() as client:
        response = client.post(
            "/orders/hooky/H-2/invoice",
            json={
                "number": "NF-8",
                "key": "3519" + "0" * 40,
                "issued_at": "2026-11-28T10:00:00-03:00",
                "value": "99.50",
                "tracking_code": "BR1",
                "tracking_url": "https://track.example/BR1",
            },
        )
        assert response.status_code == 200, response.text

    def invoiced() -> list[dict[str, Any]]:
        return [
            e["invoice"]
            for e in receiver.events("order")
            if e["order_id"] == "H-2" and e["invoice"] is not None
        ]

    [invoice] = eventually(invoiced, what="the invoice arrives")
    issued_at = datetime.fromisoformat(invoice.pop("issued_at"))
    assert issued_at == datetime(2026, 11, 28, 13, tzinfo=UTC)  # the same moment
    assert invoice == {
        "number": "NF-8",
        "key": "3519" + "0" * 40,
        "value": "99.5",
        "tracking_code": "BR1",
        "tracking_url": "https://track.example/BR1",
    }
    with shop.client() as client:
        deliveries = client.get("/platforms/hooky/status").json()["deliveries"]
    assert (deliveries["retrying"], deliveries["failed"]) == (0, 0)
    assert deliveries["attempts"]["unexpected_error"] == 0
