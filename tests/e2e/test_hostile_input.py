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
from urllib.parse import quote

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

# A VTEX store nobody answers for: only its hook is used, and nothing is mapped to send.
VTEX_PLATFORM = {
    "type": "vtex",
    "base_url": "http://127.0.0.1:9",
    "credentials": {"app_key": "vtexappkey-h", "app_token": "token-h", "hook_secret": SECRET},
    "feed_interval_seconds": 3600,
}
ITEM_QUANTITY, ITEM_SKU = "items[0].quantity", "items[0].sku"

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


def vtex_hook(payload: Any) -> Send:
    headers = {**JSON, "X-Ledger-Hook-Secret": SECRET}
    return lambda client: client.post(
        "/platforms/vtexshop/hook", content=json.dumps(payload), headers=headers
    )


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


def remove(path: str) -> Send:
    return lambda client: client.delete(path)


def put(path: str, payload: Any) -> Send:
    return lambda client: client.put(path, content=json.dumps(payload), headers=JSON)


def platform(**changes: Any) -> dict[str, Any]:
    return {"type": "vtex", "base_url": "https://shop.vtexcommercestable.com.br"} | changes


def cases() -> Iterator[tuple[str, Send, str]]:
    """(what is sent, how, the field the refusal must name)."""
    for name, value in QUANTITIES.items():
        yield f"movement quantity: {name}", post("/movements", movement(quantity=value)), "quantity"
        batch = {"movements": [movement(movement_id="h-2"), movement(quantity=value)]}
        yield (
            f"batch row quantity: {name}",
            post("/movements/batch", batch),
            "movements[1].quantity",
        )
        items = item(quantity=value)
        yield f"order item quantity: {name}", post("/orders", order(items=items)), ITEM_QUANTITY
        edit = patch("/orders/shop/o1", {"items": items})
        yield f"order edit quantity: {name}", edit, ITEM_QUANTITY
        yield f"hook item quantity: {name}", hook(order(items=items)), ITEM_QUANTITY
        invoice = {"number": "NF-1", "value": value}
        yield f"invoice value: {name}", post("/orders/shop/o1/invoice", invoice), "value"
    for value in ("0", "-10", "0.001"):
        invoice = {"number": "NF-1", "value": value}
        yield f"invoice value {value}", post("/orders/shop/o1/invoice", invoice), "value"
    for name, value in CODES.items():
        yield f"movement sku: {name}", post("/movements", movement(sku=value)), "sku"
        yield (
            f"movement warehouse: {name}",
            post("/movements", movement(warehouse=value)),
            "warehouse",
        )
        yield (
            f"movement id: {name}",
            post("/movements", movement(movement_id=value)),
            "movement_id",
        )
        yield (
            f"batch row sku: {name}",
            post("/movements/batch", {"movements": [movement(sku=value)]}),
            "movements[0].sku",
        )
        yield f"order id: {name}", post("/orders", order(order_id=value)), "order_id"
        yield f"order platform: {name}", post("/orders", order(platform=value)), "platform"
        yield f"order item sku: {name}", post("/orders", order(items=item(sku=value))), ITEM_SKU
        yield (
            f"order item warehouse: {name}",
            post("/orders", order(items=item(warehouse=value))),
            "items[0].warehouse",
        )
        edit = patch("/orders/shop/o1", {"items": item(sku=value)})
        yield f"order edit sku: {name}", edit, ITEM_SKU
        yield f"hook order id: {name}", hook(order(order_id=value)), "order_id"
        yield f"hook item sku: {name}", hook(order(items=item(sku=value))), ITEM_SKU
        yield f"VTEX hook OrderId: {name}", vtex_hook({"OrderId": value}), "OrderId"
        invoice = post("/orders/shop/o1/invoice", {"number": value})
        yield f"invoice number: {name}", invoice, "number"
        token = post("/tokens", {"name": value, "permissions": ["read"]})
        yield f"token name: {name}", token, "name"
    for name, value in CODES.items():
        # A client resolves "." and ".." away before sending; a path carries bytes, and the
        # bytes of a lone surrogate are not UTF-8: the server reads them as replacement
        # characters, an id that no order has (404).
        if name in ("dot", "dot dot", "lone surrogate"):
            continue
        segment = quote(value, safe="")
        for action in ("status", "post-stock", "cancel", "invoice"):
            body = {"status": "invoiced"} if action == "status" else {"number": "NF-9"}
            send = post(f"/orders/shop/{segment}/{action}", body)
            yield f"order id in the path of {action}: {name}", send, "order_id"
        yield (
            f"order id in the path of DELETE: {name}",
            remove(f"/orders/shop/{segment}"),
            "order_id",
        )
    for name, value in CODES.items():
        for field in ("warehouses", "skus"):
            key = "main" if field == "warehouses" else "SKU-1"
            send = put("/platforms/vtex", platform(**{field: {key: value}}))
            yield f"platform {field} id: {name}", send, f"{field}.{key}"
            send = put("/platforms/vtex", platform(**{field: {value: "x1"}}))
            yield f"platform {field} key: {name}", send, field
        # The ledger's carrier is a code (the key); the platform's carrier name, one line of
        # text (the value), which may hold a dot or a space but never a control character.
        if name in LINES:
            send = put("/platforms/vtex", platform(carriers={value: "pac"}))
            yield f"platform carrier mapping key: {name}", send, "carriers"
            send = put("/platforms/vtex", platform(carriers={"PAC": value}))
            yield f"platform carrier name: {name}", send, "carriers.PAC"
    for name, token in {
        "a line feed": "abc\ndef",
        "a space": "abc def",
        "non-ASCII": "tökén",
        "NUL": "abc\x00",
    }.items():
        credentials = {"app_key": "vtexappkey-shop", "app_token": token}
        send = put("/platforms/vtex", platform(credentials=credentials))
        yield f"platform credential with {name}", send, "credentials.app_token"
    for url in (
        "not a url",
        "https://",
        "ftp://shop.example",
        "http://shop.example",
        "https://a b",
    ):
        send = put("/platforms/vtex", platform(base_url=url))
        yield f"platform base_url {url!r}", send, "base_url"
    for name, number in {"an integer of 400 digits": 10**400, "zero": 0, "-1": -1}.items():
        send = put("/platforms/vtex", platform(rate_limit=number))
        yield f"platform rate_limit {name}", send, "rate_limit"
    for name, value in LINES.items():
        if name not in ("line feed", "tab"):  # a note and a reference may hold those
            yield f"movement note: {name}", post("/movements", movement(note=value)), "note"
            send = post("/movements", movement(reference=value))
            yield f"movement reference: {name}", send, "reference"
        yield f"order carrier: {name}", post("/orders", order(carrier=value)), "carrier"
        yield f"hook carrier: {name}", hook(order(carrier=value)), "carrier"
        send = post("/orders/shop/o1/invoice", {"number": "1", "key": value})
        yield f"invoice key: {name}", send, "key"
        tracking = {"number": "1", "tracking_code": value}
        send = post("/orders/shop/o1/invoice", tracking)
        yield f"invoice tracking code: {name}", send, "tracking_code"


CASES = list(cases())


@pytest.fixture(scope="module")
def hostile_server(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    running = start_server(module_database_url, tmp_path_factory.mktemp("hostile"))
    with running.client() as client:
        assert client.put("/platforms/shop", json=PLATFORM).status_code == 200
        assert client.put("/platforms/vtexshop", json=VTEX_PLATFORM).status_code == 200
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

        for name, send, field in CASES:
            before = head()
            response = send(client)
            error = response.json()
            if response.status_code != 422:
                failures.append(f"{name}: {response.status_code} {response.text}")
            elif not (error.get("error") == "invalid_input" and error.get("detail")):
                failures.append(f"{name}: no error code and sentence: {error}")
            elif error.get("field") != field:
                failures.append(f"{name}: names {error.get('field')!r}, not {field!r}")
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
