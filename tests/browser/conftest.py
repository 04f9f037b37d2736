"""A real browser (Debian's chromium, driven through its chromedriver by Selenium) against the
real server. Without chromium the browser tests are skipped, except in CI, where `.ci/run`
installs it and its absence fails the run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PASSWORD = "correct horse battery"


def _require_browser() -> None:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "chromium and chromium-driver (Debian packages) are not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def console(postgres_module_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module's browser tests, on PostgreSQL (production's database)."""
    _require_browser()
    running = start_server(postgres_module_url, tmp_path_factory.mktemp("console"))
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def api(console: Server) -> Iterator[httpx.Client]:
    with console.client() as client:
        yield client


@pytest.fixture(scope="module")
def make_user(api: httpx.Client) -> Callable[[str, str], str]:
    def make(name: str, role: str) -> str:
        response = api.post("/users", json={"name": name, "password": PASSWORD, "role": role})
        assert response.status_code == 201, response.text
        return name

    return make


@pytest.fixture
def browser() -> Iterator[object]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        # Without these, chromium keeps calling hosts this machine cannot reach.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        "--lang=en-US",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def sign_in(driver: object, server: Server, name: str, password: str = PASSWORD) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{server.url}/ui/sign-in")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "name").send_keys(name)  # type: ignore[attr-defined]
    field = driver.find_element(By.NAME, "password")  # type: ignore[attr-defined]
    field.send_keys(password)
    field.submit()
    wait_for(driver, lambda d: "/ui/sign-in" not in d.current_url)


def wait_for(driver: object, condition: Callable[[object], object], timeout: float = 20) -> object:
    """Generous deadlines: the benches measure the times; tests only wait."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def screenshots_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "docs" / "screenshots"
