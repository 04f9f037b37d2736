"""Where stock changes come from, in the console and a real browser: a spreadsheet uploaded,
previewed and committed; a USB scanner (typed digits and Enter) recording scans without a
reload; an inventory count; the movement report's filters and its CSV; and what a read user
may not do there."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from ledger.barcodes import check_digit
from tests.browser.conftest import PASSWORD, wait_for
from tests.e2e.conftest import Server


def move(api: httpx.Client, sku: str, quantity: str, kind: str = "invoice", **more: str) -> int:
    body = {"movement_id": uuid.uuid4().hex, "sku": sku, "kind": kind, "quantity": quantity}
    response = api.post("/movements", json={**body, **more})
    assert response.status_code == 201, response.text
    return response.json()["position"]


def gtin(body: str) -> str:
    return body + str(check_digit(body))


def text_of(driver, selector: str) -> str:
    try:
        elements = driver.find_elements(By.CSS_SELECTOR, selector)
        return elements[0].text if elements else ""
    except StaleElementReferenceException:  # a live part replaced it meanwhile
        return ""


def physical(api: httpx.Client, sku: str) -> str:
    response = api.get(f"/stock/{sku}")
    assert response.status_code == 200, response.text
    return response.json()["physical"]


def sign_in_at(driver, server: Server, name: str, path: str) -> None:
    """Signs in straight to ``path``: not through the stock list, whose long poll would stay
    open on the server after the browser leaves."""
    driver.get(f"{server.url}/ui/sign-in?next={quote(path)}")
    driver.find_element(By.NAME, "name").send_keys(name)
    field = driver.find_element(By.NAME, "password")
    field.send_keys(PASSWORD)
    field.submit()
    wait_for(driver, lambda d: "/ui/sign-in" not in d.current_url)


def post_forms(driver) -> list[str]:
    forms = driver.find_elements(By.CSS_SELECTOR, "form[method=post]")
    return [f.get_attribute("action").split("/ui/")[1] for f in forms]


def test_upload_a_spreadsheet_read_its_preview_and_commit_it(
    console: Server, api: httpx.Client, make_user, browser, tmp_path: Path
) -> None:
    move(api, "SHEET-1", "2")
    sheet = tmp_path / "estoque-loja.csv"
    sheet.write_text(
        "sku;quantidade;depósito\nSHEET-1;3;main\nSHEET-2;2,5;main\nSHEET-3;abc;main\n",
        encoding="utf-8",
    )
    make_user("planilheiro", "write")
    sign_in_at(browser, console, "planilheiro", "/ui/imports")
    browser.find_element(By.ID, "import-file").send_keys(str(sheet))
    browser.find_element(By.ID, "mode-add").click()
    browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()

    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.import-changes"))
    assert text_of(browser, "#rows-total") == "3"
    assert text_of(browser, "#rows-errors") == "1"
    error = browser.find_element(By.CSS_SELECTOR, "table.import-errors tr[data-row='4']")
    assert error.find_element(By.CSS_SELECTOR, ".column").text == "quantidade"
    assert "abc" in error.find_element(By.CSS_SELECTOR, ".reason").text
    changes = {
        row.get_attribute("data-sku"): (
            row.find_element(By.CSS_SELECTOR, ".before").text,
            row.find_element(By.CSS_SELECTOR, ".after").text,
        )
        for row in browser.find_elements(By.CSS_SELECTOR, "table.import-changes tbody tr")
    }
    assert changes == {"SHEET-1": ("2", "5"), "SHEET-2": ("0", "2.5")}
    assert physical(api, "SHEET-1") == "2"  # a preview records nothing

    browser.find_element(By.ID, "skip-invalid").click()
    browser.find_element(By.CSS_SELECTOR, "#commit button[type=submit]").click()
    wait_for(browser, lambda d: "Committed" in text_of(d, ".notice"))
    assert "2 movement(s) recorded" in text_of(browser, ".notice")
    assert not browser.find_elements(By.ID, "commit")
    assert physical(api, "SHEET-1") == "5"
    assert physical(api, "SHEET-2") == "2.5"

    browser.find_element(By.LINK_TEXT, "Spreadsheets").click()
    wait_for(browser, lambda d: "estoque-loja.csv" in text_of(d, "table.imports"))


def test_scan_with_typed_digits_and_enter(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    move(api, "SCAN-1", "4")
    code = gtin("789100000001")
    put = api.put(f"/barcodes/{code}", json={"sku": "SCAN-1", "units": 1})
    assert put.status_code in (200, 201), put.text
    make_user("bipador", "write")
    sign_in_at(browser, console, "bipador", "/ui/scan")
    field = browser.find_element(By.ID, "barcode")
    wait_for(browser, lambda d: d.switch_to.active_element == field)
    browser.execute_script("window.marker = 'not reloaded'")

    # The scanner types into whatever has the focus: the barcode field keeps it.
    browser.switch_to.active_element.send_keys(code + Keys.ENTER)
    wait_for(browser, lambda d: text_of(d, "#scan-result .balance") == "5")
    assert text_of(browser, "#scan-result .sku") == "SCAN-1"
    assert "ok" in browser.find_element(By.ID, "scan-result").get_attribute("class")

    unknown = gtin("789100000009")
    browser.switch_to.active_element.send_keys(unknown + Keys.ENTER)
    wait_for(
        browser,
        lambda d: "unknown" in d.find_element(By.ID, "scan-result").get_attribute("class"),
    )
    assert unknown in text_of(browser, "#scan-result")
    assert browser.switch_to.active_element == field

    browser.find_element(By.ID, "direction-out").click()
    field.click()
    browser.switch_to.active_element.send_keys(code + Keys.ENTER)
    wait_for(browser, lambda d: text_of(d, "#scan-result .balance") == "4")
    assert text_of(browser, "#scan-result .change") == "-1"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#scan-log tr")) == 3
    assert browser.execute_script("return window.marker") == "not reloaded"
    assert physical(api, "SCAN-1") == "4"


def test_an_inventory_count_with_a_scanner_and_typed_lines(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    move(api, "COUNT-1", "10", warehouse="loja")
    move(api, "COUNT-2", "3", warehouse="loja")
    move(api, "COUNT-3", "7", warehouse="loja")
    code = gtin("789100000002")
    assert api.put(f"/barcodes/{code}", json={"sku": "COUNT-1", "units": 1}).status_code in (
        200,
        201,
    )
    make_user("contador", "write")
    sign_in_at(browser, console, "contador", "/ui/counts")
    warehouse = browser.find_element(By.ID, "count-warehouse")
    warehouse.clear()
    warehouse.send_keys("loja")
    name = browser.find_element(By.ID, "count-id")
    name.clear()
    name.send_keys("inventario-loja")
    name.submit()
    wait_for(browser, lambda d: text_of(d, "#count-status") == "open")

    barcode = browser.find_element(By.ID, "line-barcode")
    wait_for(browser, lambda d: d.switch_to.active_element == barcode)
    for _ in range(2):  # a scanner, twice: the lines add up
        browser.switch_to.active_element.send_keys(code + Keys.ENTER)
        wait_for(browser, lambda d: text_of(d, "#scan-result .sku") == "COUNT-1")
    wait_for(browser, lambda d: text_of(d, "tr[data-sku='COUNT-1'] .counted") == "2")
    browser.find_element(By.ID, "line-sku").send_keys("COUNT-2")
    quantity = browser.find_element(By.ID, "line-quantity")
    quantity.clear()
    quantity.send_keys("5" + Keys.ENTER)
    wait_for(browser, lambda d: text_of(d, "tr[data-sku='COUNT-2'] .counted") == "5")
    assert text_of(browser, "tr[data-sku='COUNT-1'] .change") == "-8"
    assert text_of(browser, "tr[data-sku='COUNT-2'] .after") == "5"

    browser.find_element(By.ID, "zero-uncounted").click()
    browser.find_element(By.CSS_SELECTOR, "#close-count button[type=submit]").click()
    wait_for(browser, lambda d: text_of(d, "#count-status") == "closed")
    assert "3 movement(s) recorded" in text_of(browser, ".notice")
    levels = {sku: physical(api, sku) for sku in ("COUNT-1", "COUNT-2", "COUNT-3")}
    assert levels == {"COUNT-1": "2", "COUNT-2": "5", "COUNT-3": "0"}


def test_the_report_filters_and_its_csv_downloads(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    move(api, "REP-1", "10", reference="NF 1")
    move(api, "REP-1", "-2", kind="manual", note="quebra")
    move(api, "REP-2", "1")
    make_user("relatorio", "read")
    sign_in_at(browser, console, "relatorio", "/ui/movements")
    browser.find_element(By.ID, "f-sku").send_keys("REP-1")
    Select(browser.find_element(By.ID, "f-kind")).select_by_value("invoice")
    browser.find_element(By.ID, "f-sku").submit()

    def invoice_rows(driver) -> list[str] | None:
        rows = driver.find_elements(By.CSS_SELECTOR, "table.report tbody tr[data-sku]")
        if not rows:
            driver.refresh()  # the report is a view: it may lag the write by a moment
            return None
        return [
            f"{r.get_attribute('data-sku')} {r.find_element(By.CSS_SELECTOR, '.kind').text} "
            f"{r.find_element(By.CSS_SELECTOR, '.quantity').text}"
            for r in rows
        ]

    assert wait_for(browser, invoice_rows) == ["REP-1 invoice 10"]
    assert "sku=REP-1" in browser.current_url
    assert Select(browser.find_element(By.ID, "f-kind")).first_selected_option.text == "invoice"

    link = browser.find_element(By.ID, "csv-link").get_attribute("href")
    assert "/ui/movements.csv?" in link
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    with httpx.Client(cookies=cookies, timeout=30) as client:
        downloaded = client.get(link)
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(downloaded.text)))
    assert [(r["sku"], r["kind"], r["quantity_change"], r["reference"]) for r in rows] == [
        ("REP-1", "invoice", "10", "NF 1")
    ]
    same = api.get(
        "/movements", params={"sku": "REP-1", "kind": "invoice"}, headers={"Accept": "text/csv"}
    )
    assert downloaded.text == same.text

    # Without cookies, no report.
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        assert client.get(link).status_code in (303, 401)


def test_a_read_user_sees_no_forms_on_these_pages_and_its_posts_get_403(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    move(api, "RO-1", "5")
    code = gtin("789100000003")
    api.put(f"/barcodes/{code}", json={"sku": "RO-1", "units": 1})
    uploaded = api.post(
        "/imports",
        files={"file": ("ro.csv", b"sku,quantity\nRO-1,4\n", "text/csv")},
        data={"mode": "add"},
    )
    assert uploaded.status_code == 201, uploaded.text
    import_id = uploaded.json()["import_id"]
    opened = api.post("/counts", json={"count_id": "ro-count", "warehouse": "main"})
    assert opened.status_code == 201, opened.text

    make_user("so-olha", "read")
    sign_in_at(browser, console, "so-olha", "/ui/movements")
    for path in (
        "/ui/movements",
        "/ui/imports",
        f"/ui/imports/{import_id}",
        "/ui/counts",
        "/ui/counts/ro-count",
    ):
        browser.get(f"{console.url}{path}")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "main h1"))
        assert post_forms(browser) == ["sign-out"], path
        assert not browser.find_elements(By.CSS_SELECTOR, "input[type=file]")
        assert not browser.find_elements(By.LINK_TEXT, "Scanning")
    csrf = browser.find_element(By.NAME, "csrf").get_attribute("value")
    browser.get(f"{console.url}/ui/scan")
    wait_for(browser, lambda d: "You may not do this" in text_of(d, "h1"))

    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    with httpx.Client(base_url=console.url, cookies=cookies, timeout=30) as client:
        assert client.get("/ui/scan").status_code == 403
        refused = [
            client.post(
                "/ui/imports",
                data={"csrf": csrf, "mode": "add"},
                files={"file": ("x.csv", b"sku,quantity\nRO-1,9\n", "text/csv")},
            ),
            client.post(f"/ui/imports/{import_id}/commit", data={"csrf": csrf}),
            client.post(
                "/ui/scan",
                data={"csrf": csrf, "scan_id": "ro", "barcode": code, "direction": "in"},
                headers={"Accept": "application/json"},
            ),
            client.post("/ui/counts", data={"csrf": csrf, "count_id": "ro-2"}),
            client.post(
                "/ui/counts/ro-count/lines", data={"csrf": csrf, "sku": "RO-1", "quantity": "1"}
            ),
            client.post("/ui/counts/ro-count/close", data={"csrf": csrf}),
            client.post("/ui/counts/ro-count/abandon", data={"csrf": csrf}),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused)
    assert physical(api, "RO-1") == "5"
    assert api.get(f"/imports/{import_id}").json()["status"] == "previewed"
    count = api.get("/counts/ro-count").json()
    assert (count["status"], count["lines"]) == ("open", 0)
    # A writer may (and this write also answers the count page's long poll at once).
    assert api.delete("/counts/ro-count").json()["status"] == "abandoned"
