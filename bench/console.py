"""Benchmark the operator console on PostgreSQL (the real server, a fresh schema), as a signed-in
person's browser would load it:

- a SKU's page when the SKU has 100,000 movements (``--history``);
- the stock list's first page with 100,000 SKUs (``--skus``): plain, sorted by available,
  searched by SKU prefix and by product name;
- the time from a movement (``POST /movements``) to its appearance on an open SKU page in
  headless chromium (the page's own one-second refresh), when chromium is installed.

Prints p50/p99 of the server's answer as the client sees it (loopback; an upper bound of the
server's time).

    .venv/bin/python bench/console.py [--history 100000] [--skus 100000] [--reads 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from append import (  # the sibling script is the library of the benches
    DEFAULT_DATABASE_URL,
    machine,
    movement,
    percentile,
    post_batch,
    served,
    wait_for_views,
)

PASSWORD = "bench password 1"
BATCH = 10_000


def timed_gets(client: httpx.Client, path: str, reads: int, **params: str) -> list[float]:
    client.get(path, params=params).raise_for_status()  # warm
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        answer = client.get(path, params=params)
        times.append(time.perf_counter() - start)
        answer.raise_for_status()
    return sorted(times)


def describe(what: str, times: list[float]) -> str:
    return (
        f"{what}: p50 {1000 * percentile(times, 50):.1f} ms, "
        f"p99 {1000 * percentile(times, 99):.1f} ms ({len(times)} reads)"
    )


def load(server, movements: list[dict]) -> None:
    for start in range(0, len(movements), BATCH):
        _, answer, _ = post_batch(server, movements[start : start + BATCH])
        answer.raise_for_status()


def signed_in(server) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers) as api:
        api.post("/users", json={"name": "bench", "password": PASSWORD, "role": "admin"})
    browser = httpx.Client(base_url=server.url, timeout=60)
    answer = browser.post("/ui/sign-in", data={"name": "bench", "password": PASSWORD})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")
    return browser


def live_latency(server, samples: int) -> list[float] | None:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    headers = {"Authorization": f"Bearer {server.token}"}
    times = []
    try:
        driver.get(f"{server.url}/ui/sign-in")
        driver.find_element("name", "name").send_keys("bench")
        field = driver.find_element("name", "password")
        field.send_keys(PASSWORD)
        field.submit()
        with httpx.Client(base_url=server.url, headers=headers) as api:
            api.post("/movements", json=movement("live-0", "LIVE", 1)).raise_for_status()
            driver.get(f"{server.url}/ui/stock/LIVE")
            time.sleep(1.5)
            for n in range(1, samples + 1):
                start = time.perf_counter()
                api.post("/movements", json=movement(f"live-{n}", "LIVE", 1)).raise_for_status()
                expected = str(n + 1)
                while True:
                    shown = driver.execute_script(
                        "const c = document.querySelector('tr[data-warehouse=main] .physical');"
                        "return c ? c.textContent : null"
                    )
                    if shown == expected:
                        break
                    if time.perf_counter() - start > 30:
                        raise RuntimeError("the page did not show the movement within 30 s")
                    time.sleep(0.005)
                times.append(time.perf_counter() - start)
                # Land the next write at another point of the page's one-second cycle.
                time.sleep(0.137 * (n % 7))
    finally:
        driver.quit()
    return sorted(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--live-samples", type=int, default=30)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    for line in machine(args.database_url):
        print(f"machine: {line}")
    with served(args.database_url, "console") as server:
        run = uuid.uuid4().hex[:6]
        start = time.perf_counter()
        load(server, [movement(f"{run}-h{n}", "HOT", 1 + n % 3) for n in range(args.history)])
        load(server, [movement(f"{run}-s{n}", f"SKU{n:06d}", 1 + n % 5) for n in range(args.skus)])
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
            for n in range(0, args.skus, max(1, args.skus // 1000)):
                api.put(f"/products/SKU{n:06d}", json={"name": f"Camiseta Azul {n}"})
        waited = wait_for_views(server, args.database_url, server.schema)
        print(
            f"loaded {args.history:,} movements on one SKU and {args.skus:,} SKUs in "
            f"{time.perf_counter() - start:.0f} s (views caught up {waited:.1f} s later)"
        )
        browser = signed_in(server)
        print(
            describe(
                f"SKU page, {args.history:,} movements",
                timed_gets(browser, "/ui/stock/HOT", args.reads),
            )
        )
        print(
            describe(
                "its live part (fetched every second)",
                timed_gets(browser, "/ui/stock/HOT/live", args.reads),
            )
        )
        print(
            describe(
                f"stock list, {args.skus:,} SKUs, first page",
                timed_gets(browser, "/ui/stock", args.reads),
            )
        )
        print(
            describe(
                "  sorted by available, lowest first",
                timed_gets(browser, "/ui/stock", args.reads, sort="available_asc"),
            )
        )
        print(
            describe(
                "  SKU prefix 'SKU0999'", timed_gets(browser, "/ui/stock", args.reads, q="SKU0999")
            )
        )
        print(
            describe(
                "  product name 'camiseta azul'",
                timed_gets(browser, "/ui/stock", args.reads, q="camiseta azul"),
            )
        )
        print(describe("  its live part", timed_gets(browser, "/ui/stock/rows", args.reads)))
        latencies = live_latency(server, args.live_samples)
        if latencies is None:
            print("movement to an open page: chromium not installed, skipped")
        else:
            print(describe("movement to its appearance on an open SKU page", latencies))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
