"""The console's orders and platforms in a real browser: finding a held order and mapping its
carrier so that it is imported, sending a platform's failed deliveries again, an admin editing
a platform's settings (credentials never shown back), and what a read user may not do."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import sign_in, wait_for
from tests.e2e.conftest import Server


def move(api: httpx.Client, sku: str, quantity: str) -> None:
    body = {"movement_id": uuid.uuid4().hex, "sku": sku, "kind": "invoice", "quantity": quantity}
    response = api.post("/movements", json=body)
    assert response.status_code == 201, response.text


def place(api: httpx.Client, platform: str, order_id: str, carrier: str, sku: str) -> dict:
    response = api.post(
        "/orders",
        json={
            "platform": platform,
            "order_id": order_id,
            "status": "payment_confirmed",
            "carrier": carrier,
            "items": [{"sku": sku, "quantity": "3", "warehouse": "main"}],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def texts_of(driver, selector: str) -> list[str]:
    # Read in one script: a live part may replace the elements between two WebDriver calls.
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText.trim())",
        selector,
    )


def text_of(driver, selector: str) -> str:
    found = texts_of(driver, selector)
    return found[0] if found else ""


def click(driver, by: str, value: str) -> None:
    """Click, finding the element again if a live part replaced it in the meantime."""

    def attempt(d) -> bool:
        try:
            d.find_element(by, value).click()
        except StaleElementReferenceException:
            return False
        return True

    wait_for(driver, attempt)


def unlabelled(driver) -> list[str]:
    """The page's visible controls that have no label."""
    return driver.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.name)"
    )


def wider_than_the_window(driver) -> bool:
    return driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth")


def post_forms(driver) -> list[str]:
    """Where the page's POST forms go, as paths under /ui/."""
    forms = driver.find_elements(By.CSS_SELECTOR, "form[method=post]")
    return [f.get_attribute("action").split("/ui/", 1)[1] for f in forms]


class Receiver:
    """A webhook platform's endpoint that refuses (400) until told to accept."""

    def __init__(self) -> None:
        self.status = 400
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.status < 300:
                    receiver.received.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ledger"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def test_find_a_held_order_add_its_carrier_mapping_and_see_it_imported(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    move(api, "HELD-1", "10")
    configured = api.put("/platforms/loja", json={"type": "webhook", "carriers": {"PAC": "pac"}})
    assert configured.status_code == 200, configured.text
    held = place(api, "loja", "held-7001", "Jadlog Express", "HELD-1")
    assert held["blocked_reason"]
    assert not held["holds_reservation"]
    place(api, "loja", "held-7002", "PAC", "HELD-1")  # imported: not in the held list
    make_user("gerente", "admin")
    sign_in(browser, console, "gerente")

    browser.get(f"{console.url}/ui/orders")
    browser.find_element(By.ID, "q").send_keys("held-70")
    Select(browser.find_element(By.ID, "platform")).select_by_value("loja")
    browser.find_element(By.ID, "held").click()
    browser.find_element(By.ID, "q").submit()
    row = "tr[data-order='loja/held-7001']"
    wait_for(browser, lambda d: "held=1" in d.current_url and text_of(d, row))
    assert "carrier 'Jadlog Express' has no mapping" in text_of(browser, row)
    assert not browser.find_elements(By.CSS_SELECTOR, "tr[data-order='loja/held-7002']")

    click(browser, By.LINK_TEXT, "held-7001")
    wait_for(browser, lambda d: d.find_elements(By.ID, "carrier"))
    assert "no mapping" in text_of(browser, "#order-held")
    assert unlabelled(browser) == []
    browser.find_element(By.ID, "carrier").send_keys("jadlog")
    browser.find_element(By.ID, "carrier").submit()
    wait_for(browser, lambda d: "mapped" in text_of(d, ".notice"))
    assert "1 held orders imported" in text_of(browser, ".notice")
    assert text_of(browser, "#order-held") == "no"
    assert text_of(browser, "#order-reservation") == "yes"
    assert not browser.find_elements(By.ID, "carrier")
    # The stock it reserved shows as soon as the movement report has it, without a reload.
    change = "table.changes tr[data-sku='HELD-1'] .kind"
    wait_for(browser, lambda d: text_of(d, change) == "reservation")
    steps = texts_of(browser, "table.lifecycle td + td")
    assert steps[:3] == [
        "Received as payment confirmed",
        "Held: carrier 'Jadlog Express' has no mapping",
        "Released: imported",
    ]

    order = api.get("/orders/loja/held-7001").json()
    assert order["blocked_reason"] is None
    assert order["holds_reservation"]
    assert api.get("/platforms/loja").json()["carriers"] == {
        "PAC": "pac",
        "Jadlog Express": "jadlog",
    }
    click(browser, By.CSS_SELECTOR, "table.changes a[href='/ui/stock/HELD-1']")
    wait_for(browser, lambda d: text_of(d, "tr[data-warehouse=main] .reserved") == "6")

    browser.get(f"{console.url}/ui/orders?platform=loja&held=1")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#order-rows tr"))
    assert not browser.find_elements(By.CSS_SELECTOR, row)


def test_retry_a_failed_delivery(
    console: Server, api: httpx.Client, make_user, browser, receiver: Receiver
) -> None:
    configured = api.put(
        "/platforms/gancho",
        json={
            "type": "webhook",
            "base_url": receiver.url,
            "credentials": {"secret": "gancho-s3cret"},
            "warehouses": {"main": "W1"},
        },
    )
    assert configured.status_code == 200, configured.text
    move(api, "RETRY-1", "4")
    make_user("operadora", "admin")
    sign_in(browser, console, "operadora")
    browser.get(f"{console.url}/ui/platforms/gancho")
    failed = "#failed-list tr[data-subject='RETRY-1']"
    # The refusal (400) fails the delivery at once; the open page shows it by itself.
    wait_for(browser, lambda d: "400" in text_of(d, failed))
    assert text_of(browser, "#failed") != "0"

    receiver.status = 204
    browser.find_element(By.ID, "retry").click()
    wait_for(browser, lambda d: "will be sent again" in text_of(d, ".notice"))
    wait_for(browser, lambda d: text_of(d, "#failed") == "0" and text_of(d, "#sent") != "0")
    assert not browser.find_elements(By.CSS_SELECTOR, failed)
    sent = [m for m in receiver.received if m.get("sku") == "RETRY-1"]
    assert sent
    assert (sent[-1]["quantity"], sent[-1]["warehouse"]) in (("4", "W1"), (4, "W1"))

    browser.get(f"{console.url}/ui/platforms")
    wait_for(browser, lambda d: text_of(d, "tr[data-platform=gancho] .failed-count") == "0")


def test_an_admin_edits_a_platform_and_its_credentials_are_never_shown(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    configured = api.put(
        "/platforms/vitrine",
        json={
            "type": "webhook",
            "credentials": {"secret": "vitrine-s3cret"},
            "carriers": {"PAC": "pac"},
            "skus": {"A-1": "9001"},
        },
    )
    assert configured.status_code == 200, configured.text
    make_user("config", "admin")
    sign_in(browser, console, "config")
    browser.get(f"{console.url}/ui/platforms/vitrine")
    wait_for(browser, lambda d: d.find_elements(By.ID, "settings"))
    assert "vitrine-s3cret" not in browser.page_source
    assert unlabelled(browser) == []
    assert "(stored)" in browser.find_element(By.CSS_SELECTOR, "label[for=cred-1]").text
    Select(browser.find_element(By.ID, "import_from")).select_by_value("payment_confirmed")
    browser.find_element(By.ID, "wh-l-1").send_keys("main")
    browser.find_element(By.ID, "wh-p-1").send_keys("1_1")
    browser.find_element(By.ID, "ca-n-2").send_keys("SEDEX 10")
    browser.find_element(By.ID, "ca-l-2").send_keys("sedex")
    browser.find_element(By.ID, "settings").submit()  # the secret's field left empty
    wait_for(browser, lambda d: "Settings saved" in text_of(d, ".notice"))
    assert "vitrine-s3cret" not in browser.page_source
    stored = api.get("/platforms/vitrine").json()
    assert stored["import_from"] == "payment_confirmed"
    assert stored["warehouses"] == {"main": "1_1"}
    assert stored["carriers"] == {"PAC": "pac", "SEDEX 10": "sedex"}
    assert stored["skus"] == {"A-1": "9001"}  # not on the form: kept
    assert stored["credentials"] == ["secret"]  # the empty field kept it

    # A refused setting shows the problem and keeps what was typed.
    browser.find_element(By.ID, "base_url").send_keys("http://example.com/hook")
    browser.find_element(By.ID, "settings").submit()
    wait_for(browser, lambda d: "https" in text_of(d, ".problem"))
    assert browser.find_element(By.ID, "base_url").get_attribute("value") == (
        "http://example.com/hook"
    )
    assert api.get("/platforms/vitrine").json()["base_url"] is None

    # At a phone's width nothing but a table's own scroller is wider than the screen.
    browser.set_window_size(390, 900)
    for path in ("/ui/platforms/vitrine", "/ui/platforms", "/ui/orders"):
        browser.get(f"{console.url}{path}")
        wait_for(browser, lambda d: d.find_elements(By.TAG_NAME, "h1"))
        assert not wider_than_the_window(browser), path


def test_a_read_user_sees_no_form_on_orders_and_platforms_and_its_posts_get_403(
    console: Server, api: httpx.Client, make_user, browser
) -> None:
    api.put("/platforms/leitura", json={"type": "webhook", "carriers": {"PAC": "pac"}})
    place(api, "leitura", "ro-1", "Braspress", "RO-1")
    make_user("so-olha", "read")
    sign_in(browser, console, "so-olha")
    for path in (
        "/ui/orders",
        "/ui/orders?held=1",
        "/ui/orders/leitura/ro-1",
        "/ui/platforms",
        "/ui/platforms/leitura",
    ):
        browser.get(f"{console.url}{path}")
        wait_for(browser, lambda d: d.find_elements(By.TAG_NAME, "h1"))
        # Signing out is the only post a reader may make.
        assert post_forms(browser) == ["sign-out"], path
        assert unlabelled(browser) == [], path
    wait_for(browser, lambda d: d.find_elements(By.LINK_TEXT, "ro-1"))  # held, listed
    csrf = browser.find_element(By.NAME, "csrf").get_attribute("value")
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    with httpx.Client(base_url=console.url, cookies=cookies) as client:
        for path, data in (
            ("/ui/platforms/leitura/retry", {}),
            ("/ui/platforms/leitura", {"type": "webhook"}),
            ("/ui/platforms/leitura/carriers", {"carrier_name": "Braspress", "carrier": "bp"}),
        ):
            refused = client.post(path, data={"csrf": csrf, **data})
            assert refused.status_code == 403, (path, refused.text)
    assert api.get("/orders/leitura/ro-1").json()["blocked_reason"] is not None
    assert api.get("/platforms/leitura").json()["carriers"] == {"PAC": "pac"}
