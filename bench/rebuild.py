"""Benchmark the read models on PostgreSQL: rebuild throughput and memory, report page latency,
and projection lag under a steady stream of movements.

1. Loads movements over SKUs in batches of 10,000 (in process, untimed; occurred_at spread over
   30 days), first ``--small`` of them, then up to ``--movements``.
2. After each load, times ``ledger rebuild`` (all views) as a separate process and reports its
   events/s and peak RSS: memory should not grow with the number of events.
3. Starts ``ledger serve`` and times 50-row ``GET /movements`` pages filtered by SKU and by a
   one-day date range (p50/p99 over ``--queries`` requests each, client side, over HTTP).
4. Appends ``--rate`` movements/s over HTTP (batches of 10 from 4 paced clients) for
   ``--seconds`` and measures each view's lag: from a write's response to the first moment
   (polled every 5 ms) its view includes it.

    .venv/bin/python bench/rebuild.py [--movements 1000000] [--skus 10000] [--small 50000]
        [--rate 500] [--seconds 30] [--queries 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from append import DEFAULT_DATABASE_URL, Server, machine, percentile  # the benches' library

SCHEMA = "bench_rebuild"
T0 = datetime(2026, 10, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
VIEWS = ("stock_levels", "movement_report", "order_list", "publisher")
FLOORS = "floors: rebuild >= 20,000 events/s; report page p99 < 50 ms; lag p99 < 1 s"


def reset_schema(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))


def load(url: str, start: int, stop: int, total: int, skus: int) -> None:
    from api.settings import Settings
    from api.wiring import build
    from ledger.movements import MovementRequest

    container = build(Settings(database_url=url))
    try:
        step = SPAN / total
        for first in range(start, stop, 10_000):
            rows = [
                MovementRequest.parse(
                    {
                        "movement_id": f"m{i}",
                        "sku": f"SKU-{i % skus:05d}",
                        # Every tenth round over the SKUs is a round of scans of -1.
                        "kind": "scan" if (i // skus) % 10 == 9 else "invoice",
                        "quantity": "-1" if (i // skus) % 10 == 9 else "5",
                        "reference": f"NF {i // 3}",
                        "occurred_at": (T0 + step * i).isoformat(),
                    }
                )
                for i in range(first, min(first + 10_000, stop))
            ]
            container.app.record_movements(rows, recorded_by="bench")
            print(f"\r  loaded {min(first + 10_000, stop):,} movements", end="", flush=True)
        print()
    finally:
        container.close()


def count_events(conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        query = sql.SQL("SELECT max(notification_id) FROM {}.ledger_events").format(
            sql.Identifier(SCHEMA)
        )
        return conn.execute(query).fetchone()[0] or 0


def timed_rebuild(url: str) -> tuple[float, int]:
    """Run ``ledger rebuild`` in its own process; its wall time and peak RSS in MiB."""
    code = (
        "import resource, sys\n"
        "from api.cli import cli\n"
        "try:\n"
        "    cli(['rebuild'], standalone_mode=False)\n"
        "finally:\n"
        "    print('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " file=sys.stderr)\n"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "LEDGER_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    kib = int(done.stderr.rsplit("peak_rss_kib", 1)[1].split()[0])
    return elapsed, kib // 1024


def report_latency(server: Server, skus: int, queries: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"by SKU": [], "by one-day range": []}
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        client.get("/movements", params={"limit": 50})  # connections and caches warm
        for _ in range(queries):
            params = {"sku": f"SKU-{random.randrange(skus):05d}", "limit": 50}
            start = time.perf_counter()
            response = client.get("/movements", params=params)
            timings["by SKU"].append(time.perf_counter() - start)
            if response.status_code != 200 or not response.json()["items"]:
                raise RuntimeError(f"unexpected report answer: {response.text}")
            day = T0 + timedelta(days=random.uniform(0, 29))
            params = {
                "since": day.isoformat(),
                "until": (day + timedelta(days=1)).isoformat(),
                "limit": 50,
            }
            start = time.perf_counter()
            response = client.get("/movements", params=params)
            timings["by one-day range"].append(time.perf_counter() - start)
            assert response.status_code == 200
            assert len(response.json()["items"]) == 50
    return timings


def lag_under_load(
    server: Server, conninfo: str, rate: int, seconds: float, skus: int
) -> tuple[float, dict[str, list[float]]]:
    writes: list[tuple[int, float]] = []
    samples: list[tuple[float, tuple[int, ...]]] = []
    stop = threading.Event()
    query = sql.SQL(", ").join(
        sql.SQL("(SELECT notification_id FROM {}.{} WHERE application_name = 'Ledger')").format(
            sql.Identifier(SCHEMA), sql.Identifier(f"{view}_tracking")
        )
        for view in VIEWS
    )

    def sample() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            statement = sql.SQL("SELECT ") + query
            while not stop.is_set():
                row = conn.execute(statement).fetchone()
                samples.append((time.perf_counter(), tuple(p or 0 for p in row)))
                time.sleep(0.005)

    # Batches of ten, paced: 2 cores cannot also serve 500 single POSTs/s while running the
    # projections and this client (singles peak near 700/s with nothing else running).
    # A running server has its stocks in its cache; a cold one loads each stock's history
    # on first use (about 100 events each here), which is the write path's cost, not lag.
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
        for first in range(0, skus, 1_000):
            rows = [
                {
                    "movement_id": f"warm-{i}",
                    "sku": f"SKU-{i:05d}",
                    "kind": "invoice",
                    "quantity": "1",
                }
                for i in range(first, min(first + 1_000, skus))
            ]
            client.post("/movements/batch", json={"movements": rows}).raise_for_status()
    time.sleep(2)
    clients, batch = 4, 10
    interval = clients * batch / rate
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def write(client_no: int) -> None:
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            n = 0
            next_at = time.perf_counter() + client_no * interval / clients
            while next_at < deadline:
                time.sleep(max(0.0, next_at - time.perf_counter()))
                n += 1
                rows = [
                    {
                        "movement_id": f"lag-{client_no}-{n}-{k}",
                        "sku": f"SKU-{random.randrange(skus):05d}",
                        "kind": "invoice",
                        "quantity": "1",
                    }
                    for k in range(batch)
                ]
                response = client.post("/movements/batch", json={"movements": rows})
                done = time.perf_counter()
                if response.status_code != 201:
                    raise RuntimeError(response.text)
                top = max(r["position"] for r in response.json()["results"])
                with lock:
                    writes.extend((top, done) for _ in range(batch))
                next_at += interval

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=write, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    time.sleep(2)
    stop.set()
    sampler.join()
    lags: dict[str, list[float]] = {}
    for index, view in enumerate(VIEWS):
        per_write = []
        for position, done in writes:
            seen = next((t for t, positions in samples if positions[index] >= position), None)
            if seen is not None:
                per_write.append(max(0.0, seen - done))
        lags[view] = sorted(per_write)
    return len(writes) / elapsed, lags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--database-url", default=os.environ.get("LEDGER_BENCH_URL", DEFAULT_DATABASE_URL)
    )
    args = parser.parse_args()
    conninfo = args.database_url
    url = f"{conninfo}?schema={SCHEMA}"
    print("\n".join(machine(conninfo)))
    reset_schema(conninfo)
    rows = []
    loaded = 0
    try:
        for target in (args.small, args.movements):
            print(f"loading up to {target:,} movements over {args.skus:,} SKUs")
            load(url, loaded, target, args.movements, args.skus)
            loaded = target
            events = count_events(conninfo)
            elapsed, rss = timed_rebuild(url)
            rows.append((target, events, elapsed, events / elapsed, rss))
            print(
                f"  ledger rebuild: {events:,} events in {elapsed:.1f} s = "
                f"{events / elapsed:,.0f} events/s, peak RSS {rss} MiB"
            )
        with tempfile.TemporaryDirectory() as folder:
            server = Server(url, Path(folder) / "server.log")
            server.start()
            try:
                timings = report_latency(server, args.skus, args.queries)
                achieved, lags = lag_under_load(
                    server, conninfo, args.rate, args.seconds, args.skus
                )
            finally:
                server.stop()
    finally:
        reset_schema(conninfo)
    print(f"\n{FLOORS}")
    print("\n| movements | events | rebuild (s) | events/s | peak RSS (MiB) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for target, events, elapsed, rate, rss in rows:
        print(f"| {target:,} | {events:,} | {elapsed:.1f} | {rate:,.0f} | {rss} |")
    print("\n| 50-row report page | p50 (ms) | p99 (ms) | max (ms) |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in timings.items():
        values.sort()
        print(
            f"| {name} | {percentile(values, 50) * 1000:.1f} | "
            f"{percentile(values, 99) * 1000:.1f} | {values[-1] * 1000:.1f} |"
        )
    print(f"\nlag at {achieved:,.0f} movements/s appended ({args.rate}/s asked), over HTTP:")
    print("| view | p50 (ms) | p99 (ms) | max (ms) |")
    print("| --- | ---: | ---: | ---: |")
    for view, values in lags.items():
        print(
            f"| {view} | {percentile(values, 50) * 1000:.0f} | "
            f"{percentile(values, 99) * 1000:.0f} | {values[-1] * 1000:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
