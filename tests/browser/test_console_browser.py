"""The operator console in a real browser: signing in, finding a SKU, the seed's example on
its page and chart, recording a movement that shows in an open list without a reload, what a
read user sees, and a form posted from another site."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import PASSWORD, sign_in, wait_for
from tests.e2e.conftest import Server


def move(api: httpx.Client, sku: str, quantity: str, kind: str = "invoice") -> None:
    body = {"movement_id": uuid.uuid4().hex, "sku": sku, "kind": kind, "quantity": quantity}
    response = api.post("/movements", json=body)
    assert response.status_code == 201, response.text


def text_of(driver, selector: str) -> str:
    elements = driver.find_elements(By.CSS_SELECTOR, selector)
    return elements[0].text if elements else ""


def test_an_admin_creates_a_user_who_signs_in_and_finds_a_sku(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    make_user("chefe", "admin")
    move(api, "CAFE-500", "12")
    put = api.put("/products/CAFE-500", json={"name": "Café Torrado 500g"})
    assert put.status_code in (200, 201), put.text
    sign_in(browser, console, "chefe")
    browser.get(f"{console.url}/ui/users")
    browser.find_element(By.ID, "new-name").send_keys("maria")
    browser.find_element(By.ID, "new-password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[name=role][value=write]").click()
    browser.find_element(By.ID, "new-password").submit()
    wait_for(browser, lambda d: text_of(d, "tr[data-user=maria]"))
    assert "write" in text_of(browser, "tr[data-user=maria]")
    browser.delete_all_cookies()

    sign_in(browser, console, "maria")
    assert "maria" in text_of(browser, ".who")
    search = browser.find_element(By.ID, "q")
    search.send_keys("CAFE")
    search.submit()
    wait_for(browser, lambda d: text_of(d, "tr[data-sku='CAFE-500']"))
    browser.find_element(By.LINK_TEXT, "CAFE-500").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-warehouse=main]"))
    assert text_of(browser, "tr[data-warehouse=main] .physical") == "12"
    assert "Café Torrado 500g" in text_of(browser, "h1")


def test_the_seeds_example_reads_on_the_skus_page_and_chart(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    # 10 arrive; an order of 5 reserves them (available 5); the invoice consumes them
    # (physical 5).
    move(api, "SEED-1", "10")
    api.put("/platforms/shop", json={"type": "webhook", "carriers": {"PAC": "pac"}})
    order = {
        "platform": "shop",
        "order_id": "seed-1",
        "status": "payment_confirmed",
        "carrier": "PAC",
        "items": [{"sku": "SEED-1", "quantity": "5", "warehouse": "main"}],
    }
    placed = api.post("/orders", json=order)
    assert placed.status_code == 201, placed.text
    invoiced = api.post("/orders/shop/seed-1/status", json={"status": "invoiced"})
    assert invoiced.status_code == 200, invoiced.text
    make_user("leitor-seed", "read")
    sign_in(browser, console, "leitor-seed")
    browser.get(f"{console.url}/ui/stock/SEED-1")

    def chart(driver) -> tuple[str, str] | None:
        found = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
        if not found:
            return None
        values = (found[0].get_attribute("data-physical"), found[0].get_attribute("data-available"))
        return values if values == ("10 10 5", "10 5 5") else None

    assert wait_for(browser, chart) == ("10 10 5", "10 5 5")
    assert text_of(browser, "tr[data-warehouse=main] .physical") == "5"
    assert text_of(browser, "tr[data-warehouse=main] .reserved") == "0"
    assert text_of(browser, "tr[data-warehouse=main] .available") == "5"
    cells = browser.find_elements(By.CSS_SELECTOR, "table.history td:nth-child(3)")
    kinds = [cell.text for cell in cells]
    assert kinds == ["consumption", "reservation", "invoice"]


def test_a_movement_recorded_in_one_tab_appears_in_an_open_list_without_reloading(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    move(api, "LIVE-1", "3")
    make_user("escritor", "write")
    sign_in(browser, console, "escritor")
    browser.get(f"{console.url}/ui/stock?q=LIVE-")
    wait_for(browser, lambda d: "3" in text_of(d, "tr[data-sku='LIVE-1'] .available"))
    list_tab = browser.current_window_handle
    browser.execute_script("window.marker = 'not reloaded'")

    browser.switch_to.new_window("tab")
    browser.get(f"{console.url}/ui/record?sku=LIVE-1")
    Select(browser.find_element(By.ID, "kind")).select_by_value("purchase_order")
    browser.find_element(By.ID, "quantity").send_keys("4")
    browser.find_element(By.ID, "reference").send_keys("PO 77")
    browser.find_element(By.ID, "quantity").submit()
    wait_for(browser, lambda d: text_of(d, "#recorded"))
    assert "7" in text_of(browser, "#recorded")

    browser.switch_to.window(list_tab)
    wait_for(browser, lambda d: text_of(d, "tr[data-sku='LIVE-1'] .available").startswith("7"))
    assert browser.execute_script("return window.marker") == "not reloaded"
    report = api.get("/movements", params={"sku": "LIVE-1", "after": console.head()})
    newest = report.json()["items"][0]
    assert (newest["kind"], newest["recorded_by"], newest["reference"]) == (
        "purchase_order",
        "escritor",
        "PO 77",
    )


def test_a_double_submit_records_once(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    move(api, "TWICE-1", "1")
    make_user("apressado", "write")
    sign_in(browser, console, "apressado")
    browser.get(f"{console.url}/ui/record?sku=TWICE-1")
    browser.find_element(By.ID, "quantity").send_keys("2")
    # Two submits as fast as a double click, bypassing the page's own guard: the server
    # records once because the form carries its movement_id.
    browser.execute_script(
        "const f = document.querySelector('form[data-once]');"
        "const d = new FormData(f);"
        "window.answers = [];"
        "for (let i = 0; i < 2; i++) {"
        "  fetch(f.action, {method: 'POST', body: new URLSearchParams(d)})"
        "    .then(r => window.answers.push(r.status));"
        "}"
    )
    wait_for(browser, lambda d: len(d.execute_script("return window.answers") or []) == 2)
    assert browser.execute_script("return window.answers") == [200, 200]
    # /stock/{sku} includes every answered write: twice recorded would read 5.
    assert api.get("/stock/TWICE-1").json()["physical"] == "3"


def test_a_read_user_sees_no_form_that_changes_anything_and_its_posts_get_403(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    move(api, "READ-1", "5")
    make_user("so-leitura", "read")
    sign_in(browser, console, "so-leitura")
    for path in ("/ui/stock", "/ui/stock/READ-1"):
        browser.get(f"{console.url}{path}")
        forms = browser.find_elements(By.CSS_SELECTOR, "form[method=post]")
        # Signing out is the only post a reader may make.
        assert [f.get_attribute("action").split("/ui/")[1] for f in forms] == ["sign-out"]
        assert not browser.find_elements(By.LINK_TEXT, "Record a movement")
    csrf = browser.find_element(By.NAME, "csrf").get_attribute("value")
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    with httpx.Client(base_url=console.url, cookies=cookies) as client:
        for path in ("/ui/record", "/ui/users"):
            refused = client.post(
                path,
                data={
                    "csrf": csrf,
                    "sku": "READ-1",
                    "quantity": "9",
                    "kind": "manual",
                    "name": "x",
                    "password": PASSWORD,
                },
            )
            assert refused.status_code == 403, (path, refused.text)
        assert client.get("/ui/record").status_code == 403
        assert client.get("/ui/users").status_code == 403
    assert api.get("/stock/READ-1").json()["physical"] == "5"


@pytest.fixture
def other_site() -> Iterator[dict]:
    """A page on another origin (another port) whose form posts to the ledger by itself."""
    page: dict = {"html": b""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page["html"])

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    page["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield page
    httpd.shutdown()


def test_a_form_posted_from_another_site_is_refused(
    console: Server, api: httpx.Client, make_user, browser, other_site
) -> None:
    move(api, "CSRF-1", "5")
    make_user("vitima", "write")
    sign_in(browser, console, "vitima")
    browser.get(f"{console.url}/ui/record")
    csrf = browser.find_element(By.NAME, "csrf").get_attribute("value")
    # Even with the victim's own token (as if it leaked), another origin's post is refused.
    other_site["html"] = (
        f'<form id="f" method="post" action="{console.url}/ui/record">'
        f'<input name="csrf" value="{csrf}"><input name="movement_id" value="evil-1">'
        '<input name="sku" value="CSRF-1"><input name="warehouse" value="main">'
        '<input name="kind" value="manual"><input name="quantity" value="-5"></form>'
        "<script>document.getElementById('f').submit()</script>"
    ).encode()
    browser.get(other_site["url"])
    wait_for(browser, lambda d: d.current_url.startswith(console.url))
    assert "another site" in browser.find_element(By.TAG_NAME, "main").text
    assert api.get("/stock/CSRF-1").json()["physical"] == "5"
