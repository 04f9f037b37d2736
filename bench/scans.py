"""Benchmark scans (bipagem) through HTTP: 8 clients posting ``POST /scans`` of barcodes of a
pool of SKUs, on PostgreSQL (the real server, a fresh schema). Prints scans/s and p50/p99.

    .venv/bin/python bench/scans.py [--scans 4000] [--clients 8] [--workers N]
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
    machine,
    movement,
    percentile,
    post_batch,
)

SKUS = 300


def ean13(n: int) -> str:
    body = f"789{n:09d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    for line in machine(args.database_url):
        print(f"machine: {line}")
    run = secrets.token_hex(3)
    schema = f"bench_scans_{run}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    workdir = Path(tempfile.mkdtemp(prefix="ledger-bench-scans-"))
    server = Server(f"{args.database_url}?schema={schema}", workdir / "server.log", args.workers)
    failures: list[str] = []
    try:
        server.start()
        headers = {"Authorization": f"Bearer {server.token}"}
        skus = [f"S{n:04d}" for n in range(SKUS)]
        post_batch(server, [movement(f"seed-{s}", s, 1_000_000) for s in skus])
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            for n, sku in enumerate(skus):
                client.put(f"/barcodes/{ean13(n)}", json={"sku": sku}).raise_for_status()
        per_client = args.scans // args.clients
        latencies: list[float] = []
        lock = threading.Lock()

        def scanner(index: int) -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                for i in range(per_client):
                    k = index * per_client + i
                    body = {
                        "scan_id": f"{run}-{k}",
                        "barcode": ean13((k * 7) % SKUS),
                        "direction": "out",
                    }
                    start = time.perf_counter()
                    response = client.post("/scans", json=body)
                    elapsed = time.perf_counter() - start
                    with lock:
                        latencies.append(elapsed)
                        if response.status_code != 201:
                            failures.append(f"{response.status_code} {response.text[:200]}")

        cpu: list = []
        threads = [threading.Thread(target=scanner, args=(i,)) for i in range(args.clients)]
        with cpu_meter(server.pid, cpu):
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
        latencies.sort()
        print(
            f"scans, {args.clients} clients: {len(latencies) / wall:,.0f} scans/s, "
            f"p50 {1000 * percentile(latencies, 50):.1f} ms, "
            f"p99 {1000 * percentile(latencies, 99):.1f} ms ({len(latencies)} in {wall:.2f} s)"
        )
        print(f"  cpu: {cpu[-1].describe()}")
        if failures:
            print(f"failures: {len(failures)}, e.g. {failures[0]}")
    finally:
        server.stop()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        print(f"schema {schema} dropped; server stopped")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
