"""Benchmark scans (bipagem) through HTTP: 8 clients posting ``POST /scans`` of barcodes of a
pool of SKUs, on PostgreSQL (the real server, a fresh schema). Prints scans/s and p50/p99.

    .venv/bin/python bench/scans.py [--scans 4000] [--clients 8] [--workers N]
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
    machine,
    movement,
    post_batch,
    run_clients,
    served,
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
    with served(args.database_url, "scans", args.workers) as server:
        skus = [f"S{n:04d}" for n in range(SKUS)]
        post_batch(server, [movement(f"seed-{s}", s, 1_000_000) for s in skus])
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            for n, sku in enumerate(skus):
                client.put(f"/barcodes/{ean13(n)}", json={"sku": sku}).raise_for_status()

        def scan(client: httpx.Client, k: int) -> httpx.Response:
            body = {"scan_id": f"{run}-{k}", "barcode": ean13((k * 7) % SKUS), "direction": "out"}
            return client.post("/scans", json=body)

        result = run_clients(server, args.clients, args.scans // args.clients, scan)
        print(f"scans, {args.clients} clients: {result.describe('scans')}")
        print(f"  cpu: {result.cpu.describe()}")
        if result.failures:
            print(f"failures: {len(result.failures)}, e.g. {result.failures[0]}")
    return 1 if result.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
