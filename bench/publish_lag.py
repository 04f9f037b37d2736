"""Benchmark the publish lag: from a movement's commit to VTEX (the emulator) receiving the
quantity it produced, at 200 movements/s over 1,000 SKUs for 60 s, on PostgreSQL.

Starts the VTEX emulator (its own process, checking every request against the project's own
description of VTEX's endpoints and, where they are found, VTEX's OpenAPI files) and the real
server (``ledger serve``, dispatcher inside) on a fresh schema; seeds every SKU with one
un-timed batch; then posts single movements (each takes 1 unit, so every movement gives its SKU a
quantity no other movement gives it) at a steady rate from a few clients. A movement counts as
delivered when the emulator accepts a stock update of its SKU with that quantity or a lower one
(a newer value replaces an older one on the way: newest wins). The clock starts when the
movement's request is sent, an upper bound of its commit. Prints p50/p99/max and requests sent
per movement; drops the schema at the end.

    .venv/bin/python bench/publish_lag.py [--rate 200] [--seconds 60] [--skus 1000]
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from append import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    Server,
    machine,
    percentile,
    post_batch,
)
from vtex import Emulator, connect_vtex  # noqa: E402

SEED = 1_000_000
FLOORS = {"p50": 1.0, "p99": 3.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="movements per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    for line in machine(args.database_url):
        print(f"machine: {line}")
    run = secrets.token_hex(3)
    with ledger_and_vtex(args.database_url, f"publish_{run}") as (server, vtex):
        return measure(server, vtex, args, run)


@contextmanager
def ledger_and_vtex(
    database_url: str, name: str, *, default_dispatch: bool = False
) -> Iterator[tuple[Server, Emulator]]:
    """``ledger serve`` on a fresh schema ``bench_<name>`` and the VTEX emulator, both started;
    both stopped and the schema dropped afterwards, whatever happens. ``default_dispatch``
    drops any ``LEDGER_DISPATCH_*`` setting of the shell, so that the defaults are measured."""
    schema = f"bench_{name}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    workdir = Path(tempfile.mkdtemp(prefix=f"ledger-bench-{name}-"))
    server = Server(f"{database_url}?schema={schema}", workdir / "server.log")
    if default_dispatch:
        for key in [k for k in server.env if k.startswith("LEDGER_DISPATCH_")]:
            del server.env[key]
    vtex = Emulator(workdir / "emulator.log")
    try:
        server.start()
        yield server, vtex
    finally:
        server.stop()
        vtex.close()
        print(f"logs: {workdir}")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def seed(server: Server, vtex: Emulator, skus: list[str], timeout: float = 600) -> bool:
    """Give every SKU ``SEED`` units in one batch and wait until the emulator shows them all."""
    rows = [
        {"movement_id": f"seed-{s}", "sku": s, "kind": "manual", "quantity": str(SEED)}
        for s in skus
    ]
    _, response, _ = post_batch(server, rows)
    response.raise_for_status()
    deadline = time.monotonic() + timeout
    while any(vtex.stocks().get(s) != SEED for s in skus):
        if time.monotonic() > deadline:
            print("the seed never reached the emulator", file=sys.stderr)
            return False
        time.sleep(0.5)
    return True


def measure(server: Server, vtex: Emulator, args: argparse.Namespace, run: str) -> int:
    headers = {"Authorization": f"Bearer {server.token}"}
    skus = [f"P{run}-{k:04d}" for k in range(args.skus)]
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        connect_vtex(client, vtex, rate_limit=1000)
    if not seed(server, vtex, skus):
        return 1
    updates_before = len(vtex.stock_updates())
    print(f"seeded {len(skus)} SKUs; now {args.rate:g} movements/s for {args.seconds:g} s")

    sent: list[tuple[str, int, float]] = []  # sku, quantity it produced, request start
    errors: list[str] = []
    lock = threading.Lock()
    total = int(args.rate * args.seconds)
    start = time.monotonic() + 0.5
    counter = iter(range(total))

    def client_loop() -> None:
        rng = random.Random()
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            for n in counter:
                due = start + n / args.rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                sku = skus[rng.randrange(len(skus))]
                began = time.time()
                response = client.post(
                    "/movements",
                    json={
                        "movement_id": f"m{run}-{n}",
                        "sku": sku,
                        "kind": "manual",
                        "quantity": "-1",
                    },
                )
                if response.status_code != 201:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    continue
                available = int(float(response.json()["available"]))
                with lock:
                    sent.append((sku, available, began))

    done = threading.Event()

    def monitor() -> None:
        # Where a lag builds up: in the publisher view, or in the dispatcher's queue.
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            while not done.wait(10):
                views = {v["name"]: v["lag"] for v in client.get("/views").json()["views"]}
                queue = client.get("/platforms/vtex/status").json()["deliveries"]
                print(
                    f"  publisher view lag {views.get('publisher')} events; deliveries "
                    f"pending {queue['pending']}, oldest {queue['oldest_pending_seconds']:.2f} s"
                )

    clients = [threading.Thread(target=client_loop) for _ in range(args.clients)]
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    done.set()
    wall = time.monotonic() - start
    achieved = len(sent) / wall

    # Wait for the last values, then match each movement with the first update that shows it.
    deadline = time.monotonic() + 60
    lowest: dict[str, int] = {}
    for sku, quantity, _ in sent:
        lowest[sku] = min(lowest.get(sku, SEED), quantity)
    while True:
        shown = vtex.stocks()
        if all(shown.get(s) == q for s, q in lowest.items()):
            break
        if time.monotonic() > deadline:
            print("the emulator never converged", file=sys.stderr)
            return 1
        time.sleep(0.2)
    updates = vtex.stock_updates()[updates_before:]
    by_sku: dict[str, list[tuple[float, int]]] = {}
    for update in updates:
        by_sku.setdefault(update["sku"], []).append((update["at"], update["quantity"]))
    lags = []
    for sku, quantity, began in sent:
        history = by_sku.get(sku, [])
        times = [at for at, _ in history]
        i = bisect.bisect_left(times, began)
        lag = next((at - began for at, q in history[i:] if q <= quantity), None)
        if lag is None:
            print(f"movement on {sku} to {quantity} never delivered", file=sys.stderr)
            return 1
        lags.append(lag)
    lags.sort()
    figures = {
        "p50": percentile(lags, 50),
        "p99": percentile(lags, 99),
        "max": lags[-1],
    }
    print(
        f"movements: {len(sent)} in {wall:.1f} s ({achieved:.0f}/s), errors: {len(errors)}"
        + (f" (first: {errors[0]})" if errors else "")
    )
    print(
        "commit -> emulator: "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in figures.items())
        + f"; stock updates: {len(updates)}, {len(updates) / max(len(sent), 1):.3f} per movement"
    )
    invalid = [r for r in vtex.requests() if not r.get("valid", True)]
    checks = vtex.http.get("/status").json()
    layers = "own description" + (" and VTEX's official schema" if checks["official"] else "")
    print(
        f"requests the emulator found invalid ({layers}): {len(invalid)}"
        + (f" (first: {invalid[0]})" if invalid else "")
    )
    below = all(figures[k] < floor for k, floor in FLOORS.items())
    print(f"floors p50 < 1 s and p99 < 3 s: {'met' if below else 'NOT met'}")
    return 0 if below and not errors and not invalid else 1


if __name__ == "__main__":
    raise SystemExit(main())
