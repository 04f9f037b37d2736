"""Benchmark importing orders through HTTP: orders of 3 items, 8 clients, on PostgreSQL.

Starts the real server (``ledger serve``) on a fresh schema, configures a platform, seeds the
stock of a pool of SKUs with one un-timed batch, then times ``POST /orders`` (each order new,
3 items drawn from the pool, status payment_confirmed, so every import reserves 3 stocks in the
same transaction as the order). Prints orders/s and p50/p99 latency; drops the schema at the end.

    .venv/bin/python bench/orders.py [--orders 3000] [--clients 8] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from append import (  # the sibling script is the library of the benches
    DEFAULT_DATABASE_URL,
    create_scratch_table,
    machine,
    movement,
    post_batch,
    raw_singles,
    run_clients,
    served,
)
from vtex import Emulator, connect_vtex

SKUS = 300
FLOOR = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="API processes (default: the server's own, one per CPU on PostgreSQL)",
    )
    parser.add_argument(
        "--no-platform",
        dest="platform",
        action="store_false",
        help="do not connect the VTEX emulator with the warehouse mapped",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    run = secrets.token_hex(3)
    for line in machine(args.database_url):
        print(f"machine: {line}")
    vtex = None
    with served(args.database_url, "orders", args.workers) as server:
        try:
            headers = {"Authorization": f"Bearer {server.token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                client.put(
                    "/platforms/shop",
                    json={"type": "webhook", "carriers": {"PAC": "pac"}},
                ).raise_for_status()
                if args.platform:
                    # Every reservation then changes a quantity the dispatcher pushes, as in
                    # production.
                    vtex = Emulator(server.log_path.with_name("emulator.log"), official=False)
                    connect_vtex(client, vtex)
            print(
                f"server: {' '.join(server.command[1:])}; platform: "
                f"{'vtex, warehouse main mapped' if vtex else 'none pushed to'}"
            )
            skus = [f"O{n:04d}" for n in range(SKUS)]
            post_batch(server, [movement(f"seed-{s}", s, 1_000_000) for s in skus])

            def order(client: httpx.Client, k: int) -> httpx.Response:
                items = [{"sku": skus[(k * 7 + j * 101) % SKUS], "quantity": "1"} for j in range(3)]
                body = {
                    "platform": "shop",
                    "order_id": f"{run}-{k}",
                    "status": "payment_confirmed",
                    "carrier": "PAC",
                    "items": items,
                }
                return client.post("/orders", json=body)

            result = run_clients(server, args.clients, args.orders // args.clients, order)
        finally:
            server.stop()  # it must not compete with the baseline
            if vtex is not None:
                vtex.close()
        print(f"orders of 3 items, {args.clients} clients: {result.describe('orders')}")
        print(f"  cpu: {result.cpu.describe()}")
        if result.failures:
            print(f"failures: {len(result.failures)}, e.g. {result.failures[0]}")
        table = create_scratch_table(args.database_url, server.schema or "")
        raw = raw_singles(
            args.database_url, table, os.urandom(300), len(result.latencies), args.clients, []
        )
        print(
            f"raw PostgreSQL, same run: {raw.label}: {raw.rate:,.0f} commits/s, "
            f"p50 {raw.p50_ms:.2f} ms, p99 {raw.p99_ms:.2f} ms; orders / raw commits = "
            f"{result.rate / raw.rate:.2f}"
        )
        print(f"floor {FLOOR} orders/s: {'met' if result.rate >= FLOOR else 'NOT met'}")
    return 1 if result.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
