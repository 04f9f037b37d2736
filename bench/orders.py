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
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from append import (  # the sibling script is the library of the benches
    DEFAULT_DATABASE_URL,
    Server,
    cpu_meter,
    create_scratch_table,
    machine,
    movement,
    percentile,
    post_batch,
    raw_singles,
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
    schema = f"bench_orders_{run}"
    for line in machine(args.database_url):
        print(f"machine: {line}")
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    workdir = Path(tempfile.mkdtemp(prefix="ledger-bench-orders-"))
    server = Server(f"{args.database_url}?schema={schema}", workdir / "server.log", args.workers)
    failures: list[str] = []
    vtex = None
    try:
        server.start()
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            client.put(
                "/platforms/shop",
                json={"type": "webhook", "carriers": {"PAC": "pac"}},
            ).raise_for_status()
            if args.platform:
                # Every reservation then changes a quantity the dispatcher pushes, as in
                # production.
                vtex = Emulator(workdir / "emulator.log", official=False)
                connect_vtex(client, vtex)
        print(
            f"server: {' '.join(server.command[1:])}; platform: "
            f"{'vtex, warehouse main mapped' if vtex else 'none pushed to'}"
        )
        skus = [f"O{n:04d}" for n in range(SKUS)]
        post_batch(server, [movement(f"seed-{s}", s, 1_000_000) for s in skus])
        per_client = args.orders // args.clients
        latencies: list[float] = []
        lock = threading.Lock()

        def client_thread(index: int) -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                for n in range(per_client):
                    k = index * per_client + n
                    items = [
                        {"sku": skus[(k * 7 + j * 101) % SKUS], "quantity": "1"} for j in range(3)
                    ]
                    body = {
                        "platform": "shop",
                        "order_id": f"{run}-{k}",
                        "status": "payment_confirmed",
                        "carrier": "PAC",
                        "items": items,
                    }
                    start = time.perf_counter()
                    response = client.post("/orders", json=body)
                    elapsed = time.perf_counter() - start
                    with lock:
                        latencies.append(elapsed)
                        if response.status_code != 201:
                            failures.append(f"{response.status_code} {response.text[:200]}")

        cpu: list = []
        threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(args.clients)]
        with cpu_meter(server.pid, cpu):
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
        latencies.sort()
        rate = len(latencies) / wall
        print(
            f"orders of 3 items, {args.clients} clients: {rate:,.0f} orders/s, "
            f"p50 {1000 * percentile(latencies, 50):.1f} ms, "
            f"p99 {1000 * percentile(latencies, 99):.1f} ms "
            f"({len(latencies)} orders in {wall:.2f}s)"
        )
        for use in cpu:
            print(f"  cpu: {use.describe()}")
        if failures:
            print(f"failures: {len(failures)}, e.g. {failures[0]}")
        server.stop()  # it must not compete with the baseline
        if vtex is not None:
            vtex.close()
            vtex = None
        table = create_scratch_table(args.database_url, schema)
        raw = raw_singles(
            args.database_url, table, os.urandom(300), len(latencies), args.clients, cpu
        )
        print(
            f"raw PostgreSQL, same run: {raw.label}: {raw.rate:,.0f} commits/s, "
            f"p50 {raw.p50_ms:.2f} ms, p99 {raw.p99_ms:.2f} ms; orders / raw commits = "
            f"{rate / raw.rate:.2f}"
        )
        print(f"floor {FLOOR} orders/s: {'met' if rate >= FLOOR else 'NOT met'}")
    finally:
        server.stop()
        if vtex is not None:
            vtex.close()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        print(f"schema {schema} dropped; server stopped")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
