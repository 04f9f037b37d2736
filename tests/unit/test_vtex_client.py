"""The VTEX client's requests, byte for byte, checked against the project's own description of
VTEX's endpoints and, where VTEX's files are found, against VTEX's official OpenAPI schema.

A mock transport is the right tool here: these tests assert exactly what goes on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from adapters.delivery_errors import DeliveryError
from adapters.vtex import VtexClient
from adapters.vtex_emulator.official import OfficialSchemas
from adapters.vtex_orders import invoice_payload, tracking_payload
from tests.vtex_contract import request_problems, require_official

BASE_URL = "https://acme.vtexcommercestable.com.br"
APP_KEY = "vtexappkey-acme-QWERTY"
APP_TOKEN = "SECRET-token-0123456789abcdefghijklmnopqrstuvwxyz"


def vtex_request(method: str, path: str, body: Any = None) -> httpx.Request:
    """A request as VtexClient would send it, for checking a payload on its own."""
    headers = {
        "X-VTEX-API-AppKey": APP_KEY,
        "X-VTEX-API-AppToken": APP_TOKEN,
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    return httpx.Request(method, BASE_URL + path, headers=headers, json=body)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schemas() -> OfficialSchemas:
    return require_official()


Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Answers every request with ``respond`` and keeps what was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.respond: Handler = lambda request: httpx.Response(200, json={})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.respond(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def wire() -> Recorder:
    return Recorder()


@pytest.fixture
def client(wire: Recorder) -> Iterator[VtexClient]:
    with VtexClient(
        BASE_URL + "/", APP_KEY, APP_TOKEN, transport=httpx.MockTransport(wire)
    ) as vtex:
        yield vtex


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- requests -----------------------------------------------------------------------------------


def test_every_request_carries_the_credentials_and_json_headers(
    client: VtexClient, wire: Recorder
) -> None:
    client.get_order("1-01")
    headers = wire.last.headers
    assert headers["X-VTEX-API-AppKey"] == APP_KEY
    assert headers["X-VTEX-API-AppToken"] == APP_TOKEN
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"


def test_set_quantity_patches_only_the_quantity(client: VtexClient, wire: Recorder) -> None:
    client.set_quantity("SKU-1", "wh-1", 7)
    request = wire.last
    assert request.method == "PATCH"
    assert (
        request.url.raw_path == b"/api/logistics/pvt/inventory/skus/SKU-1/warehouses/wh-1/quantity"
    )
    # No leadTime: the one the seller set in VTEX stays.
    assert body_of(request) == {"quantity": 7, "unlimitedQuantity": False}
    assert request_problems(request) == []


@pytest.mark.parametrize("quantity", [-1, 1.5, True])
def test_set_quantity_refuses_what_vtex_cannot_hold(
    client: VtexClient, wire: Recorder, quantity: Any
) -> None:
    with pytest.raises(ValueError, match="whole number"):
        client.set_quantity("1", "w", quantity)
    assert wire.requests == []


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("a/b", "a%2Fb"),
        ("what?", "what%3F"),
        ("x#1", "x%231"),
        ("100%", "100%25"),
        ("two words", "two%20words"),
        ("a..b", "a..b"),
        ("..x", "..x"),
        ("camisa-açaí", "camisa-a%C3%A7a%C3%AD"),
    ],
)
def test_every_id_is_encoded_as_exactly_one_path_segment(
    client: VtexClient, wire: Recorder, value: str, segment: str
) -> None:
    client.set_quantity(value, value, 1)
    client.read_stock(value)
    client.get_order(value)
    client.send_invoice(value, {"type": "Output"})
    client.update_tracking(value, value, {})

    paths = [r.url.raw_path.decode("ascii") for r in wire.requests]
    assert paths == [
        f"/api/logistics/pvt/inventory/skus/{segment}/warehouses/{segment}/quantity",
        f"/api/logistics/pvt/inventory/skus/{segment}",
        f"/api/oms/pvt/orders/{segment}",
        f"/api/oms/pvt/orders/{segment}/invoice",
        f"/api/oms/pvt/orders/{segment}/invoice/{segment}",
    ]


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_an_id_that_cannot_be_one_segment_is_refused_for_good_and_nothing_is_sent(
    client: VtexClient, wire: Recorder, value: str
) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: client.set_quantity(value, "w", 1),
        lambda: client.set_quantity("1", value, 1),
        lambda: client.read_stock(value),
        lambda: client.get_order(value),
        lambda: client.send_invoice(value, {"type": "Output"}),
        lambda: client.update_tracking(value, "NF-1", {}),
        lambda: client.update_tracking("1-01", value, {}),
    ]
    for call in calls:
        with pytest.raises(DeliveryError, match="cannot be a segment") as caught:
            call()
        assert not caught.value.retryable
    assert wire.requests == []


def test_read_stock_maps_warehouse_to_total_quantity(client: VtexClient, wire: Recorder) -> None:
    wire.respond = lambda request: httpx.Response(
        200,
        json={
            "skuId": "9",
            "balance": [
                {"warehouseId": "1fabf84", "totalQuantity": 5, "reservedQuantity": 2},
                {"warehouseId": "cd-sp", "totalQuantity": 0, "hasUnlimitedQuantity": False},
            ],
        },
    )
    assert client.read_stock("9") == {"1fabf84": 5, "cd-sp": 0}
    assert wire.last.method == "GET"
    assert wire.last.url.path == "/api/logistics/pvt/inventory/skus/9"
    assert request_problems(wire.last) == []


def test_feed_reads_at_most_ten_events(client: VtexClient, wire: Recorder) -> None:
    event = {"eventId": "E1", "handle": "h1", "state": "payment-approved", "orderId": "1-01"}
    wire.respond = lambda request: httpx.Response(200, json=[event])
    assert client.feed() == [event]
    assert wire.last.method == "GET"
    assert wire.last.url.path == "/api/orders/feed"
    assert wire.last.url.params["maxlot"] == "10"
    assert request_problems(wire.last) == []
    client.feed(3)
    assert wire.last.url.params["maxlot"] == "3"


@pytest.mark.parametrize("maxlot", [0, 11])
def test_feed_refuses_a_lot_vtex_would_refuse(
    client: VtexClient, wire: Recorder, maxlot: int
) -> None:
    with pytest.raises(ValueError, match="maxlot"):
        client.feed(maxlot)
    assert wire.requests == []


def test_commit_posts_the_handles(client: VtexClient, wire: Recorder) -> None:
    client.commit(["h1", "h2"])
    assert wire.last.method == "POST"
    assert wire.last.url.path == "/api/orders/feed"
    assert body_of(wire.last) == {"handles": ["h1", "h2"]}
    assert request_problems(wire.last) == []


def test_commit_of_nothing_sends_nothing(client: VtexClient, wire: Recorder) -> None:
    client.commit([])
    assert wire.requests == []


def test_get_order_returns_the_order(client: VtexClient, wire: Recorder) -> None:
    wire.respond = lambda request: httpx.Response(
        200, json={"orderId": "1-01", "status": "handling"}
    )
    assert client.get_order("1-01") == {"orderId": "1-01", "status": "handling"}
    assert wire.last.url.raw_path == b"/api/oms/pvt/orders/1-01"
    assert request_problems(wire.last) == []


def test_send_invoice_posts_the_payload_and_returns_the_receipt(
    client: VtexClient, wire: Recorder
) -> None:
    receipt = {"date": "2024-02-07T15:22:56Z", "orderId": "1-01", "receipt": "38e0"}
    wire.respond = lambda request: httpx.Response(200, json=receipt)
    order = {"value": 2499, "items": [{"id": "18", "quantity": 1, "price": 2499}]}
    payload = invoice_payload({"number": "NF/7", "value": "24.99"}, order)
    assert client.send_invoice("1-01", payload) == receipt
    assert wire.last.method == "POST"
    assert wire.last.url.raw_path == b"/api/oms/pvt/orders/1-01/invoice"
    assert body_of(wire.last) == payload
    assert request_problems(wire.last) == []


def test_update_tracking_patches_the_invoice(client: VtexClient, wire: Recorder) -> None:
    payload = tracking_payload({"number": "NF/7", "tracking_code": "BR123", "tracking_url": None})
    client.update_tracking("1-01", "NF/7", payload)
    assert wire.last.method == "PATCH"
    assert wire.last.url.raw_path == b"/api/oms/pvt/orders/1-01/invoice/NF%2F7"
    assert body_of(wire.last) == payload
    assert request_problems(wire.last) == []


def test_every_request_the_client_sends_passes_vtex_official_schema(
    client: VtexClient, wire: Recorder, schemas: OfficialSchemas
) -> None:
    wire.respond = lambda request: httpx.Response(200, json={})
    order = {"value": 2499, "items": [{"id": "18", "quantity": 1, "price": 2499}]}
    invoice = {"number": "NF/7", "value": "24.99", "tracking_code": "BR1", "tracking_url": "u"}
    client.set_quantity("SKU/1", "wh 1", 7)
    client.read_stock("SKU/1")
    client.feed()
    client.commit(["h1"])
    client.get_order("1-01")
    client.send_invoice("1-01", invoice_payload(invoice, order))
    client.update_tracking("1-01", "NF/7", tracking_payload(invoice))

    assert len(wire.requests) == 7
    for request in wire.requests:
        assert request_problems(request, schemas) == [], (request.method, request.url)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/logistics/pvt/inventory/skus/1/warehouses/w/quantity", {"quantity": "7"}),
        (
            "/api/logistics/pvt/inventory/skus/1/warehouses/w/quantity",
            {"quantity": 7, "leadTime": "00:00:00"},
        ),
    ],
    ids=["quantity as text", "no unlimitedQuantity"],
)
def test_both_checks_catch_a_wrong_body(
    schemas: OfficialSchemas, path: str, body: dict[str, Any]
) -> None:
    """The checks above would be worthless if either accepted anything."""
    problems = request_problems(vtex_request("PATCH", path, body), schemas)
    assert {p["layer"] for p in problems} == {"own", "official"}


# -- failures -----------------------------------------------------------------------------------


def fail_with(wire: Recorder, status: int, **kwargs: Any) -> None:
    wire.respond = lambda request: httpx.Response(status, **kwargs)


def test_429_is_retried_after_what_vtex_asks(client: VtexClient, wire: Recorder) -> None:
    fail_with(wire, 429, headers={"Retry-After": "30"}, text="Too Many Requests")
    with pytest.raises(DeliveryError) as caught:
        client.set_quantity("1", "w", 3)
    assert caught.value.retryable
    assert caught.value.retry_after == 30
    assert caught.value.status == 429


def test_423_a_colliding_update_is_retried(client: VtexClient, wire: Recorder) -> None:
    fail_with(wire, 423, text="Unable to acquire lock for key: acme_item_logistics_1_w.")
    with pytest.raises(DeliveryError) as caught:
        client.set_quantity("1", "w", 3)
    assert caught.value.retryable
    assert caught.value.retry_after is None
    assert caught.value.status == 423


def test_400_is_refused_for_good(client: VtexClient, wire: Recorder) -> None:
    fail_with(wire, 400, json={"error": {"message": "invalid invoice"}})
    with pytest.raises(DeliveryError) as caught:
        client.send_invoice("1-01", {"type": "Output"})
    assert not caught.value.retryable
    assert caught.value.status == 400
    assert "invalid invoice" in str(caught.value)


def test_a_dropped_connection_is_retried(client: VtexClient, wire: Recorder) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    wire.respond = refuse
    with pytest.raises(DeliveryError) as caught:
        client.feed()
    assert caught.value.retryable
    assert caught.value.status is None


def test_an_unreadable_answer_is_retried(client: VtexClient, wire: Recorder) -> None:
    fail_with(wire, 200, text="<html>maintenance</html>")
    with pytest.raises(DeliveryError) as caught:
        client.get_order("1-01")
    assert caught.value.retryable


def test_the_token_never_shows(client: VtexClient, wire: Recorder) -> None:
    assert APP_TOKEN not in repr(client)
    assert APP_KEY not in repr(client)
    # A proxy that echoes the request back must not carry the token into our logs.
    fail_with(wire, 401, text=f"bad credentials: X-VTEX-API-AppToken={APP_TOKEN}")
    with pytest.raises(DeliveryError) as caught:
        client.set_quantity("1", "w", 3)
    assert APP_TOKEN not in str(caught.value)
    assert APP_TOKEN not in str(caught.value.__cause__)
    assert APP_TOKEN not in repr(caught.value)
    assert not caught.value.retryable


def test_the_token_never_shows_in_transport_errors(client: VtexClient, wire: Recorder) -> None:
    def leak(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout(f"timed out sending {APP_TOKEN}", request=request)

    wire.respond = leak
    with pytest.raises(DeliveryError) as caught:
        client.commit(["h"])
    assert caught.value.retryable
    assert APP_TOKEN not in str(caught.value)
    assert APP_TOKEN not in str(caught.value.__cause__)
