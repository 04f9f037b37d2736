"""The VTEX emulator over real HTTP: its checks (own description and VTEX's official schema),
state, lead times, faults, hooks and control API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from adapters.vtex_emulator import VtexEmulator
from adapters.vtex_emulator.official import SPECS_ENV, OfficialSchemas
from tests.vtex_contract import require_official
from tests.waiting import eventually

APP_KEY = "vtexappkey-test"
APP_TOKEN = "secret-token"
HEADERS = {
    "X-VTEX-API-AppKey": APP_KEY,
    "X-VTEX-API-AppToken": APP_TOKEN,
    "Accept": "application/json",
    "Content-Type": "application/json",
}
PUT_SKU = "/api/logistics/pvt/inventory/skus/{sku}/warehouses/{warehouse}"
PATCH_SKU = PUT_SKU + "/quantity"


def put_body(quantity: Any = 5, lead_time: str = "00:00:00") -> dict[str, Any]:
    return {"quantity": quantity, "unlimitedQuantity": False, "leadTime": lead_time}


def patch_body(quantity: Any = 5) -> dict[str, Any]:
    return {"quantity": quantity, "unlimitedQuantity": False}


def invoice_body(number: str = "NF-1", value: Any = "3980", price: Any = 1990) -> dict[str, Any]:
    return {
        "type": "Output",
        "issuanceDate": "2024-05-01T12:00:00-03:00",
        "invoiceNumber": number,
        "invoiceValue": value,
        "items": [{"id": "123", "price": price, "quantity": 2}],
    }


TRACKING = {
    "trackingNumber": "BR123",
    "trackingUrl": "https://track.example/BR123",
    "courier": "Correios",
    "dispatchedDate": None,
}


def own(errors: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """Where the own description found problems: (in, path or name)."""
    return [(e["in"], e.get("path") or e.get("name")) for e in errors if e["layer"] == "own"]


@pytest.fixture
def emulator() -> Iterator[VtexEmulator]:
    with VtexEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emulator: VtexEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, headers=HEADERS, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def schemas() -> OfficialSchemas:
    return require_official()


# ------------------------------------------------------------------ inventory


def test_valid_put_is_kept_and_shown_by_the_sku_balance(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    before = time.time()
    response = client.put(PUT_SKU.format(sku="123", warehouse="1_1"), json=put_body(5))

    assert response.status_code == 200
    assert response.json() is True
    assert response.headers["content-type"].startswith("application/json")
    assert emulator.stock("123", "1_1") == 5
    [update] = emulator.stock_updates("123", "1_1")
    assert (update["method"], update["quantity"]) == ("PUT", 5)
    assert before <= update["at"] <= time.time()

    balance = client.get("/api/logistics/pvt/inventory/skus/123")
    assert balance.status_code == 200
    [warehouse] = balance.json()["balance"]
    assert warehouse["warehouseId"] == "1_1"
    assert warehouse["totalQuantity"] == 5
    assert warehouse["hasUnlimitedQuantity"] is False
    [logged] = [r for r in emulator.requests() if r["method"] == "PUT"]
    assert logged["valid"] is True
    assert logged["official_valid"] is (True if emulator.official else None)
    assert logged["status"] == 200


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"unlimitedQuantity": False, "leadTime": "00:00:00"}, ("body", "quantity")),
        (put_body("5"), ("body", "quantity")),
        (put_body(None), ("body", "quantity")),
        (put_body(5.5), ("body", "quantity")),
        (put_body(2**31), ("body", "quantity")),
        ({"quantity": 5, "leadTime": "00:00:00"}, ("body", "unlimitedQuantity")),
        (put_body() | {"unlimitedQuantity": "false"}, ("body", "unlimitedQuantity")),
        ({"quantity": 5, "unlimitedQuantity": False}, ("body", "leadTime")),
        (put_body(lead_time="tomorrow"), ("body", "leadTime")),
        (None, ("body", None)),
        # PROVENANCE: the prose allows null here, the schema does not; clients must omit it.
        (put_body() | {"dateUtcOnBalanceSystem": None}, ("body", "dateUtcOnBalanceSystem")),
    ],
)
def test_a_put_breaking_the_description_gets_400_and_changes_nothing(
    emulator: VtexEmulator, client: httpx.Client, body: dict | None, where: tuple[str, str]
) -> None:
    emulator.set_stock("123", "1_1", 7)

    response = client.put(PUT_SKU.format(sku="123", warehouse="1_1"), json=body)

    assert response.status_code == 400
    assert where in own(response.json()["errors"])
    assert emulator.stock("123", "1_1") == 7
    assert emulator.stock_updates() == []
    [logged] = emulator.requests()
    assert logged["valid"] is False


def test_a_patch_sets_only_the_quantity_and_keeps_the_lead_time(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    assert client.put(PUT_SKU.format(sku="9", warehouse="w"), json=put_body(1, "03.00:00:00"))
    emulator.set_lead_time("9", "w2", "01.12:00:00")  # set by the seller in VTEX

    first = client.patch(PATCH_SKU.format(sku="9", warehouse="w"), json=patch_body(4))
    second = client.patch(PATCH_SKU.format(sku="9", warehouse="w2"), json=patch_body(6))

    assert first.status_code == second.status_code == 204
    assert first.content == b""
    assert (emulator.stock("9", "w"), emulator.lead_time("9", "w")) == (4, "03.00:00:00")
    assert (emulator.stock("9", "w2"), emulator.lead_time("9", "w2")) == (6, "01.12:00:00")
    assert [(u["method"], u["warehouse"], u["quantity"]) for u in emulator.stock_updates("9")] == [
        ("PUT", "w", 1),
        ("PATCH", "w", 4),
        ("PATCH", "w2", 6),
    ]
    balance = client.get("/api/logistics/pvt/inventory/skus/9").json()["balance"]
    assert {b["warehouseId"]: b["leadTime"] for b in balance} == {
        "w": "03.00:00:00",
        "w2": "01.12:00:00",
    }
    # A PUT, which always carries a lead time, replaces it.
    assert client.put(PUT_SKU.format(sku="9", warehouse="w"), json=put_body(2, "00:00:00"))
    assert emulator.lead_time("9", "w") == "00:00:00"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"unlimitedQuantity": False}, ("body", "quantity")),
        ({"quantity": 3}, ("body", "unlimitedQuantity")),
        (patch_body("3"), ("body", "quantity")),
        (None, ("body", None)),
    ],
)
def test_a_patch_breaking_the_description_gets_400_and_changes_nothing(
    emulator: VtexEmulator, client: httpx.Client, body: dict | None, where: tuple[str, str]
) -> None:
    emulator.set_stock("9", "w", 7)

    response = client.patch(PATCH_SKU.format(sku="9", warehouse="w"), json=body)

    assert response.status_code == 400
    assert where in own(response.json()["errors"])
    assert emulator.stock("9", "w") == 7


def test_a_lead_time_must_read_like_vtex_writes_it(emulator: VtexEmulator) -> None:
    with pytest.raises(ValueError, match=r"dd\.hh:mm:ss"):
        emulator.set_lead_time("1", "w", "3 days")
    with pytest.raises(ValueError, match=r"dd\.hh:mm:ss"):
        emulator.set_stock("1", "w", 5, lead_time="24:00:00")
    assert emulator.lead_time("1", "w") is None


def test_reserved_quantity_follows_open_orders(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    client.put(PUT_SKU.format(sku="123", warehouse="1_1"), json=put_body(10))
    emulator.add_order("1-01", [{"sku": "123", "quantity": 3, "price": 1990}], warehouse_id="1_1")

    def reserved() -> int:
        response = client.get("/api/logistics/pvt/inventory/skus/123")
        return response.json()["balance"][0]["reservedQuantity"]

    assert reserved() == 3
    emulator.set_state("1-01", "canceled")
    assert reserved() == 0


@pytest.mark.parametrize("missing", ["Content-Type", "Accept"])
def test_a_request_without_the_headers_vtex_requires_gets_400(
    emulator: VtexEmulator, missing: str
) -> None:
    with httpx.Client(base_url=emulator.url) as bare:
        bare.headers.update(HEADERS)
        del bare.headers[missing]  # httpx would send Accept: */* by itself
        response = bare.put(
            PUT_SKU.format(sku="1", warehouse="1"), content=json.dumps(put_body()).encode()
        )

    assert response.status_code == 400
    assert ("header", missing) in own(response.json()["errors"])
    assert emulator.stock("1", "1") is None


def test_a_body_that_is_not_json_gets_400(emulator: VtexEmulator) -> None:
    response = httpx.put(
        emulator.url + PUT_SKU.format(sku="1", warehouse="1"),
        content=json.dumps(put_body()).encode(),
        headers=HEADERS | {"Content-Type": "text/plain"},
    )
    assert response.status_code == 400
    assert ("header", "Content-Type") in own(response.json()["errors"])

    response = httpx.put(
        emulator.url + PUT_SKU.format(sku="1", warehouse="1"), content=b"{", headers=HEADERS
    )
    assert response.status_code == 400
    assert emulator.stock("1", "1") is None


@pytest.mark.parametrize(
    "headers",
    [
        {"X-VTEX-API-AppKey": None},
        {"X-VTEX-API-AppToken": None},
        {"X-VTEX-API-AppKey": "vtexappkey-other"},
        {"X-VTEX-API-AppToken": "wrong"},
    ],
)
def test_missing_or_wrong_credentials_get_401(
    emulator: VtexEmulator, headers: dict[str, str | None]
) -> None:
    sent = {k: v for k, v in (HEADERS | headers).items() if v is not None}
    response = httpx.put(
        emulator.url + PUT_SKU.format(sku="123", warehouse="1_1"), json=put_body(), headers=sent
    )

    assert response.status_code == 401
    assert emulator.stock("123", "1_1") is None


def test_unknown_paths_get_404_and_known_paths_405_for_other_methods(
    client: httpx.Client,
) -> None:
    assert client.get("/api/logistics/pvt/nothing").status_code == 404
    response = client.delete(PUT_SKU.format(sku="1", warehouse="1"))
    assert response.status_code == 405
    assert response.headers["allow"] == "PUT"
    response = client.put(PATCH_SKU.format(sku="1", warehouse="1"), json=patch_body())
    assert response.status_code == 405
    assert response.headers["allow"] == "PATCH"


@pytest.mark.parametrize(
    "sku", ["a/b", "what?", "x#1", "100%", "two words", "a..b", "..x", "camisa-açaí-€"]
)
def test_an_encoded_id_is_one_path_segment_kept_raw_in_the_log(
    emulator: VtexEmulator, client: httpx.Client, sku: str
) -> None:
    path = PATCH_SKU.format(sku=quote(sku, safe=""), warehouse="1_1")
    assert client.patch(path, json=patch_body(3)).status_code == 204

    assert emulator.stock(sku, "1_1") == 3
    [logged] = emulator.requests()
    assert logged["path"] == path
    assert logged["params"] == {"skuId": sku, "warehouseId": "1_1"}


# ------------------------------------------------------------------ the layers


def test_without_vtex_files_the_official_layer_is_off_and_the_own_description_still_refuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SPECS_ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match=SPECS_ENV):
        VtexEmulator(official=True)

    with VtexEmulator() as emulator, httpx.Client(base_url=emulator.url, headers=HEADERS) as client:
        assert emulator.official is False
        assert SPECS_ENV in emulator.official_detail
        assert str(tmp_path) in emulator.official_detail
        assert httpx.get(f"{emulator.url}/_emulator/status").json()["official"] is False

        bad = client.put(PUT_SKU.format(sku="1", warehouse="1"), json=put_body("5"))
        good = client.put(PUT_SKU.format(sku="1", warehouse="1"), json=put_body(5))

    assert bad.status_code == 400
    assert [e["layer"] for e in bad.json()["errors"]] == ["own"]
    assert good.status_code == 200
    assert [r["official_valid"] for r in emulator.requests()] == [None, None]
    assert emulator.stock("1", "1") == 5


def test_the_official_layer_checks_every_request_and_names_what_breaks_vtex_schema(
    schemas: OfficialSchemas,
) -> None:
    with (
        VtexEmulator(official=True) as emulator,
        httpx.Client(base_url=emulator.url, headers=HEADERS) as client,
    ):
        assert emulator.official is True
        status = httpx.get(f"{emulator.url}/_emulator/status").json()
        assert status["official"] is True
        emulator.add_order("1-01", [{"sku": "123", "quantity": 2, "price": 1990}], "handling")

        good = client.post("/api/oms/pvt/orders/1-01/invoice", json=invoice_body())
        bad = client.post(
            "/api/oms/pvt/orders/1-01/invoice",
            json=invoice_body() | {"invoiceValue": 3980, "type": "Sale"},
        )

    assert good.status_code == 200
    assert bad.status_code == 400
    named = {(e["path"], e["message"]) for e in bad.json()["errors"] if e["layer"] == "official"}
    assert ("invoiceValue", "3980 is not of type 'string'") in named
    assert ("type", "'Sale' is not one of ['Output', 'Input']") in named
    assert [(r["valid"], r["official_valid"]) for r in emulator.requests()] == [
        (True, True),
        (False, False),
    ]
    assert len(emulator.invoices("1-01")) == 1


BAD_REQUESTS = [
    ("PUT", PUT_SKU.format(sku="1", warehouse="w"), put_body("5")),
    ("PUT", PUT_SKU.format(sku="1", warehouse="w"), {"quantity": 5, "unlimitedQuantity": False}),
    ("PUT", PUT_SKU.format(sku="1", warehouse="w"), put_body() | {"dateUtcOnBalanceSystem": None}),
    ("PATCH", PATCH_SKU.format(sku="1", warehouse="w"), {"quantity": 5}),
    ("PATCH", PATCH_SKU.format(sku="1", warehouse="w"), patch_body(True)),
    ("POST", "/api/orders/feed", {"handles": "h1"}),
    ("POST", "/api/oms/pvt/orders/1-01/invoice", invoice_body(value=3980)),
    ("POST", "/api/oms/pvt/orders/1-01/invoice", invoice_body(price="19.90")),
    (
        "POST",
        "/api/oms/pvt/orders/1-01/invoice",
        {k: v for k, v in invoice_body().items() if k != "items"},
    ),
    ("POST", "/api/oms/pvt/orders/1-01/invoice", invoice_body() | {"courier": None}),
    ("PATCH", "/api/oms/pvt/orders/1-01/invoice/NF-1", {"courier": "Correios"}),
    ("PATCH", "/api/oms/pvt/orders/1-01/invoice/NF-1", TRACKING | {"trackingNumber": None}),
]
GOOD_REQUESTS = [
    ("PUT", PUT_SKU.format(sku="1", warehouse="w"), put_body(5, "10.10:00:00")),
    ("PATCH", PATCH_SKU.format(sku="1", warehouse="w"), patch_body(0)),
    ("POST", "/api/orders/feed", {"handles": ["h1"]}),
    ("POST", "/api/oms/pvt/orders/1-01/invoice", invoice_body()),
    ("PATCH", "/api/oms/pvt/orders/1-01/invoice/NF-1", TRACKING),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
def test_the_own_description_refuses_what_vtex_schema_refuses(
    schemas: OfficialSchemas, method: str, path: str, body: dict[str, Any]
) -> None:
    errors = _errors_of(method, path, body)
    assert {e["layer"] for e in errors} == {"own", "official"}, errors


@pytest.mark.parametrize(("method", "path", "body"), GOOD_REQUESTS)
def test_the_own_description_accepts_what_vtex_schema_accepts(
    schemas: OfficialSchemas, method: str, path: str, body: dict[str, Any]
) -> None:
    assert _errors_of(method, path, body) == []


def _errors_of(method: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with (
        VtexEmulator(official=True) as emulator,
        httpx.Client(base_url=emulator.url, headers=HEADERS) as client,
    ):
        client.request(method, path, json=body)
        [logged] = emulator.requests()
    return logged["errors"]


def test_the_own_description_is_served_as_an_openapi_document(client: httpx.Client) -> None:
    response = httpx.get(str(client.base_url) + "/_emulator/openapi.json")
    document = response.json()

    assert response.status_code == 200
    assert document["openapi"].startswith("3.")
    patch = document["paths"][
        PUT_SKU.replace("{sku}", "{skuId}").replace("{warehouse}", "{warehouseId}") + "/quantity"
    ]["patch"]
    schema = patch["requestBody"]["content"]["application/json"]["schema"]
    body = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert set(body["required"]) == {"quantity", "unlimitedQuantity"}
    assert "leadTime" not in body["properties"]
    names = {(p["in"], p["name"]) for p in patch["parameters"]}
    assert {("path", "skuId"), ("path", "warehouseId"), ("header", "Accept")} <= names


def test_the_answers_follow_vtex_response_schemas(
    schemas: OfficialSchemas, emulator: VtexEmulator, client: httpx.Client
) -> None:
    """What the emulator answers is what VTEX documents (checked where the files are)."""
    emulator.add_order("1234567-01", [{"sku": "123", "quantity": 2, "price": 1990}], "handling")
    client.put(PUT_SKU.format(sku="123", warehouse="1_1"), json=put_body(5))
    emulator.fault("423", count=1)
    locked = client.put(PUT_SKU.format(sku="123", warehouse="1_1"), json=put_body(5))
    answers = [
        (
            "GET",
            "/api/logistics/pvt/inventory/skus/123",
            client.get("/api/logistics/pvt/inventory/skus/123"),
        ),
        ("GET", "/api/orders/feed", client.get("/api/orders/feed", params={"maxlot": 10})),
        ("GET", "/api/oms/pvt/orders/1234567-01", client.get("/api/oms/pvt/orders/1234567-01")),
        (
            "POST",
            "/api/oms/pvt/orders/1234567-01/invoice",
            client.post("/api/oms/pvt/orders/1234567-01/invoice", json=invoice_body()),
        ),
        (
            "PATCH",
            "/api/oms/pvt/orders/1234567-01/invoice/NF-1",
            client.patch("/api/oms/pvt/orders/1234567-01/invoice/NF-1", json=TRACKING),
        ),
        ("PUT", PUT_SKU.format(sku="123", warehouse="1_1"), locked),
    ]
    for method, path, response in answers:
        content_type = response.headers["content-type"]
        assert response.is_success or response.status_code == 423, (path, response.text)
        problems = schemas.response_problems(
            method, path, response.status_code, response.content, content_type
        )
        assert problems == [], (method, path, problems)


# ------------------------------------------------------------------ orders


def test_feed_flow_new_order_then_get_then_commit(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    emulator.add_order(
        "1234567-01",
        [{"sku": "123", "quantity": 2, "price": 1990}],
        state="ready-for-handling",
        carrier="Loggi",
        warehouse_id="wh-sp",
    )

    feed = client.get("/api/orders/feed", params={"maxlot": 10})
    assert feed.status_code == 200
    [item] = feed.json()
    assert item["orderId"] == "1234567-01"
    assert item["state"] == "ready-for-handling"
    assert item["origin"] == {"account": "test", "key": APP_KEY}

    response = client.get("/api/oms/pvt/orders/1234567-01")
    assert response.status_code == 200
    order = response.json()
    assert order["status"] == "ready-for-handling"
    assert order["value"] == 3980
    [line] = order["items"]
    assert (line["id"], line["quantity"], line["price"], line["sellingPrice"]) == (
        "123",
        2,
        1990,
        1990,
    )
    [logistics] = order["shippingData"]["logisticsInfo"]
    assert logistics["deliveryCompany"] == "Loggi"
    assert logistics["deliveryIds"][0]["warehouseId"] == "wh-sp"

    # Uncommitted items come back.
    assert client.get("/api/orders/feed", params={"maxlot": 10}).json() == [item]
    commit = client.post("/api/orders/feed", json={"handles": [item["handle"]]})
    assert commit.status_code == 200
    assert client.get("/api/orders/feed", params={"maxlot": 10}).json() == []


def test_feed_items_come_oldest_first_at_most_maxlot(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    emulator.add_order("1-01", [{"sku": "1", "quantity": 1, "price": 100}])
    emulator.set_state("1-01", "ready-for-handling")
    emulator.set_state("1-01", "ready-for-handling")  # no change, no event
    emulator.add_order("2-01", [{"sku": "1", "quantity": 1, "price": 100}])

    items = client.get("/api/orders/feed", params={"maxlot": 2}).json()

    assert [(i["orderId"], i["lastState"], i["state"]) for i in items] == [
        ("1-01", "", "payment-pending"),
        ("1-01", "payment-pending", "ready-for-handling"),
    ]
    assert items[1]["lastChange"] == items[0]["currentChange"]


@pytest.mark.parametrize("params", [{"maxlot": 50}, {"maxlot": 0}, {"maxlot": "x"}, {}])
def test_feed_reads_outside_1_to_10_get_400(client: httpx.Client, params: dict) -> None:
    response = client.get("/api/orders/feed", params=params)
    assert response.status_code == 400
    assert ("query", "maxlot") in own(response.json()["errors"])


def test_an_unknown_order_is_404(client: httpx.Client) -> None:
    assert client.get("/api/oms/pvt/orders/nope-01").status_code == 404


def test_invoice_is_recorded_and_invoices_the_order(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    emulator.add_order("1-01", [{"sku": "123", "quantity": 2, "price": 1990}], "handling")
    path = "/api/oms/pvt/orders/1-01/invoice"

    first = client.post(path, json=invoice_body())
    again = client.post(path, json=invoice_body())

    assert first.status_code == again.status_code == 200
    assert first.json()["orderId"] == "1-01"
    assert first.json()["receipt"] != again.json()["receipt"]
    assert emulator.invoices("1-01") == [invoice_body(), invoice_body()]
    order = emulator.order("1-01")
    assert order["status"] == "invoiced"
    [package] = order["packageAttachment"]["packages"]  # the re-send only got a new receipt
    assert package["invoiceValue"] == 3980

    patched = client.patch(f"{path}/NF-1", json=TRACKING)
    assert patched.status_code == 200
    assert emulator.tracking_updates("1-01") == [TRACKING | {"invoiceNumber": "NF-1"}]
    assert emulator.order("1-01")["packageAttachment"]["packages"][0]["trackingNumber"] == "BR123"
    assert client.patch(f"{path}/NF-9", json=TRACKING).status_code == 404
    assert client.patch(f"{path}/NF-1", json={"courier": "Correios"}).status_code == 400


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (invoice_body(value=3980), "invoiceValue"),  # schema: a string
        (invoice_body(value="39.80"), "invoiceValue"),  # prose: integer cents
        (invoice_body(value="0"), "invoiceValue"),  # prose: greater than 0
        (invoice_body(price=19.9), "items/0/price"),
        (invoice_body(number=""), "invoiceNumber"),  # prose: tracking updates need it
        (invoice_body() | {"issuanceDate": "2024-05-01"}, "issuanceDate"),  # prose: a time too
    ],
)
def test_an_invoice_breaking_vtex_rules_gets_400(
    emulator: VtexEmulator, client: httpx.Client, body: dict, path: str
) -> None:
    emulator.add_order("1-01", [{"sku": "123", "quantity": 2, "price": 1990}], "handling")

    response = client.post("/api/oms/pvt/orders/1-01/invoice", json=body)

    assert response.status_code == 400
    assert ("body", path) in own(response.json()["errors"])
    assert emulator.invoices("1-01") == []
    assert emulator.order("1-01")["status"] == "handling"


# ------------------------------------------------------------------ faults


def test_429_without_and_with_retry_after(emulator: VtexEmulator, client: httpx.Client) -> None:
    path = PUT_SKU.format(sku="1", warehouse="1")
    emulator.fault("429", count=1)
    emulator.fault("429-retry-after", count=1, retry_after=2)

    plain = client.put(path, json=put_body())
    with_header = client.put(path, json=put_body())
    then = client.put(path, json=put_body())

    assert plain.status_code == 429
    assert "retry-after" not in plain.headers
    assert with_header.status_code == 429
    assert with_header.headers["retry-after"] == "2"
    assert then.status_code == 200
    assert len(emulator.stock_updates()) == 1
    assert [r["fault"] for r in emulator.requests()] == ["429", "429-retry-after", None]
    # Faulted requests are still checked.
    assert [r["valid"] for r in emulator.requests()] == [True, True, True]


def test_423_and_500_faults(emulator: VtexEmulator, client: httpx.Client) -> None:
    path = PUT_SKU.format(sku="9", warehouse="w")
    emulator.fault("423", count=1)
    emulator.fault("500", count=1)

    locked = client.put(path, json=put_body())
    failed = client.put(path, json=put_body())

    assert locked.status_code == 423
    assert locked.text == "Unable to acquire lock for key: test_item_logistics_9_w."
    assert locked.headers["content-type"].startswith("text/plain")
    assert failed.status_code == 500
    assert emulator.stock("9", "w") is None


@pytest.mark.parametrize("status", [503, 502, 504, 404, 408])
def test_any_status_on_demand(emulator: VtexEmulator, client: httpx.Client, status: int) -> None:
    path = PATCH_SKU.format(sku="9", warehouse="w")
    emulator.fault(str(status), seconds=60)
    emulator.fault(503, count=1, retry_after=7)  # queued behind the first: never reached

    answers = [client.patch(path, json=patch_body()) for _ in range(3)]

    assert [a.status_code for a in answers] == [status] * 3
    assert answers[0].json()["error"]["message"].endswith("(injected)")
    assert "retry-after" not in answers[0].headers
    assert emulator.stock("9", "w") is None
    emulator.clear_faults()
    emulator.fault(503, count=1, retry_after=7)
    outage = client.patch(path, json=patch_body())
    assert (outage.status_code, outage.headers["retry-after"]) == (503, "7")
    assert client.patch(path, json=patch_body()).status_code == 204


@pytest.mark.parametrize("mode", ["600", "399", "teapot", "42"])
def test_an_unknown_fault_mode_is_refused(emulator: VtexEmulator, mode: str) -> None:
    with pytest.raises(ValueError, match="unknown fault mode"):
        emulator.fault(mode)
    response = httpx.post(f"{emulator.url}/_emulator/faults", json={"mode": mode})
    assert response.status_code == 400


def test_faults_only_hit_their_path_prefix(emulator: VtexEmulator, client: httpx.Client) -> None:
    emulator.fault("500", seconds=600, path_prefix="/api/logistics")

    assert client.get("/api/orders/feed", params={"maxlot": 1}).status_code == 200
    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 500
    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 500


def test_a_fault_for_some_seconds_ends_by_itself(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    emulator.fault("500", seconds=0.2)
    time.sleep(0.3)  # past its end: a wait, not a bound on speed
    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 200


def test_clear_faults_ends_an_open_ended_fault(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    emulator.fault("503")
    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 503
    emulator.clear_faults()
    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 200


def test_slow_answers_late_but_normally(emulator: VtexEmulator, client: httpx.Client) -> None:
    path = PUT_SKU.format(sku="1", warehouse="1")
    emulator.fault("slow", count=2, delay=0.2)

    started = time.monotonic()
    response = client.put(path, json=put_body(4))
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2
    # A client that gives up early still had its update applied.
    with pytest.raises(httpx.ReadTimeout):
        client.put(path, json=put_body(6), timeout=0.1)
    assert eventually(lambda: emulator.stock("1", "1") == 6)


def test_drop_reads_the_request_and_closes_without_an_answer(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    path = PUT_SKU.format(sku="1", warehouse="1")
    emulator.fault("drop", count=1)

    with pytest.raises(httpx.RemoteProtocolError):
        client.put(path, json=put_body(3))

    assert emulator.stock("1", "1") is None
    [dropped] = emulator.requests()
    assert dropped["status"] is None
    assert dropped["fault"] == "drop"
    assert client.put(path, json=put_body(3)).status_code == 200


def test_down_refuses_connections_then_comes_back_by_itself(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    path = PUT_SKU.format(sku="1", warehouse="1")
    url = emulator.url
    assert client.put(path, json=put_body(1)).status_code == 200  # a pooled connection

    emulator.fault("down", seconds=0.5)

    with pytest.raises(httpx.ConnectError):
        client.put(path, json=put_body(2))

    def back() -> bool:
        try:
            return client.get("/api/logistics/pvt/inventory/skus/1").status_code == 200
        except httpx.ConnectError:
            return False

    assert eventually(back)
    assert emulator.url == url
    assert emulator.stock("1", "1") == 1


def test_stop_refuses_connections_and_start_serves_the_same_state(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    emulator.set_stock("1", "1", 8)
    url = emulator.url

    emulator.stop()
    with pytest.raises(httpx.ConnectError):
        client.get("/api/logistics/pvt/inventory/skus/1")
    emulator.start()

    assert emulator.url == url
    balance = client.get("/api/logistics/pvt/inventory/skus/1").json()["balance"]
    assert balance[0]["totalQuantity"] == 8


def test_updates_inside_the_lock_window_get_423_and_only_the_first_is_kept() -> None:
    """PUT and PATCH of one SKU and warehouse share VTEX's lock: either collides with either."""
    with (
        VtexEmulator(lock_window_ms=600_000) as emulator,
        httpx.Client(base_url=emulator.url, headers=HEADERS) as client,
    ):
        put = PUT_SKU.format(sku="1", warehouse="1")
        patch = PATCH_SKU.format(sku="1", warehouse="1")
        assert client.put(put, json=put_body(1)).status_code == 200
        assert client.patch(patch, json=patch_body(2)).status_code == 423
        assert client.put(put, json=put_body(2)).status_code == 423
        other = PATCH_SKU.format(sku="2", warehouse="1")
        assert client.patch(other, json=patch_body(5)).status_code == 204
        assert emulator.stock("1", "1") == 1
        assert [u["quantity"] for u in emulator.stock_updates("1")] == [1]


def test_after_the_lock_window_an_update_is_kept() -> None:
    with (
        VtexEmulator(lock_window_ms=50) as emulator,
        httpx.Client(base_url=emulator.url, headers=HEADERS) as client,
    ):
        put = PUT_SKU.format(sku="1", warehouse="1")
        patch = PATCH_SKU.format(sku="1", warehouse="1")
        assert client.put(put, json=put_body(1)).status_code == 200
        time.sleep(0.1)  # past the window: a wait, not a bound on speed
        assert client.patch(patch, json=patch_body(3)).status_code == 204
        time.sleep(0.1)
        assert client.put(put, json=put_body(4)).status_code == 200
        assert [u["quantity"] for u in emulator.stock_updates("1")] == [1, 3, 4]


# ------------------------------------------------------------------ hook


class _Receiver:
    """A hook endpoint that records what it gets and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), json.loads(body)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/vtex/hook"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    receiver = _Receiver()
    yield receiver
    receiver.close()


def test_hook_is_pinged_then_notified_of_state_changes(
    emulator: VtexEmulator, receiver: _Receiver
) -> None:
    emulator.add_order("1-01", [{"sku": "1", "quantity": 1, "price": 100}])

    emulator.configure_hook(receiver.url, {"X-Hook-Token": "abc"})
    emulator.set_state("1-01", "ready-for-handling")

    assert eventually(lambda: len(receiver.received) == 2)
    (ping_headers, ping), (headers, body) = receiver.received
    assert ping == {"hookConfig": "ping"}
    assert ping_headers["X-Hook-Token"] == headers["X-Hook-Token"] == "abc"
    assert body["OrderId"] == "1-01"
    assert (body["LastState"], body["State"]) == ("payment-pending", "ready-for-handling")
    assert body["Origin"] == {"Account": "test", "Key": APP_KEY}
    deliveries = eventually(
        lambda: len(emulator.hook_deliveries()) == 2 and emulator.hook_deliveries()
    )
    assert [(d["kind"], d["status"]) for d in deliveries] == [("ping", 200), ("notification", 200)]


def test_the_hook_notification_follows_vtex_schema(
    schemas: OfficialSchemas, emulator: VtexEmulator, receiver: _Receiver
) -> None:
    emulator.add_order("1-01", [{"sku": "1", "quantity": 1, "price": 100}])
    emulator.configure_hook(receiver.url, {})
    emulator.set_state("1-01", "ready-for-handling")

    assert eventually(lambda: len(receiver.received) == 2)
    raw = json.dumps(receiver.received[1][1]).encode()
    # The spec documents the notification as the 200 answer of the hook configuration.
    assert schemas.response_problems("POST", "/api/orders/hook/config", 200, raw) == []


def test_a_hook_that_does_not_answer_the_ping_with_200_is_refused(
    emulator: VtexEmulator, receiver: _Receiver
) -> None:
    receiver.status = 500
    with pytest.raises(RuntimeError, match="500"):
        emulator.configure_hook(receiver.url, {})

    emulator.add_order("1-01", [{"sku": "1", "quantity": 1, "price": 100}])
    time.sleep(0.05)
    assert len(receiver.received) == 1  # the ping only


# ------------------------------------------------------------------ standalone


def test_control_api_drives_state_and_faults(emulator: VtexEmulator, client: httpx.Client) -> None:
    control = emulator.url + "/_emulator"
    assert httpx.post(
        f"{control}/stock", json={"sku": "1", "warehouse": "w", "quantity": 4}
    ).is_success
    assert httpx.post(
        f"{control}/lead-time", json={"sku": "1", "warehouse": "w", "lead_time": "02.00:00:00"}
    ).is_success
    order = {"order_id": "1-01", "items": [{"sku": "1", "quantity": 1, "price": 990}]}
    assert httpx.post(f"{control}/orders", json=order).status_code == 201
    assert httpx.post(f"{control}/orders/1-01/state", json={"state": "handling"}).is_success
    assert httpx.post(f"{control}/faults", json={"mode": "429", "count": 1}).is_success

    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 429
    assert client.patch(PATCH_SKU.format(sku="1", warehouse="w"), json=patch_body(6)).is_success

    [entry] = httpx.get(f"{control}/inventory").json()
    assert (entry["quantity"], entry["leadTime"]) == (6, "02.00:00:00")
    updates = httpx.get(f"{control}/stock-updates", params={"sku": "1"}).json()
    assert [(u["method"], u["quantity"]) for u in updates] == [("PATCH", 6)]
    assert httpx.get(f"{control}/orders/1-01").json()["status"] == "handling"
    assert [r["status"] for r in httpx.get(f"{control}/requests").json()] == [429, 204]
    assert httpx.post(f"{control}/orders/9-01/state", json={"state": "x"}).status_code == 404
    assert httpx.post(f"{control}/lead-time", json={"sku": "1"}).status_code == 400
    assert httpx.post(f"{control}/faults", json={"mode": "503", "bogus": 1}).status_code == 400
    assert httpx.post(f"{control}/stock", content=b"[1]").status_code == 400
    assert httpx.get(f"{control}/status").json()["official"] is emulator.official

    down = httpx.post(f"{control}/faults", json={"mode": "down", "seconds": 0.3})
    assert down.is_success
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{control}/requests")
    assert eventually(lambda: emulator.running)

    assert httpx.post(f"{control}/reset").is_success
    assert httpx.get(f"{control}/inventory").json() == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_runs_standalone_as_a_module_from_any_folder(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.vtex_emulator", "--port", str(port), "--no-official"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        assert "official VTEX schema check off" in line
        url = f"http://127.0.0.1:{port}"
        response = httpx.patch(
            url + PATCH_SKU.format(sku="1", warehouse="1"), json=patch_body(2), headers=HEADERS
        )
        assert response.status_code == 204
        assert httpx.get(f"{url}/_emulator/stock-updates").json()[0]["quantity"] == 2
        assert httpx.get(f"{url}/_emulator/status").json()["official"] is False
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_importing_adapters_loads_neither_openapi_core_nor_werkzeug() -> None:
    """openapi-core stays a test dependency: the emulator and everything under adapters/ must
    import on a plain install, where ``ledger demo`` runs it."""
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import adapters
        for module in pkgutil.walk_packages(adapters.__path__, "adapters."):
            importlib.import_module(module.name)
        from adapters.vtex_emulator import VtexEmulator
        VtexEmulator(official=False)
        loaded = sorted({n.split(".")[0] for n in sys.modules} & {"openapi_core", "werkzeug"})
        print(loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_the_official_layer_uses_openapi_core_steps_that_exist() -> None:
    """``official._validate`` calls private steps of openapi-core 0.23's request validator; a
    version without them must fail here, loudly, not deep inside a request."""
    from openapi_core.validation.request.validators import APICallRequestValidator

    for step in ("_find_path", "_get_security", "_get_parameters", "_get_body"):
        assert callable(getattr(APICallRequestValidator, step, None)), step
