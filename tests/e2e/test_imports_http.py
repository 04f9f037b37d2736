"""Spreadsheet imports through the real server (SQLite and PostgreSQL) and the CLI: preview,
commit, the same file twice, and bad files that record nothing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import xlsxwriter

from tests.e2e.conftest import TEST_SECRET_KEY, Server


@pytest.fixture(scope="module")
def ledger(shared_server: Server) -> Iterator[httpx.Client]:
    with shared_server.client() as client:
        yield client


def upload(
    client: httpx.Client, content: bytes, name: str = "stock.csv", **form: str
) -> httpx.Response:
    return client.post("/imports", files={"file": (name, content)}, data=form)


def physical(client: httpx.Client, sku: str, warehouse: str = "main") -> str | None:
    response = client.get(f"/stock/{sku}")
    if response.status_code == 404:
        return None
    for level in response.json()["warehouses"]:
        if level["warehouse"] == warehouse:
            return level["physical"]
    return None


def xlsx(rows: list[list[object]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.close()
    return buffer.getvalue()


def test_a_csv_with_commas_is_previewed_then_committed(ledger):
    content = b"sku,warehouse,quantity\nCSV-A,main,10\nCSV-B,main,2.5\nCSV-A,main,5\n"
    preview = upload(ledger, content)
    assert preview.status_code == 201, preview.text
    body = preview.json()
    assert (body["status"], body["rows"], body["valid"], body["errors"]) == (
        "previewed",
        3,
        3,
        [],
    )
    assert body["changes"] == [
        {"sku": "CSV-A", "warehouse": "main", "physical_before": "0", "physical_after": "15"},
        {"sku": "CSV-B", "warehouse": "main", "physical_before": "0", "physical_after": "2.5"},
    ]
    assert physical(ledger, "CSV-A") is None  # a preview records nothing
    committed = ledger.post(f"/imports/{body['import_id']}/commit")
    assert committed.status_code == 200, committed.text
    assert committed.json()["status"] == "committed"
    assert committed.json()["recorded"] == 3
    assert physical(ledger, "CSV-A") == "15"
    assert physical(ledger, "CSV-B") == "2.5"
    after = committed.json()["position"]
    report = ledger.get("/movements", params={"sku": "CSV-A", "after": after}).json()["items"]
    assert {item["kind"] for item in report} == {"spreadsheet"}
    assert sorted(item["reference"] for item in report) == ["stock.csv row 2", "stock.csv row 4"]


def test_the_same_file_committed_twice_even_uploaded_again_records_once(ledger):
    content = b"sku;quantidade\nTWICE;7\n"
    first = upload(ledger, content, "twice.csv").json()
    assert ledger.post(f"/imports/{first['import_id']}/commit").json()["recorded"] == 1
    again = ledger.post(f"/imports/{first['import_id']}/commit").json()
    assert (again["recorded"], again["replayed"]) == (0, 1)
    second = upload(ledger, content, "twice-again.csv").json()
    assert second["import_id"] != first["import_id"]
    committed = ledger.post(f"/imports/{second['import_id']}/commit").json()
    assert (committed["recorded"], committed["replayed"]) == (0, 1)
    assert physical(ledger, "TWICE") == "7"
    listed = ledger.get("/imports", params={"limit": 2}).json()["items"]
    assert [item["import_id"] for item in listed] == [second["import_id"], first["import_id"]]


def test_portuguese_headers_semicolons_windows_1252_and_decimal_commas(ledger):
    content = "Código;Depósito;Quantidade;Descrição\nPT-1;loja;1,5;Pão de queijo\n".encode("cp1252")
    body = upload(ledger, content, "planilha.csv").json()
    assert body["errors"] == [], body
    ledger.post(f"/imports/{body['import_id']}/commit")
    assert physical(ledger, "PT-1", "loja") == "1.5"
    assert ledger.get("/products/PT-1").json()["name"] == "Pão de queijo"


def test_utf8_with_a_bom_and_an_unknown_column(ledger):
    content = "\ufeffSKU,Qtd,Cor\nBOM-1,4,azul\n".encode()
    body = upload(ledger, content).json()
    assert body["errors"] == []
    assert any("Cor" in warning for warning in body["warnings"])
    ledger.post(f"/imports/{body['import_id']}/commit")
    assert physical(ledger, "BOM-1") == "4"


def test_set_mode_records_counts_and_an_xlsx_is_read(ledger):
    ledger.post(
        "/movements",
        json={"movement_id": "xl-seed", "sku": "7891234", "kind": "manual", "quantity": "9"},
    )
    content = xlsx([["SKU", "Quantity"], [7891234, 3], ["XL-2", 0.3]])
    body = upload(ledger, content, "count.xlsx", mode="set").json()
    assert body["errors"] == [], body
    assert body["changes"][0] == {
        "sku": "7891234",
        "warehouse": "main",
        "physical_before": "9",
        "physical_after": "3",
    }
    after = ledger.post(f"/imports/{body['import_id']}/commit").json()["position"]
    assert physical(ledger, "7891234") == "3"
    assert physical(ledger, "XL-2") == "0.3"
    report = ledger.get("/movements", params={"sku": "XL-2", "after": after})
    kinds = {item["kind"] for item in report.json()["items"]}
    assert kinds == {"inventory_count"}


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"", "empty.csv"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "picture.csv"),
        (b"PK\x03\x04not really a zip", "broken.xlsx"),
        (b"color,size\nred,10\n", "no-columns.csv"),
    ],
)
def test_a_file_that_is_no_stock_sheet_is_refused_and_creates_no_import(ledger, content, name):
    before = len(ledger.get("/imports", params={"limit": 200}).json()["items"])
    response = upload(ledger, content, name)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "unreadable_sheet"
    assert len(ledger.get("/imports", params={"limit": 200}).json()["items"]) == before


def test_bad_rows_are_named_by_row_and_column_and_block_the_commit(ledger):
    content = b"sku,quantity\nOK-1,5\n..,3\nOK-2,lots\nOK-3,1\nOK-3,2\n"
    body = upload(ledger, content, "bad.csv", mode="set").json()
    errors = {(e["row"], e["column"], e["error"]) for e in body["errors"]}
    assert errors == {
        (3, "sku", "invalid_sku"),
        (4, "quantity", "invalid_quantity"),
        (6, "sku", "duplicate_row"),
    }
    refused = ledger.post(f"/imports/{body['import_id']}/commit")
    assert refused.status_code == 409
    assert refused.json()["error"] == "import_has_errors"
    assert physical(ledger, "OK-1") is None
    skipped = ledger.post(f"/imports/{body['import_id']}/commit", json={"skip_invalid": True})
    assert skipped.status_code == 200, skipped.text
    assert (physical(ledger, "OK-1"), physical(ledger, "OK-3")) == ("5", "1")


def test_a_file_over_the_size_limit_is_refused_with_413(ledger):
    content = b"sku,quantity\n" + b"BIG,1\n" * (21 * 1024 * 1024 // 6)
    response = upload(ledger, content, "big.csv")
    assert response.status_code == 413


def test_the_cli_previews_and_commits_with_yes(shared_server: Server, tmp_path: Path):
    sheet = tmp_path / "cli.csv"
    sheet.write_text("sku;qtd\nCLI-1;8\nCLI-2;1,25\n", encoding="utf-8")
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": shared_server.database_url,
        "LEDGER_SECRET_KEY": TEST_SECRET_KEY,
    }
    command = [sys.executable, "-c", "from api.cli import main; main()", "import", str(sheet)]
    run = subprocess.run(
        [*command, "--yes"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert "2 valid" in run.stdout
    assert "2 movements recorded" in run.stdout
    again = subprocess.run(
        [*command, "--yes"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert "0 movements recorded, 2 already recorded" in again.stdout
    with shared_server.client() as client:
        assert physical(client, "CLI-2") == "1.25"
    bad = tmp_path / "bad.csv"
    bad.write_text("sku;qtd\n..;8\n", encoding="utf-8")
    refused = subprocess.run(
        [*command[:-1], str(bad), "--yes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert refused.returncode == 1
    assert "row 2" in refused.stdout
