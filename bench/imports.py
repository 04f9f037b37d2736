"""Benchmark a spreadsheet import through HTTP: a 50,000-row XLSX previewed, then committed, on
PostgreSQL (the real server, a fresh schema), next to a batch of the same rows by
``POST /movements/batch`` in the same run.

    .venv/bin/python bench/imports.py [--rows 50000] [--workers N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
import time
from pathlib import Path

import httpx
import xlsxwriter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from append import (  # the sibling script is the library of the benches
    DEFAULT_DATABASE_URL,
    cpu_meter,
    machine,
    post_batch,
    served,
)


def workbook(rows: int, prefix: str, names: bool = True) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    headers = ("Código", "Depósito", "Quantidade", "Descrição")
    for col, header in enumerate(headers if names else headers[:3]):
        sheet.write(0, col, header)
    for n in range(1, rows + 1):
        sheet.write(n, 0, f"{prefix}{n:06d}")
        sheet.write(n, 1, "main")
        sheet.write(n, 2, n % 97 + 1)
        if names:
            sheet.write(n, 3, f"Produto {n}")
    book.close()
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--no-names",
        dest="names",
        action="store_false",
        help="leave out the name column (a commit then records movements only)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    for line in machine(args.database_url):
        print(f"machine: {line}")
    run = secrets.token_hex(3)
    with served(args.database_url, "imports", args.workers) as server:
        content = workbook(args.rows, "X", args.names)
        print(f"file: {args.rows:,} rows, {len(content) / 1e6:.1f} MB XLSX")
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
            cpu: list = []
            with cpu_meter(server.pid, cpu):
                started = time.perf_counter()
                preview = client.post(
                    "/imports", files={"file": ("stock.xlsx", content)}, data={"mode": "add"}
                )
                preview_s = time.perf_counter() - started
            preview.raise_for_status()
            body = preview.json()
            print(
                f"preview: {preview_s:.2f} s ({body['valid']:,} valid rows, "
                f"{body['changes_total']:,} changes); {cpu[-1].describe()}"
            )
            with cpu_meter(server.pid, cpu):
                started = time.perf_counter()
                commit = client.post(f"/imports/{body['import_id']}/commit")
                commit_s = time.perf_counter() - started
            commit.raise_for_status()
            recorded = commit.json()["recorded"]
            print(
                f"commit: {commit_s:.2f} s, {recorded / commit_s:,.0f} movements/s "
                f"({recorded:,} recorded); {cpu[-1].describe()}"
            )
        rows = [
            {
                "movement_id": f"batch-{run}-{n}",
                "sku": f"Y{n:06d}",
                "kind": "spreadsheet",
                "quantity": str(n % 97 + 1),
            }
            for n in range(1, args.rows + 1)
        ]
        with cpu_meter(server.pid, cpu):
            elapsed, response, _ = post_batch(server, rows)
        response.raise_for_status()
        print(
            f"same run, POST /movements/batch of {args.rows:,}: {elapsed:.2f} s, "
            f"{args.rows / elapsed:,.0f} movements/s; {cpu[-1].describe()}"
        )
        print(f"preview under 10 s: {'met' if preview_s < 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
