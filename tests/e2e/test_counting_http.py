"""Barcodes, scans (bipagem) and inventory count sessions through the real server, on SQLite and
PostgreSQL; a count closed during sales reaches the store (the VTEX emulator) right."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.vtex_emulator import VtexEmulator
from tests.e2e.conftest import Server, start_server, stop_server
from tests.waiting import eventually

# Valid GTINs of each length (check digits computed by hand from the GS1 rule).
GTIN_8 = "96385074"
GTIN_12 = "036000291452"
GTIN_13 = "4006381333931"
GTIN_14 = "10614141000415"


def physical(client: httpx.Client, sku: str, warehouse: str = "main") -> str | None:
    response = client.get(f"/stock/{sku}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    for level in response.json()["warehouses"]:
        if level["warehouse"] == warehouse:
            return level["physical"]
    return None


def move(
    client: httpx.Client,
    movement_id: str,
    sku: str,
    quantity: str,
    kind: str = "manual",
    warehouse: str = "main",
) -> dict:
    body = {"movement_id": movement_id, "sku": sku, "kind": kind, "quantity": quantity}
    response = client.post("/movements", json={**body, "warehouse": warehouse})
    assert response.status_code == 201, response.text
    return response.json()


def give(client: httpx.Client, code: str, sku: str, units: int = 1) -> None:
    response = client.put(f"/barcodes/{code}", json={"sku": sku, "units": units})
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def ledger(shared_server: Server) -> Iterator[httpx.Client]:
    with shared_server.client() as client:
        yield client


# -- barcodes --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [GTIN_8, GTIN_12, GTIN_13, GTIN_14])
def test_a_gtin_of_each_length_with_its_check_digit_is_taken(ledger, code):
    sku = f"G{len(code)}"
    response = ledger.put(f"/barcodes/{code}", json={"sku": sku})
    assert response.status_code == 201, response.text
    assert response.json()["sku"] == sku
    assert response.json()["key"] == code.zfill(14)
    assert ledger.get(f"/barcodes/{code}").json()["sku"] == sku


@pytest.mark.parametrize("code", [GTIN_8, GTIN_12, GTIN_13, GTIN_14])
def test_a_gtin_with_a_wrong_check_digit_is_refused_and_records_nothing(ledger, code):
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    response = ledger.put(f"/barcodes/{wrong}", json={"sku": "WRONG"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_barcode"
    assert ledger.get(f"/barcodes/{code[:-1]}0").status_code in (404, 422)
    assert ledger.get("/products/WRONG").json()["barcodes"] == []


def test_a_gtin_12_and_its_ean_13_form_are_one_barcode(ledger):
    code = "012345678905"  # GTIN-12; "0012345678905" is the same code as an EAN-13
    assert ledger.put(f"/barcodes/{code}", json={"sku": "UPC-A"}).status_code == 201
    taken = ledger.put(f"/barcodes/0{code}", json={"sku": "OTHER"})
    assert taken.status_code == 409
    assert taken.json()["error"] == "barcode_taken"
    assert ledger.get(f"/barcodes/0{code}").json()["sku"] == "UPC-A"
    # The same SKU may set it again: nothing changes, and it says so (200, not 201).
    assert ledger.put(f"/barcodes/0{code}", json={"sku": "UPC-A"}).status_code == 200


def test_a_sku_lists_its_barcodes_and_name_and_a_deleted_barcode_is_free_again(ledger):
    move(ledger, "named-1", "NAMED", "5")
    assert ledger.put("/barcodes/INT-001", json={"sku": "NAMED"}).status_code == 201
    assert ledger.put(f"/barcodes/{GTIN_13[:-1]}0", json={"sku": "NAMED"}).status_code == 422
    assert (
        ledger.put("/barcodes/7891000315507", json={"sku": "NAMED", "units": 6}).status_code == 201
    )
    named = ledger.put("/products/NAMED", json={"name": "Café torrado 500 g"})
    assert named.status_code == 200, named.text
    stock = ledger.get("/stock/NAMED").json()
    assert stock["name"] == "Café torrado 500 g"
    assert stock["barcodes"] == [
        {"code": "7891000315507", "units": 6},
        {"code": "INT-001", "units": 1},
    ]
    assert ledger.delete("/barcodes/INT-001").status_code == 204
    assert ledger.get("/barcodes/INT-001").status_code == 404
    assert ledger.put("/barcodes/INT-001", json={"sku": "ELSEWHERE"}).status_code == 201
    assert [b["code"] for b in ledger.get("/stock/NAMED").json()["barcodes"]] == ["7891000315507"]


# -- scans -----------------------------------------------------------------------------------


def test_a_case_scanned_moves_its_units_and_a_scan_id_records_once(ledger):
    move(ledger, "case-seed", "CASE-SKU", "100")
    assert (
        ledger.put("/barcodes/17891000315504", json={"sku": "CASE-SKU", "units": 12}).status_code
        == 201
    )
    scan = {"scan_id": "s-1", "barcode": "17891000315504", "direction": "out"}
    first = ledger.post("/scans", json=scan)
    assert first.status_code == 201, first.text
    assert first.json()["physical"] == "88"
    again = ledger.post("/scans", json=scan)
    assert again.status_code == 200
    assert again.json()["physical"] == "88"
    assert physical(ledger, "CASE-SKU") == "88"
    reused = ledger.post("/scans", json={**scan, "direction": "in"})
    assert reused.status_code == 409
    assert reused.json()["error"] == "idempotency_conflict"
    two = ledger.post("/scans", json={"scan_id": "s-2", "barcode": "17891000315504", "count": 2})
    assert two.json()["physical"] == "112"
    after = two.json()["position"]
    report = ledger.get("/movements", params={"sku": "CASE-SKU", "kind": "scan", "after": after})
    report = report.json()["items"]
    assert sorted(item["reference"] for item in report) == ["scan s-1", "scan s-2"]


def test_an_unknown_barcode_records_nothing_and_says_so(ledger):
    move(ledger, "unknown-seed", "UNKNOWN-SKU", "3")
    response = ledger.post("/scans", json={"scan_id": "s-unknown", "barcode": "0000000000000"})
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_barcode"
    assert (
        ledger.post("/scans", json={"scan_id": "s-bad", "barcode": "4006381333932"}).json()["error"]
        == "invalid_barcode"
    )
    assert (
        ledger.get("/movements", params={"kind": "scan", "sku": "UNKNOWN-SKU"}).json()["items"]
        == []
    )


def test_eight_scanners_on_one_sku_at_once_add_up_exactly(shared_server: Server, ledger):
    assert ledger.put("/barcodes/7894900011517", json={"sku": "BUSY"}).status_code == 201
    errors: list[str] = []

    def scanner(n: int) -> None:
        with shared_server.client() as client:
            for i in range(25):
                body = {"scan_id": f"busy-{n}-{i}", "barcode": "7894900011517"}
                response = client.post("/scans", json=body)
                if response.status_code != 201:
                    errors.append(response.text)

    threads = [threading.Thread(target=scanner, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert physical(ledger, "BUSY") == "200"


# -- counts ----------------------------------------------------------------------------------


def test_a_sale_during_a_count_is_not_lost(ledger):
    move(ledger, "during-seed", "DURING", "12")
    assert ledger.post("/counts", json={"count_id": "c-during"}).status_code == 201
    line = ledger.post(
        "/counts/c-during/lines", json={"line_id": "l1", "sku": "DURING", "quantity": "10"}
    )
    assert line.status_code == 201, line.text
    assert line.json()["physical_at_count"] == "12"
    move(ledger, "during-sale", "DURING", "-3", kind="sales_order")
    preview = ledger.get("/counts/c-during").json()
    [row] = preview["skus"]
    assert (row["counted"], row["moved_since"], row["change"], row["physical_after"]) == (
        "10",
        "-3",
        "-2",
        "7",
    )
    assert physical(ledger, "DURING") == "9"  # nothing recorded before the close
    closed = ledger.post("/counts/c-during/close", json={})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["movements"][0]["physical"] == "7"
    [row] = closed.json()["skus"]
    assert (row["moved_since"], row["change"], row["physical_after"]) == ("-3", "-2", "7")
    assert physical(ledger, "DURING") == "7"
    # Closing again records nothing twice; lines on a closed count are refused.
    assert ledger.post("/counts/c-during/close", json={}).json()["movements"][0]["physical"] == "7"
    assert physical(ledger, "DURING") == "7"
    late = ledger.post(
        "/counts/c-during/lines", json={"line_id": "l2", "sku": "DURING", "quantity": "1"}
    )
    assert late.status_code == 409
    assert late.json()["error"] == "count_not_open"
    position = closed.json()["movements"][0]["position"]
    report = ledger.get(
        "/movements", params={"sku": "DURING", "kind": "inventory_count", "after": position}
    )
    [counted] = report.json()["items"]
    assert counted["reference"] == "count c-during"
    assert counted["quantity_change"] == "-2"


def test_lines_add_up_a_barcode_counts_its_units_and_a_line_id_records_once(ledger):
    move(ledger, "lines-seed", "LINES", "40")
    assert (
        ledger.put("/barcodes/7898357410015", json={"sku": "LINES", "units": 12}).status_code == 201
    )
    ledger.post("/counts", json={"count_id": "c-lines"})
    first = {"line_id": "shelf-a", "sku": "LINES", "quantity": "5"}
    assert ledger.post("/counts/c-lines/lines", json=first).status_code == 201
    assert ledger.post("/counts/c-lines/lines", json=first).status_code == 200
    conflict = ledger.post("/counts/c-lines/lines", json={**first, "quantity": "6"})
    assert conflict.status_code == 409
    boxes = {"line_id": "back-room", "barcode": "7898357410015", "quantity": "2"}
    assert ledger.post("/counts/c-lines/lines", json=boxes).json()["counted"] == "29"
    closed = ledger.post("/counts/c-lines/close").json()
    assert closed["skus"][0]["counted"] == "29"
    assert physical(ledger, "LINES") == "29"


def test_a_partial_count_leaves_the_others_alone_unless_asked_to_zero_them(ledger):
    for sku, quantity in (("PART-A", "5"), ("PART-B", "8"), ("PART-C", "2")):
        move(ledger, f"part-{sku}", sku, quantity)
    ledger.post("/counts", json={"count_id": "c-part"})
    ledger.post("/counts/c-part/lines", json={"line_id": "1", "sku": "PART-A", "quantity": "4"})
    ledger.post("/counts/c-part/close", json={"zero_uncounted": False})
    assert [physical(ledger, s) for s in ("PART-A", "PART-B", "PART-C")] == ["4", "8", "2"]

    for sku in ("ZERO-A", "ZERO-B"):
        move(ledger, f"zero-{sku}", sku, "3", warehouse="zeroed")
    move(ledger, "zero-elsewhere", "ZERO-B", "2")
    ledger.post("/counts", json={"count_id": "c-zero", "warehouse": "zeroed"})
    ledger.post("/counts/c-zero/lines", json={"line_id": "1", "sku": "ZERO-A", "quantity": "1"})
    # The stock-levels view lists the warehouse's SKUs: wait until it has both.
    eventually(
        lambda: len(ledger.get("/stock", params={"warehouse": "zeroed"}).json()["items"]) == 2,
        "the view lists the warehouse's SKUs",
    )
    closed = ledger.post("/counts/c-zero/close", json={"zero_uncounted": True})
    assert closed.status_code == 200, closed.text
    assert physical(ledger, "ZERO-A", "zeroed") == "1"
    assert physical(ledger, "ZERO-B", "zeroed") == "0"
    assert physical(ledger, "ZERO-B") == "2"  # another warehouse: untouched


def test_abandoning_a_count_changes_nothing(ledger):
    move(ledger, "abandon-seed", "ABANDON", "6")
    ledger.post("/counts", json={"count_id": "c-abandon"})
    ledger.post("/counts/c-abandon/lines", json={"line_id": "1", "sku": "ABANDON", "quantity": "0"})
    abandoned = ledger.delete("/counts/c-abandon")
    assert abandoned.status_code == 200
    assert abandoned.json()["status"] == "abandoned"
    assert ledger.post("/counts/c-abandon/close").status_code == 409
    assert physical(ledger, "ABANDON") == "6"
    assert ledger.get("/counts/nope").status_code == 404


# -- to the store ----------------------------------------------------------------------------


@pytest.fixture
def shop(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Server, VtexEmulator]]:
    with VtexEmulator().start() as vtex:
        server = start_server(postgres_url, tmp_path)
        try:
            with server.client() as client:
                response = client.put(
                    "/platforms/vtex",
                    json={
                        "type": "vtex",
                        "base_url": vtex.url,
                        "credentials": {"app_key": vtex.app_key, "app_token": vtex.app_token},
                        "warehouses": {"main": "1_1"},
                    },
                )
                assert response.status_code == 200, response.text
            yield server, vtex
        finally:
            stop_server(server)


def test_a_count_closed_after_a_sale_reaches_the_store(shop):
    server, vtex = shop
    with server.client() as client:
        move(client, "store-seed", "STORE", "12")
        client.post("/counts", json={"count_id": "c-store"})
        client.post(
            "/counts/c-store/lines", json={"line_id": "1", "sku": "STORE", "quantity": "10"}
        )
        move(client, "store-sale", "STORE", "-3", kind="sales_order")
        assert client.post("/counts/c-store/close").status_code == 200
        assert physical(client, "STORE") == "7"
    eventually(lambda: vtex.stock("STORE", "1_1") == 7, "the store shows 7")
