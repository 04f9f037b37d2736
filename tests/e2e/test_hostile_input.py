"""Hostile and odd input, sent to every entry point it reaches: always a 4xx naming the field,
nothing recorded, and every view keeps running (issue 10's point 3, as a table).

Values that cannot be held exactly (quantities beyond the decimal context), codes that a URL
would resolve as "this" or "the parent" resource (``.`` and ``..``), text that no table can
store or no log line should carry (NUL, line breaks and escape sequences in one-line fields),
and positions beyond the event store's head.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server

SECRET = "hook-secret-for-tests"
PLATFORM = {
    "type": "webhook",
    "base_url": "http://127.0.0.1:9/hook",  # nothing listens: deliveries just wait
    "credentials": {"secret": SECRET},
    "carriers": {"PAC": "pac"},
}

QUANTITIES = {
    "beyond the decimal context": "99999999999999999999999.9999999",
    "an exponent no context holds": "1e999999999",
    "a negative exponent no context holds": "1e-999999999",
    "seven decimal places": "1.0000001",
}
CODES = {
    "dot": ".",
    "dot dot": "..",
    "NUL": "a\x00b",
    "line feed": "a\nb",
    "tab": "a\tb",
    "escape sequence": "\x1b[31mred",
    "C1 control": "a\x85b",
    "lone surrogate": "a\ud800b",
    "leading space": " a",
}
LINES = {k: v for k, v in CODES.items() if k not in ("dot", "dot dot", "leading space")}


def movement(**changes: Any) -> dict[str, Any]:
    return {
        "movement_id": "h-1",
        "sku": "SKU-1",
        "kind": "purchase_order",
        "quantity": "1",
    } | changes


def order(**changes: Any) -> dict[str, Any]:
    base = {
        "platform": "shop",
        "order_id": "h-order",
        "status": "payment_confirmed",
        "carrier": "PAC",
        "items": [{"sku": "SKU-1", "quantity": "1"}],
    }
    return base | changes


def item(**changes: Any) -> list[dict[str, Any]]:
    return [{"sku": "SKU-1", "quantity": "1"} | changes]


Send = Callable[[httpx.Client], httpx.Response]


JSON = {"Content-Type": "application/json"}


def post(path: str, payload: Any) -> Send:
    # json.dumps escapes what UTF-8 cannot carry (a lone surrogate) as JSON allows.
    return lambda client: client.post(path, content=json.dumps(payload), headers=JSON)


def patch(path: str, payload: Any) -> Send:
    return lambda client: client.patch(path, content=json.dumps(payload), headers=JSON)


def hook(payload: Any) -> Send:
    def send(client: httpx.Client) -> httpx.Response:
        raw = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        return client.post(
            "/platforms/shop/hook",
            content=raw,
            headers={"Content-Type": "application/json", "X-Ledger-Signature": signature},
        )

    return send


def put(path: str, payload: Any) -> Send:
    return lambda client: client.put(path, content=json.dumps(payload), headers=JSON)


def platform(**changes: Any) -> dict[str, Any]:
    return {"type": "vtex", "base_url": "https://shop.vtexcommercestable.com.br"} | changes


def cases() -> Iterator[tuple[str, Send]]:
    for name, value in QUANTITIES.items():
        yield f"movement quantity: {name}", post("/movements", movement(quantity=value))
        batch = {"movements": [movement(movement_id="h-2"), movement(quantity=value)]}
        yield f"batch row quantity: {name}", post("/movements/batch", batch)
        yield f"order item quantity: {name}", post("/orders", order(items=item(quantity=value)))
        yield (
            f"order edit quantity: {name}",
            patch("/orders/shop/o1", {"items": item(quantity=value)}),
        )
        yield f"hook item quantity: {name}", hook(order(items=item(quantity=value)))
        invoice = {"number": "NF-1", "value": value}
        yield f"invoice value: {name}", post("/orders/shop/o1/invoice", invoice)
    for value in ("0", "-10"):
        invoice = {"number": "NF-1", "value": value}
        yield f"invoice value {value}", post("/orders/shop/o1/invoice", invoice)
    for name, value in CODES.items():
        yield f"movement sku: {name}", post("/movements", movement(sku=value))
        yield f"movement warehouse: {name}", post("/movements", movement(warehouse=value))
        yield f"movement id: {name}", post("/movements", movement(movement_id=value))
        yield (
            f"batch row sku: {name}",
            post("/movements/batch", {"movements": [movement(sku=value)]}),
        )
        yield f"order id: {name}", post("/orders", order(order_id=value))
        yield f"order platform: {name}", post("/orders", order(platform=value))
        yield f"order item sku: {name}", post("/orders", order(items=item(sku=value)))
        yield f"order item warehouse: {name}", post("/orders", order(items=item(warehouse=value)))
        yield f"order edit sku: {name}", patch("/orders/shop/o1", {"items": item(sku=value)})
        yield f"hook order id: {name}", hook(order(order_id=value))
        yield f"hook item sku: {name}", hook(order(items=item(sku=value)))
        yield f"invoice number: {name}", post("/orders/shop/o1/invoice", {"number": value})
        yield f"token name: {name}", post("/tokens", {"name": value, "permissions": ["read"]})
    for name, value in CODES.items():
        for field in ("warehouses", "skus"):
            entry = {"main": value} if field == "warehouses" else {"SKU-1": value}
            yield f"platform {field} id: {name}", put("/platforms/vtex", platform(**{field: entry}))
            yield (
                f"platform {field} key: {name}",
                put("/platforms/vtex", platform(**{field: {value: "x1"}})),
            )
        # The ledger's carrier is a code; the platform's carrier name, one line of text.
        carriers = {value: "pac"} if name in LINES else {"PAC": value}
        yield (
            f"platform carrier mapping: {name}",
            put("/platforms/vtex", platform(carriers=carriers)),
        )
    for name, token in {
        "a line feed": "abc\ndef",
        "a space": "abc def",
        "non-ASCII": "tökén",
        "NUL": "abc\x00",
    }.items():
        credentials = {"app_key": "vtexappkey-shop", "app_token": token}
        yield (
            f"platform credential with {name}",
            put("/platforms/vtex", platform(credentials=credentials)),
        )
    for url in (
        "not a url",
        "https://",
        "ftp://shop.example",
        "http://shop.example",
        "https://a b",
    ):
        yield f"platform base_url {url!r}", put("/platforms/vtex", platform(base_url=url))
    for name, value in LINES.items():
        if name not in ("line feed", "tab"):  # a note and a reference may hold those
            yield f"movement note: {name}", post("/movements", movement(note=value))
            yield f"movement reference: {name}", post("/movements", movement(reference=value))
        yield f"order carrier: {name}", post("/orders", order(carrier=value))
        yield f"hook carrier: {name}", hook(order(carrier=value))
        yield f"invoice key: {name}", post("/orders/shop/o1/invoice", {"number": "1", "key": value})
        tracking = {"number": "1", "tracking_code": value}
        yield f"invoice tracking code: {name}", post("/orders/shop/o1/invoice", tracking)


CASES = list(cases())


@pytest.fixture(scope="module")
def hostile_server(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    running = start_server(module_database_url, tmp_path_factory.mktemp("hostile"))
    with running.client() as client:
        assert client.put("/platforms/shop", json=PLATFORM).status_code == 200
        assert client.post(
            "/movements", json=movement(movement_id="setup", quantity="5")
        ).is_success
        assert client.post("/orders", json=order(order_id="o1")).status_code == 201
    yield running
    stop_server(running)


def test_hostile_input_is_refused_and_records_nothing(hostile_server: Server) -> None:
    """Every case of the table over one connection; every failure is listed at the end."""
    server = hostile_server
    failures = []
    with server.client() as client:

        def head() -> int:
            return client.get("/views").json()["event_store_position"]

        for name, send in CASES:
            before = head()
            response = send(client)
            error = response.json()
            if not 400 <= response.status_code < 500:
                failures.append(f"{name}: {response.status_code} {response.text}")
            elif not (error.get("error") and error.get("detail")):
                failures.append(f"{name}: no error code and sentence: {error}")
            elif error["error"] == "invalid_input" and not error.get("field"):
                failures.append(f"{name}: the field is not named: {error}")
            elif head() != before:
                failures.append(f"{name}: something was recorded")
    assert not failures, "\n".join(failures)
    assert len(CASES) > 100


def test_after_beyond_the_newest_event_is_refused_at_once_everywhere(
    hostile_server: Server,
) -> None:
    server = hostile_server
    beyond = server.head() + 1_000
    with server.client() as client:
        for path in ("/stock/SKU-1", "/stock", "/movements", "/orders"):
            response = client.get(path, params={"after": beyond})
            assert response.status_code == 422, path
            assert response.json()["error"] == "unknown_position"


def test_every_view_is_still_running_after_all_of_it(hostile_server: Server) -> None:
    server = hostile_server
    with server.client() as client:
        written = client.post("/movements", json=movement(movement_id="after-all", quantity="2"))
        assert written.status_code == 201
        assert client.get("/movements", params={"after": written.json()["position"]}).is_success
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready", "problems": []}
    views = server.views()["views"]
    assert not any(v["failing"] for v in views), views


def test_nothing_hostile_reached_the_log_raw(hostile_server: Server, tmp_path: Path) -> None:
    # The log is written as text: a client's escape sequence or line feed must not forge
    # log lines or colour an operator's terminal.
    text = hostile_server.log.read_text()
    assert "\x1b[31m" not in text
    assert "\x00" not in text
