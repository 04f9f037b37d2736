"""Every console page at a desktop's and a phone's width: every control has a label, nothing
overflows the phone's width but scrolling tables, every control is reached by the keyboard,
and nothing is loaded from another host."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import sign_in, wait_for
from tests.e2e.conftest import Server

PAGES = (
    "/ui/stock",
    "/ui/stock/LAYOUT-1",
    "/ui/movements",
    "/ui/record",
    "/ui/orders",
    "/ui/platforms",
    "/ui/imports",
    "/ui/scan",
    "/ui/counts",
    "/ui/users",
)

UNLABELLED = """
return Array.from(document.querySelectorAll('input, select, textarea, button'))
  .filter(e => e.type !== 'hidden')
  .filter(e => {
    if (e.tagName === 'BUTTON') return !(e.textContent.trim() || e.getAttribute('aria-label'));
    if (e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')) return false;
    if (e.labels && e.labels.length) return false;
    return true;
  })
  .map(e => e.outerHTML.slice(0, 120));
"""

OVERFLOWING = """
const width = document.documentElement.clientWidth;
return Array.from(document.querySelectorAll('body *'))
  .filter(e => !e.closest('.scroll'))
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
"""

FOREIGN = """
return Array.from(document.querySelectorAll('[src], link[href]'))
  .map(e => e.src || e.href)
  .filter(u => !u.startsWith(location.origin));
"""


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_is_labelled_fits_and_loads_nothing_from_elsewhere(
    console: Server, api: httpx.Client, make_user, browser, width: int
) -> None:
    api.post(
        "/movements",
        json={
            "movement_id": f"layout-{width}",
            "sku": "LAYOUT-1",
            "kind": "invoice",
            "quantity": "3",
        },
    )
    name = make_user(f"layout-admin-{width}", "admin")
    browser.set_window_size(width, 900)
    sign_in(browser, console, name)
    for path in PAGES:
        browser.get(f"{console.url}{path}")
        wait_for(browser, lambda d: d.execute_script("return document.readyState") == "complete")
        assert browser.find_elements(By.TAG_NAME, "h1"), path
        assert browser.execute_script(UNLABELLED) == [], path
        assert browser.execute_script(OVERFLOWING) == [], (path, width)
        assert browser.execute_script(FOREIGN) == [], path


def test_the_keyboard_reaches_every_control_of_the_record_form(
    console: Server, make_user, browser
) -> None:
    sign_in(browser, console, make_user("teclado", "write"))
    browser.get(f"{console.url}/ui/record")
    wanted = {"sku", "warehouse", "kind", "quantity", "reference", "note"}
    reached: set[str] = set()
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(60):
        focused = browser.switch_to.active_element
        reached.add(focused.get_attribute("name") or focused.tag_name)
        if wanted <= reached:
            break
        focused.send_keys(Keys.TAB)
    assert wanted <= reached, reached
