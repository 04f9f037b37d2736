"""The ledger over HTTP against the real server: movements, idempotency, auth, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest

from ledger.ids import stock_id
from tests.conftest import POSTGRES_URL
from tests.e2e.conftest import Server, start_server, stop_server


def movement(movement_id: str, quantity: str = "10", sku: str = "SKU-1", **extra: str) -> dict:
    return {
        "movement_id": movement_id,
        "sku": sku,
        "kind": "purchase_order",
        "quantity": quantity,
        **extra,
    }


def test_a_movement_is_recorded_and_read_back(server: Server) -> None:
    with server.client() as client:
        created = client.post("/movements", json=movement("m1", "10", reference="NF 1"))
        assert created.status_code == 201
        result = created.json()
        assert (result["physical"], result["reserved"], result["available"]) == ("10", "0", "10")
        stock = client.get("/stock/SKU-1", params={"after": result["position"]})
        assert stock.status_code == 200
        assert stock.json() == {
            "sku": "SKU-1",
            "physical": "10",
            "reserved": "0",
            "available": "10",
            "oversold": False,
            "warehouses": [
                {"warehouse": "main", "physical": "10", "reserved": "0", "available": "10"}
            ],
            "name": None,
            "barcodes": [],
        }


def test_a_read_right_after_a_write_shows_it_without_after(server: Server) -> None:
    # What the README's first example does: post, then read at once, across 100 SKUs, each
    # in a fresh warehouse now and then (the view has never seen those), some reserved too.
    with server.client() as client:
        client.put("/platforms/shop", json={"type": "webhook", "carriers": {"PAC": "pac"}})
        for n in range(100):
            sku, warehouse = f"FIRST-{n}", "main" if n % 3 else f"w{n}"
            body = movement(f"first-{n}", str(n + 1), sku=sku, warehouse=warehouse)
            assert client.post("/movements", json=body).status_code == 201
            if n % 10 == 0:
                order = {
                    "platform": "shop",
                    "order_id": f"o{n}",
                    "status": "payment_confirmed",
                    "carrier": "PAC",
                    "items": [{"sku": sku, "warehouse": warehouse, "quantity": "1"}],
                }
                assert client.post("/orders", json=order).status_code == 201
            read = client.get(f"/stock/{sku}")
            assert read.status_code == 200, (sku, read.text)
            reserved = 1 if n % 10 == 0 else 0
            assert read.json()["warehouses"] == [
                {
                    "warehouse": warehouse,
                    "physical": str(n + 1),
                    "reserved": str(reserved),
                    "available": str(n + 1 - reserved),
                }
            ]


def test_a_read_shows_every_write_even_with_the_views_stopped(
    database_url: str, tmp_path: Path
) -> None:
    # No background work: the stock-levels view never moves, so a read that leaned on it
    # would miss every write below. Half the SKUs were seen by the view before it stopped.
    seeded = start_server(database_url, tmp_path / "seeded")
    try:
        with seeded.client() as client:
            batch = [movement(f"seed-{n}", "5", sku=f"STOPPED-{n}") for n in range(0, 20, 2)]
            written = client.post("/movements/batch", json={"movements": batch})
            assert written.status_code == 201, written.text
            seen = seeded.head()
            # The view has them.
            assert client.get("/stock", params={"after": seen}).status_code == 200
    finally:
        stop_server(seeded)
    stopped = start_server(database_url, tmp_path / "stopped", LEDGER_BACKGROUND="false")
    try:
        with stopped.client() as client:
            for n in range(20):
                sku, warehouse = f"STOPPED-{n}", "main" if n % 3 else f"w{n}"
                body = movement(f"stopped-{n}", str(n + 1), sku=sku, warehouse=warehouse)
                assert client.post("/movements", json=body).status_code == 201
                expected = {warehouse: n + 1}
                if n % 2 == 0:
                    expected["main"] = expected.get("main", 0) + 5
                read = client.get(f"/stock/{sku}")
                assert read.status_code == 200, (sku, read.text)
                shown = {w["warehouse"]: Decimal(w["physical"]) for w in read.json()["warehouses"]}
                assert shown == expected, sku
            levels = {v["name"]: v for v in stopped.views()["views"]}["stock_levels"]
            assert levels["position"] == seen  # it never saw any of the reads' writes
    finally:
        stop_server(stopped)


def test_exact_decimals_survive_the_round_trip(server: Server) -> None:
    with server.client() as client:
        first = client.post(
            "/movements",
            content=b'{"movement_id":"d1","sku":"D","kind":"manual","quantity":123456789012.123456}',
            headers={"Content-Type": "application/json"},
        ).json()
        second = client.post("/movements", json=movement("d2", "0.1", sku="D")).json()
        third = client.post("/movements", json=movement("d3", "0.2", sku="D")).json()
        assert first["physical"] == "123456789012.123456"
        assert Decimal(third["physical"]) - Decimal(second["physical"]) == Decimal("0.2")
        assert Decimal(third["physical"]) == Decimal("123456789012.423456")


def test_idempotency_same_body_replays_other_body_conflicts(server: Server) -> None:
    with server.client() as client:
        first = client.post("/movements", json=movement("nf-1", "10"))
        assert first.status_code == 201
        head = server.head()
        again = client.post("/movements", json={**movement("nf-1", "10.00")})
        assert again.status_code == 200
        assert again.json() == first.json()
        other = client.post("/movements", json=movement("nf-1", "11"))
        assert other.status_code == 409
        assert other.json()["error"] == "idempotency_conflict"
        assert server.head() == head


def test_insufficient_stock_is_a_conflict_that_records_nothing(server: Server) -> None:
    with server.client() as client:
        client.post("/movements", json=movement("in", "3"))
        head = server.head()
        response = client.post("/movements", json={**movement("out", "-4"), "kind": "invoice"})
        assert response.status_code == 409
        assert response.json()["error"] == "insufficient_stock"
        assert server.head() == head


def test_an_inventory_count_sets_the_counted_quantity(server: Server) -> None:
    with server.client() as client:
        client.post("/movements", json=movement("in", "10"))
        counted = client.post(
            "/movements", json={**movement("count", "7"), "kind": "inventory_count"}
        )
        assert counted.status_code == 201
        assert counted.json()["physical"] == "7"


def test_a_batch_is_one_transaction(server: Server) -> None:
    rows = [movement(f"b{n}", "2", sku=f"S{n:03}") for n in range(300)]
    with server.client() as client:
        bad = [*rows[:-1], {**rows[-1], "quantity": "-5", "kind": "invoice"}]
        refused = client.post("/movements/batch", json={"movements": bad})
        assert refused.status_code == 409
        assert server.head() == 0
        done = client.post("/movements/batch", json={"movements": rows})
        assert done.status_code == 201
        results = done.json()["results"]
        assert [r["movement_id"] for r in results] == [r["movement_id"] for r in rows]
        last = max(r["position"] for r in results)
        page = client.get("/stock", params={"limit": 1000, "after": last}).json()
        assert len(page["items"]) == 300
        assert page["next_cursor"] is None
        assert client.post("/movements/batch", json={"movements": rows}).status_code == 200


def test_stock_pages_follow_the_cursor(server: Server) -> None:
    rows = [
        movement(f"p{n}", "1", sku=f"P{n:02}", warehouse="main" if n % 3 else "north")
        for n in range(25)
    ]
    with server.client() as client:
        last = max(
            r["position"]
            for r in client.post("/movements/batch", json={"movements": rows}).json()["results"]
        )
        seen, cursor = [], None
        while True:
            params = {"limit": 10, "after": last} | ({"cursor": cursor} if cursor else {})
            page = client.get("/stock", params=params).json()
            seen += [item["sku"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"P{n:02}" for n in range(25)]
        north = client.get("/stock", params={"warehouse": "north", "limit": 100}).json()["items"]
        assert [i["sku"] for i in north] == [f"P{n:02}" for n in range(0, 25, 3)]
        assert client.get("/stock/NOPE").status_code == 404


def test_tokens_carry_permissions_and_names(server: Server) -> None:
    with server.client() as admin:
        reader = admin.post("/tokens", json={"name": "reader", "permissions": ["read"]}).json()[
            "token"
        ]
        writer = admin.post("/tokens", json={"name": "shop-bot", "permissions": ["write"]}).json()[
            "token"
        ]
        assert (
            admin.post("/tokens", json={"name": "reader", "permissions": ["read"]}).status_code
            == 409
        )
        listed = admin.get("/tokens").json()
        assert {t["name"] for t in listed} == {"reader", "shop-bot"}
        assert all("token" not in t for t in listed)
    with server.client(writer) as client:
        written = client.post("/movements", json=movement("w1"))
        assert written.status_code == 201
        position = written.json()["position"]
        assert client.get("/stock/SKU-1", params={"after": position}).status_code == 200
        assert (
            client.post("/tokens", json={"name": "x", "permissions": ["admin"]}).status_code == 403
        )
    with server.client(reader) as client:
        forbidden = client.post("/movements", json=movement("r1"))
        assert forbidden.status_code == 403
        assert forbidden.json()["error"] == "forbidden"
        assert client.get("/stock/SKU-1", params={"after": position}).status_code == 200
    with server.client() as admin:
        assert admin.delete("/tokens/shop-bot").status_code == 204
        assert admin.delete("/tokens/nobody").status_code == 404
    with server.client(writer) as client:
        assert client.post("/movements", json=movement("w2")).status_code == 401


def test_requests_without_a_valid_token_are_refused(server: Server) -> None:
    url = server.url
    assert httpx.get(f"{url}/healthz").status_code == 200
    missing = httpx.get(f"{url}/stock")
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert httpx.get(f"{url}/stock", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{url}/stock", headers={"Authorization": "Basic abc"}).status_code == 401
    assert httpx.post(f"{url}/movements", json=movement("x")).status_code == 401
    assert server.head() == 0


def test_the_recorder_of_a_movement_is_the_tokens_name(pg_server: Server) -> None:
    with pg_server.client() as admin:
        token = admin.post("/tokens", json={"name": "scanner-3", "permissions": ["write"]}).json()[
            "token"
        ]
    with pg_server.client(token) as client:
        scanned = client.post("/movements", json={**movement("scan-1", "2"), "kind": "scan"})
        assert scanned.status_code == 201
    schema = pg_server.database_url.split("schema=")[1]
    query = (
        f'SELECT state FROM "{schema}".ledger_events'
        " WHERE originator_id = %s AND originator_version = 2"
    )
    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute(query, (stock_id("SKU-1", "main"),)).fetchone()
    assert row is not None
    assert b'"recorded_by":"scanner-3"' in bytes(row[0])


def test_cli_issues_tokens_that_the_api_accepts(pg_server: Server, tmp_path: Path) -> None:
    env = {"LEDGER_DATABASE_URL": pg_server.database_url, "PATH": ""}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.cli import main; main()",
            "token",
            "create",
            "cli-bot",
            "-p",
            "write",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    secret = out.stdout.strip()
    with pg_server.client(secret) as client:
        assert client.post("/movements", json=movement("c1")).status_code == 201
    listed = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "token", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "cli-bot\twrite\tactive" in listed


@pytest.mark.parametrize("clients", [8])
def test_concurrent_clients_on_one_sku_lose_nothing(pg_server: Server, clients: int) -> None:
    per_client = 100
    failures: list[str] = []

    def run(n: int) -> None:
        with pg_server.client() as client:
            for i in range(per_client):
                response = client.post("/movements", json=movement(f"c{n}-{i}", "1", sku="HOT"))
                if response.status_code != 201:
                    failures.append(f"{response.status_code} {response.text}")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with pg_server.client() as client:
        stock = client.get("/stock/HOT", params={"after": pg_server.head() - 1}).json()
    assert stock["physical"] == str(clients * per_client)
    schema = pg_server.database_url.split("schema=")[1]
    with psycopg.connect(POSTGRES_URL) as conn:
        [count] = conn.execute(
            f'SELECT count(*) FROM "{schema}".ledger_events WHERE originator_id = %s '
            "AND topic LIKE %s",
            (stock_id("HOT", "main"), "%PurchaseOrderReceived"),
        ).fetchone()
    assert count == clients * per_client


def test_a_50000_row_spreadsheet_is_one_request(pg_server: Server) -> None:
    rows = [
        {"movement_id": f"sheet-{n}", "sku": f"SKU-{n:05}", "kind": "spreadsheet", "quantity": "3"}
        for n in range(50_000)
    ]
    with pg_server.client() as client:
        response = client.post("/movements/batch", json={"movements": rows}, timeout=300)
        assert response.status_code == 201, response.text
        results = response.json()["results"]
        assert len(results) == 50_000
        positions = [r["position"] for r in results]
        assert positions == sorted(positions)
        stock = client.get("/stock/SKU-49999", params={"after": positions[-1]}, timeout=120)
        assert stock.status_code == 200, stock.text
        assert stock.json()["physical"] == "3"
        again = client.post("/movements/batch", json={"movements": rows}, timeout=300)
        assert again.status_code == 200
        assert again.json()["results"] == results
