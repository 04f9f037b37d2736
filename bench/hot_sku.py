"""Benchmark writes on a hot SKU: does a write cost more once the stock has a long history?

Starts the real server (``ledger serve``, every view, the dispatcher and the robots) on a fresh
PostgreSQL schema with the VTEX emulator connected and its warehouse mapped. For each history
size it gives a SKU that many events (un-timed batches of movements on that one SKU, then waits
for the views), and times, one client at a time:

- an order of one item on that SKU (``POST /orders``, payment confirmed: it reserves);
- a single movement on that SKU (``POST /movements``);
- a cancel of one of those orders (``POST /orders/{platform}/{id}/cancel``: it releases);
- the first order after the server restarted, when no process has the stock in memory.

Prints p50 and p99 per size, and each size's p50 against the fresh SKU's (the floor: at most 2x).

    .venv/bin/python bench/hot_sku.py [--sizes 0,20000,100000] [--samples 200]

Run against another checkout's code with ``PYTHONPATH=/path/to/checkout``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from append import (  # noqa: E402  # the sibling script is the library of the benches
    DEFAULT_DATABASE_URL,
    machine,
    percentile,
    post_batch,
    wait_for_views,
)
from publish_lag import connect_vtex, ledger_and_vtex  # noqa: E402

BATCH = 10_000
FLOOR_RATIO = 2.0


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def give_history(server, sku: str, events: int, run: str) -> None:
    """``events`` stock events on ``sku``: a large first receipt, then +1 movements."""
    rows = [
        {
            "movement_id": f"{run}-{sku}-{n}",
            "sku": sku,
            "kind": "purchase_order",
            "quantity": "1000000" if n == 0 else "1",
        }
        for n in range(max(events, 1))
    ]
    for start in range(0, len(rows), BATCH):
        _, response, _ = post_batch(server, rows[start : start + BATCH])
        if response.status_code != 201:
            raise RuntimeError(f"seeding failed: {response.status_code} {response.text[:300]}")


def order(client: httpx.Client, sku: str, order_id: str) -> float:
    body = {
        "platform": "shop",
        "order_id": order_id,
        "status": "payment_confirmed",
        "carrier": "PAC",
        "items": [{"sku": sku, "quantity": "1"}],
    }
    start = time.perf_counter()
    response = client.post("/orders", json=body)
    elapsed = time.perf_counter() - start
    if response.status_code != 201:
        raise RuntimeError(f"order: {response.status_code} {response.text[:300]}")
    return elapsed


def timed(client: httpx.Client, method: str, path: str, **kwargs) -> float:
    start = time.perf_counter()
    response = client.request(method, path, **kwargs)
    elapsed = time.perf_counter() - start
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_int_list, default=[0, 20_000, 100_000])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    for line in machine(args.database_url):
        print(f"machine: {line}")
    run = secrets.token_hex(3)
    name = f"hot_{run}"
    results: dict[int, dict[str, list[float]]] = {}
    with ledger_and_vtex(args.database_url, name) as (server, vtex):
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            connect_vtex(client, vtex)
            client.put(
                "/platforms/shop", json={"type": "webhook", "carriers": {"PAC": "pac"}}
            ).raise_for_status()
        skus = {size: f"HOT{size}-{run}" for size in args.sizes}
        for size, sku in skus.items():
            started = time.perf_counter()
            give_history(server, sku, size, run)
            print(f"{sku}: {max(size, 1):,} events in {time.perf_counter() - started:.1f}s")
        conninfo = args.database_url
        wait_for_views(server, conninfo, f"bench_{name}")
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            for size, sku in skus.items():
                figures: dict[str, list[float]] = {"order": [], "movement": [], "cancel": []}
                for n in range(args.samples):
                    figures["order"].append(order(client, sku, f"{run}-{size}-{n}"))
                for n in range(args.samples):
                    figures["movement"].append(
                        timed(
                            client,
                            "POST",
                            "/movements",
                            json={
                                "movement_id": f"{run}-{size}-single-{n}",
                                "sku": sku,
                                "kind": "manual",
                                "quantity": "1",
                            },
                        )
                    )
                for n in range(args.samples // 2):
                    figures["cancel"].append(
                        timed(client, "POST", f"/orders/shop/{run}-{size}-{n}/cancel")
                    )
                results[size] = figures
        # The first write after a restart: no process holds the stock in memory.
        server.stop()
        server.start()
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            for size, sku in skus.items():
                results[size]["order after restart"] = [order(client, sku, f"{run}-{size}-cold")]
    print()
    base = percentile(sorted(results[args.sizes[0]]["order"]), 50)
    print(f"{'events':>8} {'what':<22} {'p50 ms':>8} {'p99 ms':>8} {'p50 / fresh':>12}")
    for size in args.sizes:
        for what, values in results[size].items():
            values.sort()
            p50 = percentile(values, 50)
            p99 = percentile(values, 99)
            ratio = f"{p50 / base:.2f}x" if what == "order" else ""
            print(f"{size:>8,} {what:<22} {1000 * p50:>8.1f} {1000 * p99:>8.1f} {ratio:>12}")
    worst = max(percentile(results[s]["order"], 50) for s in args.sizes) / base
    print(
        f"floor: an order on the longest history <= {FLOOR_RATIO:g}x the fresh SKU's: "
        f"{'met' if worst <= FLOOR_RATIO else 'NOT met'} ({worst:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
