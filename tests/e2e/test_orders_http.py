"""Orders over HTTP against the real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server


def platforms(client: httpx.Client) -> None:
    for name, kind in (("shop", "webhook"), ("vtex", "vtex")):
        response = client.put(
            f"/platforms/{name}",
            json={
                "type": kind,
                "import_from": "awaiting_payment",
                "carriers": {"Correios PAC": "pac"},
                "credentials": {"app_key": "secret-key"},
            },
        )
        assert response.status_code == 200, response.text


def receive(client: httpx.Client, sku: str, quantity: str, movement_id: str) -> int:
    response = client.post(
        "/movements",
        json={"movement_id": movement_id, "sku": sku, "kind": "invoice", "quantity": quantity},
    )
    assert response.status_code == 201, response.text
    return response.json()["position"]


def stock(client: httpx.Client, sku: str = "SKU-1") -> tuple[str, str, str]:
    # Order writes answer with the order, not a position: wait for everything written so far.
    head = client.get("/views").json()["event_store_position"]
    body = client.get(f"/stock/{sku}", params={"after": head}).json()
    return body["physical"], body["reserved"], body["available"]


def order(order_id: str = "1", status: str = "payment_confirmed", **extra: Any) -> dict:
    return {
        "platform": "shop",
        "order_id": order_id,
        "status": status,
        "carrier": "Correios PAC",
        "items": [{"sku": "SKU-1", "quantity": "5"}],
        **extra,
    }


@pytest.mark.parametrize("ending", ["invoice", "cancel", "delete"])
def test_the_seeds_worked_example_step_by_step(server: Server, ending: str) -> None:
    with server.client() as client:
        platforms(client)
        receive(client, "SKU-1", "10", "nf-1")
        created = client.post("/orders", json=order())
        assert created.status_code == 201, created.text
        assert created.json()["holds_reservation"] is True
        assert stock(client) == ("10", "5", "5")
        again = client.post("/orders", json=order())
        assert again.status_code == 200
        assert stock(client) == ("10", "5", "5")
        if ending == "invoice":
            done = client.post(
                "/orders/shop/1/invoice",
                json={"number": "123", "key": "3526", "value": "50.00"},
            )
            assert done.status_code == 200, done.text
            assert done.json()["status"] == "invoiced"
            assert done.json()["invoice"]["value"] == "50"
            assert stock(client) == ("5", "0", "5")
            refused = client.post("/orders/shop/1/cancel")
            assert refused.status_code == 409
            assert refused.json()["error"] == "order_conflict"
        elif ending == "cancel":
            assert client.post("/orders/shop/1/cancel").json()["status"] == "cancelled"
            assert stock(client) == ("10", "0", "10")
        else:
            assert client.delete("/orders/shop/1").json()["deleted"] is True
            assert stock(client) == ("10", "0", "10")


def test_vtex_reserves_only_once_payment_is_confirmed(server: Server) -> None:
    with server.client() as client:
        platforms(client)
        receive(client, "SKU-1", "10", "nf-1")
        # Any other platform reserves at import, whatever the payment status.
        client.post("/orders", json=order("s1", "awaiting_payment"))
        assert stock(client) == ("10", "5", "5")
        client.post("/orders/shop/s1/cancel")
        assert stock(client) == ("10", "0", "10")
        client.post("/orders", json={**order("v1", "awaiting_payment"), "platform": "vtex"})
        assert stock(client) == ("10", "0", "10")
        late = client.post("/orders/vtex/v1/status", json={"status": "payment_in_analysis"})
        assert late.status_code == 200
        assert stock(client) == ("10", "0", "10")
        client.post("/orders/vtex/v1/status", json={"status": "payment_confirmed"})
        assert stock(client) == ("10", "5", "5")
        client.post("/orders/vtex/v1/status", json={"status": "awaiting_payment"})
        assert client.get("/orders/vtex/v1").json()["status"] == "payment_confirmed"
        client.post("/orders/vtex/v1/status", json={"status": "invoiced"})
        assert stock(client) == ("5", "0", "5")


def test_post_stock_then_invoice_deducts_once_and_edits_move_the_difference(
    server: Server,
) -> None:
    with server.client() as client:
        platforms(client)
        receive(client, "SKU-1", "10", "nf-1")
        client.post("/orders", json=order())
        edited = client.patch("/orders/shop/1", json={"items": [{"sku": "SKU-1", "quantity": 3}]})
        assert edited.status_code == 200, edited.text
        assert stock(client) == ("10", "3", "7")
        client.post("/orders/shop/1/post-stock")
        client.post("/orders/shop/1/invoice", json={"number": "9"})
        assert stock(client) == ("7", "0", "7")


def test_overselling_shows_as_negative_available(server: Server) -> None:
    with server.client() as client:
        platforms(client)
        receive(client, "SKU-1", "3", "nf-1")
        for n in ("1", "2"):
            item = {"items": [{"sku": "SKU-1", "quantity": "2"}]}
            assert client.post("/orders", json={**order(n), **item}).status_code == 201
        head = client.get("/views").json()["event_store_position"]
        body = client.get("/stock/SKU-1", params={"after": head}).json()
        assert (body["physical"], body["reserved"], body["available"]) == ("3", "4", "-1")
        assert body["oversold"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "shipped"}, "status"),
        ({"items": []}, "items"),
        ({"items": [{"sku": "A", "quantity": "1"}, {"sku": "A", "quantity": "2"}]}, "items[1]"),
        ({"items": [{"sku": "A", "quantity": "0"}]}, "items[0].quantity"),
        ({"items": [{"sku": "A", "quantity": "-1"}]}, "items[0].quantity"),
        ({"items": [{"sku": "A", "quantity": "NaN"}]}, "items[0].quantity"),
        ({"platform": ""}, "platform"),
        ({"order_id": "x" * 65}, "order_id"),
        ({"platform": "nowhere"}, "platform"),
    ],
)
def test_bad_orders_are_refused_and_record_nothing(
    shared_server: Server, body: dict, field: str
) -> None:
    with shared_server.client() as client:
        platforms(client)
        before = shared_server.head()
        response = client.post("/orders", json={**order("bad"), **body})
        assert response.status_code == 422, response.text
        assert response.json()["field"].startswith(field)
    assert shared_server.head() == before


def test_an_invoice_without_a_number_is_refused(shared_server: Server) -> None:
    with shared_server.client() as client:
        platforms(client)
        client.post("/orders", json=order("inv"))
        before = shared_server.head()
        response = client.post("/orders/shop/inv/invoice", json={"key": "k"})
        assert response.status_code == 422
        assert client.post("/orders/shop/nope/invoice", json={"number": "1"}).status_code == 404
    assert shared_server.head() == before


def test_an_unmapped_carrier_is_held_and_imported_once_mapped(server: Server) -> None:
    with server.client() as client:
        platforms(client)
        receive(client, "SKU-1", "10", "nf-1")
        held = client.post("/orders", json=order("h1", carrier="Jadlog"))
        assert held.status_code == 201
        assert held.json()["blocked_reason"] == "carrier 'Jadlog' has no mapping"
        assert stock(client) == ("10", "0", "10")
        listed = client.get(
            "/orders", params={"blocked": "true", "after": held.json()["position"]}
        ).json()
        assert [o["order_id"] for o in listed["items"]] == ["h1"]
        assert listed["items"][0]["blocked_reason"] == "carrier 'Jadlog' has no mapping"
        status = client.get("/platforms/shop/status").json()
        assert status["blocked_orders"] == 1
        mapped = client.put(
            "/platforms/shop",
            json={
                "type": "webhook",
                "import_from": "awaiting_payment",
                "carriers": {"Correios PAC": "pac", "Jadlog": "jadlog"},
            },
        )
        assert mapped.status_code == 200
        assert stock(client) == ("10", "5", "5")
        listed = client.get(
            "/orders", params={"blocked": "true", "after": mapped.json()["position"]}
        ).json()
        assert listed["items"] == []
        assert client.get("/orders/shop/h1").json()["blocked_reason"] is None


def test_import_from_payment_confirmed(server: Server) -> None:
    with server.client() as client:
        client.put(
            "/platforms/late",
            json={
                "type": "webhook",
                "import_from": "payment_confirmed",
                "carriers": {"Correios PAC": "pac"},
            },
        )
        receive(client, "SKU-1", "10", "nf-1")
        early = client.post("/orders", json={**order("1", "awaiting_payment"), "platform": "late"})
        assert early.status_code == 202
        assert early.json()["imported"] is False
        assert client.get("/orders/late/1").status_code == 404
        confirmed = client.post("/orders", json={**order("1"), "platform": "late"})
        assert confirmed.status_code == 201
        assert stock(client) == ("10", "5", "5")


def test_credentials_are_never_shown(server: Server) -> None:
    with server.client() as client:
        platforms(client)
        shown = client.get("/platforms/shop")
        assert shown.status_code == 200
        assert "secret-key" not in shown.text
        assert shown.json()["credentials"] == ["app_key"]


def test_concurrent_imports_over_http_reserve_exactly_once_and_exactly_the_sum(
    pg_server: Server,
) -> None:
    with pg_server.client() as client:
        platforms(client)
        for n in range(5):
            receive(client, f"S{n}", "100", f"nf-{n}")
    statuses: list[int] = []

    def send(body: dict) -> None:
        with pg_server.client() as client:
            statuses.append(client.post("/orders", json=body).status_code)

    copies = [order("dup") for _ in range(20)]
    distinct = [
        {**order(f"o{n}"), "items": [{"sku": f"S{n % 5}", "quantity": "1.5"}]} for n in range(50)
    ]
    threads = [threading.Thread(target=send, args=(body,)) for body in copies + distinct]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 19 + [201] * 51
    with pg_server.client() as client:
        receive(client, "SKU-1", "10", "nf-x")
        assert stock(client, "SKU-1") == ("10", "5", "5")
        for n in range(5):
            assert stock(client, f"S{n}") == ("100", "15", "85")


@pytest.mark.parametrize("order_id", ["2026/0042", "a/b/c", "x%y"])
def test_an_order_id_with_a_slash_works_through_every_route(
    shared_server: Server, order_id: str
) -> None:
    """A webhook platform's order ids may hold "/": the order is found, changed, cancelled and
    deleted by its path, plain or with %2F."""
    with shared_server.client() as client:
        platforms(client)
        receive(client, "SKU-1", "10", f"nf-slash-{order_id}")
        created = client.post("/orders", json=order(order_id, status="awaiting_payment"))
        assert created.status_code == 201, created.text
        path = f"/orders/shop/{order_id.replace('%', '%25')}"
        encoded = f"/orders/shop/{order_id.replace('%', '%25').replace('/', '%2F')}"
        for url in (path, encoded):
            got = client.get(url)
            assert got.status_code == 200, got.text
            assert got.json()["order_id"] == order_id
        changed = client.patch(path, json={"items": [{"sku": "SKU-1", "quantity": "3"}]})
        assert changed.status_code == 200, changed.text
        confirmed = client.post(f"{encoded}/status", json={"status": "payment_confirmed"})
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "payment_confirmed"
        cancelled = client.post(f"{path}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert client.get(path).json()["status"] == "cancelled"
        assert client.get(f"/orders/shop/{order_id}x").status_code == 404
        # A path ending in a route's word names that route, never an order "…/cancel".
        assert client.patch(f"{path}/cancel", json={"items": []}).status_code == 405
        assert client.get(f"{path}/status").status_code == 405
        assert client.delete(path).status_code in (200, 204)
