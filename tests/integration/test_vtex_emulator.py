"""The VTEX emulator over real HTTP: contract checks, state, faults and hooks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulators.vtex import SPECS_ENV, VtexEmulator, response_errors

APP_KEY = "vtexappkey-test"
APP_TOKEN = "secret-token"
HEADERS = {
    "X-VTEX-API-AppKey": APP_KEY,
    "X-VTEX-API-AppToken": APP_TOKEN,
    "Accept": "application/json",
    "Content-Type": "application/json",
}
PUT_SKU = "/api/logistics/pvt/inventory/skus/{sku}/warehouses/{warehouse}"
REPO = Path(__file__).resolve().parents[2]


def put_body(quantity: Any = 5) -> dict[str, Any]:
    return {"quantity": quantity, "unlimitedQuantity": False, "leadTime": "00:00:00"}


def invoice_body(number: str = "NF-1", value: Any = "3980", price: Any = 1990) -> dict[str, Any]:
    return {
        "type": "Output",
        "issuanceDate": "2024-05-01T12:00:00-03:00",
        "invoiceNumber": number,
        "invoiceValue": value,
        "items": [{"id": "123", "price": price, "quantity": 2}],
    }


def wait_for(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.01)


@pytest.fixture
def emulator() -> Iterator[VtexEmulator]:
    with VtexEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emulator: VtexEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, headers=HEADERS, timeout=5) as client:
        yield client


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
    [put] = emulator.puts("123", "1_1")
    assert put["quantity"] == 5
    assert before <= put["at"] <= time.time()

    balance = client.get("/api/logistics/pvt/inventory/skus/123")
    assert balance.status_code == 200
    assert (
        response_errors("GET", "/api/logistics/pvt/inventory/skus/123", 200, balance.content) == []
    )
    [warehouse] = balance.json()["balance"]
    assert warehouse["warehouseId"] == "1_1"
    assert warehouse["totalQuantity"] == 5
    assert warehouse["hasUnlimitedQuantity"] is False
    [logged] = [r for r in emulator.requests() if r["method"] == "PUT"]
    assert logged["valid"] is True
    assert logged["status"] == 200


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"unlimitedQuantity": False, "leadTime": "00:00:00"}, "'quantity' is a required property"),
        (put_body("5"), "'5' is not of type 'integer'"),
        (put_body(None), "None is not of type 'integer'"),
        (None, "a JSON body is required"),
        # PROVENANCE: the prose allows null here, the schema does not; clients must omit it.
        (put_body() | {"dateUtcOnBalanceSystem": None}, "None is not of type 'string'"),
    ],
)
def test_a_put_breaking_the_schema_gets_400_and_changes_nothing(
    emulator: VtexEmulator, client: httpx.Client, body: dict | None, complaint: str
) -> None:
    emulator.set_stock("123", "1_1", 7)

    response = client.put(PUT_SKU.format(sku="123", warehouse="1_1"), json=body)

    assert response.status_code == 400
    assert complaint in [e["message"] for e in response.json()["errors"]]
    assert emulator.stock("123", "1_1") == 7
    assert emulator.puts() == []
    [logged] = emulator.requests()
    assert logged["valid"] is False


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


def test_a_put_without_content_type_gets_400(emulator: VtexEmulator) -> None:
    # The logistics spec declares Content-Type and Accept as required header parameters, and
    # openapi-core enforces them on this operation (they carry no default there).
    headers = {k: v for k, v in HEADERS.items() if k != "Content-Type"}
    response = httpx.put(
        emulator.url + PUT_SKU.format(sku="1", warehouse="1"),
        content=json.dumps(put_body()).encode(),
        headers=headers,
    )

    assert response.status_code == 400
    assert {"in": "header", "name": "Content-Type"}.items() <= response.json()["errors"][0].items()


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


def test_the_specs_directory_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SPECS_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=SPECS_ENV):
        VtexEmulator()


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
    assert response_errors("GET", "/api/orders/feed", 200, feed.content) == []
    [item] = feed.json()
    assert item["orderId"] == "1234567-01"
    assert item["state"] == "ready-for-handling"
    assert item["origin"] == {"account": "test", "key": APP_KEY}

    response = client.get("/api/oms/pvt/orders/1234567-01")
    assert response.status_code == 200
    assert response_errors("GET", "/api/oms/pvt/orders/1234567-01", 200, response.content) == []
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
    assert client.get("/api/orders/feed", params=params).status_code == 400


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
    assert response_errors("POST", path, 200, first.content) == []
    assert first.json()["orderId"] == "1-01"
    assert first.json()["receipt"] != again.json()["receipt"]
    assert emulator.invoices("1-01") == [invoice_body(), invoice_body()]
    order = emulator.order("1-01")
    assert order["status"] == "invoiced"
    [package] = order["packageAttachment"]["packages"]  # the re-send only got a new receipt
    assert package["invoiceValue"] == 3980

    tracking = {
        "trackingNumber": "BR123",
        "trackingUrl": "https://track.example/BR123",
        "courier": "Correios",
        "dispatchedDate": None,
    }
    patched = client.patch(f"{path}/NF-1", json=tracking)
    assert patched.status_code == 200
    assert response_errors("PATCH", f"{path}/NF-1", 200, patched.content) == []
    assert emulator.tracking_updates("1-01") == [tracking | {"invoiceNumber": "NF-1"}]
    assert emulator.order("1-01")["packageAttachment"]["packages"][0]["trackingNumber"] == "BR123"
    assert client.patch(f"{path}/NF-9", json=tracking).status_code == 404
    assert client.patch(f"{path}/NF-1", json={"courier": "Correios"}).status_code == 400


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (invoice_body(value=3980), "invoiceValue"),  # schema: a string
        (invoice_body(value="39.80"), "invoiceValue"),  # prose: integer cents
        (invoice_body(price=19.9), "items/0/price"),
    ],
)
def test_an_invoice_with_non_cents_values_gets_400(
    emulator: VtexEmulator, client: httpx.Client, body: dict, path: str
) -> None:
    emulator.add_order("1-01", [{"sku": "123", "quantity": 2, "price": 1990}], "handling")

    response = client.post("/api/oms/pvt/orders/1-01/invoice", json=body)

    assert response.status_code == 400
    assert path in [e.get("path") for e in response.json()["errors"]]
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
    assert len(emulator.puts()) == 1
    assert [r["fault"] for r in emulator.requests()] == ["429", "429-retry-after", None]
    # Faulted requests are still checked against the spec.
    assert [r["valid"] for r in emulator.requests()] == [True, True, True]


def test_423_and_500_faults(emulator: VtexEmulator, client: httpx.Client) -> None:
    path = PUT_SKU.format(sku="9", warehouse="w")
    emulator.fault("423", count=1)
    emulator.fault("500", count=1)

    locked = client.put(path, json=put_body())
    failed = client.put(path, json=put_body())

    assert locked.status_code == 423
    assert locked.text == "Unable to acquire lock for key: test_item_logistics_9_w."
    assert response_errors("PUT", path, 423, locked.content, locked.headers["content-type"]) == []
    assert failed.status_code == 500
    assert emulator.stock("9", "w") is None


def test_faults_only_hit_the_path_prefix_and_end_after_their_time(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    emulator.fault("500", seconds=0.3, path_prefix="/api/logistics")

    assert client.get("/api/orders/feed", params={"maxlot": 1}).status_code == 200
    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 500
    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 500
    time.sleep(0.35)
    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 200


def test_clear_faults_ends_an_open_ended_fault(
    emulator: VtexEmulator, client: httpx.Client
) -> None:
    emulator.fault("500")
    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 500
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
    assert wait_for(lambda: emulator.stock("1", "1") == 6)


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

    assert wait_for(back, timeout=3)
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


def test_puts_inside_the_lock_window_get_423_and_only_the_first_is_kept() -> None:
    with (
        VtexEmulator(lock_window_ms=200) as emulator,
        httpx.Client(base_url=emulator.url, headers=HEADERS) as client,
    ):
        path = PUT_SKU.format(sku="1", warehouse="1")
        assert client.put(path, json=put_body(1)).status_code == 200
        assert client.put(path, json=put_body(2)).status_code == 423
        assert (
            client.put(PUT_SKU.format(sku="2", warehouse="1"), json=put_body(5)).status_code == 200
        )
        assert emulator.stock("1", "1") == 1
        time.sleep(0.25)
        assert client.put(path, json=put_body(3)).status_code == 200
        assert [p["quantity"] for p in emulator.puts("1")] == [1, 3]


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

    assert wait_for(lambda: len(receiver.received) == 2)
    (ping_headers, ping), (headers, body) = receiver.received
    assert ping == {"hookConfig": "ping"}
    assert ping_headers["X-Hook-Token"] == headers["X-Hook-Token"] == "abc"
    assert body["OrderId"] == "1-01"
    assert (body["LastState"], body["State"]) == ("payment-pending", "ready-for-handling")
    assert body["Origin"] == {"Account": "test", "Key": APP_KEY}
    # The spec documents the notification as the 200 answer of the hook configuration.
    raw = json.dumps(body).encode()
    assert response_errors("POST", "/api/orders/hook/config", 200, raw) == []
    deliveries = wait_for(
        lambda: len(emulator.hook_deliveries()) == 2 and emulator.hook_deliveries()
    )
    assert [(d["kind"], d["status"]) for d in deliveries] == [("ping", 200), ("notification", 200)]


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
    order = {"order_id": "1-01", "items": [{"sku": "1", "quantity": 1, "price": 990}]}
    assert httpx.post(f"{control}/orders", json=order).status_code == 201
    assert httpx.post(f"{control}/orders/1-01/state", json={"state": "handling"}).is_success
    assert httpx.post(f"{control}/faults", json={"mode": "429", "count": 1}).is_success

    assert client.get("/api/logistics/pvt/inventory/skus/1").status_code == 429
    assert client.put(PUT_SKU.format(sku="1", warehouse="w"), json=put_body(6)).status_code == 200

    assert httpx.get(f"{control}/inventory").json()[0]["quantity"] == 6
    assert [p["quantity"] for p in httpx.get(f"{control}/puts", params={"sku": "1"}).json()] == [6]
    assert httpx.get(f"{control}/orders/1-01").json()["status"] == "handling"
    assert [r["status"] for r in httpx.get(f"{control}/requests").json()] == [429, 200]
    assert httpx.post(f"{control}/orders/9-01/state", json={"state": "x"}).status_code == 404

    down = httpx.post(f"{control}/faults", json={"mode": "down", "seconds": 0.3})
    assert down.is_success
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{control}/requests")
    assert wait_for(lambda: emulator.running)

    assert httpx.post(f"{control}/reset").is_success
    assert httpx.get(f"{control}/inventory").json() == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_runs_standalone_as_a_module() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.vtex", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert f"http://127.0.0.1:{port}" in process.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        response = httpx.put(
            url + PUT_SKU.format(sku="1", warehouse="1"), json=put_body(2), headers=HEADERS
        )
        assert response.status_code == 200
        assert httpx.get(f"{url}/_emulator/puts").json()[0]["quantity"] == 2
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0
