"""Screenshots of the console's main pages at a desktop's width (1280 px) and a phone's
(390 px), in headless chromium, into docs/screenshots/. Starts its own server on PostgreSQL (a
fresh schema) and fills it with the seed's example and a few SKUs in every state.

    .venv/bin/python bench/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from append import DEFAULT_DATABASE_URL, movement, served  # the benches' library

PASSWORD = "screenshots 1"
PAGES = {
    "stock": "/ui/stock",
    "sku": "/ui/stock/CAMISETA-AZUL-M",
    "movements": "/ui/movements",
    "record": "/ui/record?sku=CAMISETA-AZUL-M",
    "orders": "/ui/orders",
    "platforms": "/ui/platforms",
    "imports": "/ui/imports",
    "scan": "/ui/scan",
    "counts": "/ui/counts",
    "users": "/ui/users",
}
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def seed(api: httpx.Client) -> None:
    api.post("/users", json={"name": "ana", "password": PASSWORD, "role": "admin"})
    api.put("/platforms/loja", json={"type": "webhook", "carriers": {"PAC": "pac"}})
    moves = [
        movement("m1", "CAMISETA-AZUL-M", 10),
        movement("m2", "CAMISETA-AZUL-G", 4),
        movement("m3", "CANECA-BRANCA", 1),
        movement("m4", "BONE-PRETO", 2),
    ]
    for body in moves:
        api.post("/movements", json=body).raise_for_status()
    api.put("/products/CAMISETA-AZUL-M", json={"name": "Camiseta azul, tamanho M"})
    api.put("/products/CANECA-BRANCA", json={"name": "Caneca branca 300 ml"})
    for order_id, sku, quantity in (
        ("1001", "CAMISETA-AZUL-M", "5"),
        ("1002", "BONE-PRETO", "3"),
        ("1003", "CANECA-BRANCA", "1"),
    ):
        api.post(
            "/orders",
            json={
                "platform": "loja",
                "order_id": order_id,
                "status": "payment_confirmed",
                "carrier": "PAC",
                "items": [{"sku": sku, "quantity": quantity, "warehouse": "main"}],
            },
        )
    api.post("/orders/loja/1001/status", json={"status": "invoiced"})
    api.post(
        "/orders",
        json={
            "platform": "loja",
            "order_id": "1004",
            "status": "payment_confirmed",
            "carrier": "Jadlog",
            "items": [{"sku": "CAMISETA-AZUL-G", "quantity": "1"}],
        },
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with served(args.database_url, "screenshots") as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
            seed(api)
        time.sleep(2)  # the views and the dispatcher catch up
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--lang=pt-BR",
        ):
            options.add_argument(flag)
        options.add_experimental_option("prefs", {"intl.accept_languages": "pt-BR,pt"})
        service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
        driver = webdriver.Chrome(service=service, options=options)
        try:
            driver.get(f"{server.url}/ui/sign-in")
            driver.find_element("name", "name").send_keys("ana")
            field = driver.find_element("name", "password")
            field.send_keys(PASSWORD)
            field.submit()
            time.sleep(0.5)
            for width_name, (width, height) in WIDTHS.items():
                driver.set_window_size(width, height)
                for name, path in PAGES.items():
                    driver.get(f"{server.url}{path}")
                    time.sleep(0.3)
                    full = driver.execute_script("return document.body.scrollHeight")
                    driver.set_window_size(width, min(max(full + 40, height), 3000))
                    target = out / f"{name}-{width_name}.png"
                    driver.save_screenshot(str(target))
                    driver.set_window_size(width, height)
                    print(f"{target}")
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
