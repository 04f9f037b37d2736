"""Benchmark GET /stock/{sku}?at= on one SKU whose history grows to 100,000 events, on PostgreSQL.

Starts the real server (``ledger serve``) on a fresh schema and records movements of one SKU
in one warehouse through ``POST /movements/batch`` (batches of 10,000, un-timed), dated a
minute apart in recording order except for a share that is backdated (dated at a random
earlier moment of the history, as late entries are). At each size (1,000, 20,000 and 100,000
events by default) it waits for the views to read everything, then times ``GET
/stock/{sku}?at=`` at moments drawn at random over the history (and a little before and after
it), one client, one request at a time: p50, p99 and max. Before measuring, the schema's tables
are analyzed (``--no-analyze`` not to), as autovacuum would do in production. Every answer is
checked against the sum the bench computes from the movements it sent. The schema is dropped at
the end.

    .venv/bin/python bench/at_query.py [--sizes 1000,20000,100000] [--requests 500]
        [--backdated 0.01] [--database-url URL] [--code PATH] [--no-analyze] [--keep-schema]

``--code PATH`` runs the server from another checkout of the ledger (its ``api``, ``ledger``,
``projections`` and migrations, through ``PYTHONPATH``), to compare with older code::

    git archive 04d4b5b | tar -x -C /tmp/base     # the code before the running maximum
    .venv/bin/python bench/at_query.py --code /tmp/base --requests 20
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from append import (  # the sibling script is the library of the benches
    DEFAULT_DATABASE_URL,
    Server,
    _int_list,
    cpu_meter,
    machine,
    percentile,
    post_batch,
    wait_for_views,
)

BATCH = 10_000
START = datetime(2025, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=1)
FLOOR_MS = 50.0


class History:
    """The movements sent, and what they add up to at any moment (the bench's own oracle)."""

    def __init__(self, sku: str, backdated: float, seed: int) -> None:
        self.sku = sku
        self.backdated = backdated
        self.random = random.Random(seed)
        self.dates: list[datetime] = []
        self.quantities: list[int] = []
        self._sorted: tuple[list[datetime], list[int]] | None = None

    def next_movements(self, count: int) -> list[dict[str, str]]:
        out = []
        for _ in range(count):
            n = len(self.dates)
            if n and self.random.random() < self.backdated:
                date = START + STEP * self.random.randrange(n) + timedelta(seconds=30)
            else:
                date = START + STEP * n
            quantity = self.random.randint(1, 9)
            self.dates.append(date)
            self.quantities.append(quantity)
            out.append(
                {
                    "movement_id": f"{self.sku}-{n}",
                    "sku": self.sku,
                    "warehouse": "main",
                    "kind": "purchase_order",
                    "quantity": str(quantity),
                    "occurred_at": date.isoformat(),
                    "reference": "bench",
                }
            )
        self._sorted = None
        return out

    def backdated_count(self) -> int:
        """Movements dated before an earlier one (the rows the view flags as backdated)."""
        latest = None
        count = 0
        for date in self.dates:
            if latest is not None and date < latest:
                count += 1
            else:
                latest = date
        return count

    def physical_at(self, at: datetime) -> Decimal:
        if self._sorted is None:
            pairs = sorted(zip(self.dates, self.quantities, strict=True))
            self._sorted = ([d for d, _ in pairs], list(accumulate(q for _, q in pairs)))
        dates, totals = self._sorted
        index = bisect.bisect_right(dates, at)
        return Decimal(totals[index - 1] if index else 0)

    def random_moment(self) -> datetime:
        span = STEP * (len(self.dates) + 60)
        return START - STEP * 30 + span * self.random.random()


def measure(server: Server, history: History, requests: int) -> tuple[list[float], int]:
    """Latencies (s) of ``requests`` reads at random moments; how many answers were wrong."""
    headers = {"Authorization": f"Bearer {server.token}"}
    moments = [history.random_moment() for _ in range(requests)]
    latencies, wrong = [], 0
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
        client.get(f"/stock/{history.sku}").raise_for_status()  # connection and pool warm
        for moment in moments:
            at = moment.isoformat().replace("+00:00", "Z")
            start = time.perf_counter()
            response = client.get(f"/stock/{history.sku}", params={"at": at})
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                wrong += 1
                print(f"    HTTP {response.status_code} at {at}: {response.text[:200]}")
            elif Decimal(response.json()["physical"]) != history.physical_at(moment):
                wrong += 1
                if wrong <= 3:
                    print(
                        f"    wrong at {at}: {response.json()['physical']}, "
                        f"expected {history.physical_at(moment)}"
                    )
    return sorted(latencies), wrong


def analyze(conninfo: str, schema: str) -> None:
    """Give the planner statistics of the freshly seeded tables, as autovacuum does within a
    minute of such a load (this machine's test server runs with autovacuum off: without
    statistics, PostgreSQL reads the event store's newest notifications with a parallel scan
    of the whole table in ``projections/current.py``, on every GET /stock/{sku})."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            conn.execute(
                sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )


def command_for(checkout: Path, command: list[str]) -> list[str]:
    """``command`` without the options the checkout's ``ledger serve`` does not know yet
    (``--workers`` came after the code this bench was first compared with)."""
    cli = (checkout / "api" / "cli.py").read_text()
    if "--workers" in command and "--workers" not in cli:
        at = command.index("--workers")
        command = command[:at] + command[at + 2 :]
    return command


def describe_code(path: Path | None) -> str:
    where = path or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "not a git checkout"
    return f"{where} ({commit})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=_int_list,
        default=[1_000, 20_000, 100_000],
        help="Events of the SKU at which to measure, ascending (default 1000,20000,100000).",
    )
    parser.add_argument("--requests", type=int, default=500, help="Reads per size (500).")
    parser.add_argument(
        "--backdated",
        type=float,
        default=0.01,
        help="Share of movements dated at a random earlier moment (default %(default)s).",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL URL without ?schema= (a fresh schema is created and dropped).",
    )
    parser.add_argument(
        "--code",
        type=Path,
        default=None,
        help="Run the server from this checkout of the ledger (PYTHONPATH) instead of this one.",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="Measure on the planner statistics as they are after seeding, without ANALYZE.",
    )
    parser.add_argument(
        "--keep-schema",
        action="store_true",
        help="Leave the schema in place at the end, to look into its query plans.",
    )
    args = parser.parse_args()
    if args.sizes != sorted(args.sizes) or args.requests < 1:
        parser.error("--sizes must ascend and --requests be positive")
    run = secrets.token_hex(3)
    schema = f"bench_at_{run}"
    print(f"command: {' '.join(getattr(sys, 'orig_argv', sys.argv))}")
    for line in machine(args.database_url):
        print(f"machine: {line}")
    print(f"server code: {describe_code(args.code)}")
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    workdir = Path(tempfile.mkdtemp(prefix="ledger-bench-at-"))
    server = Server(f"{args.database_url}?schema={schema}", workdir / "server.log")
    if args.code is not None:
        server.env["PYTHONPATH"] = str(args.code.resolve())
        server.command = command_for(args.code, server.command)
    history = History(f"AT-{run}", args.backdated, seed=int(run, 16))
    results = []
    failures = 0
    try:
        server.start()
        print(f"server: pid {server.pid}, {server.url}\n", flush=True)
        for size in args.sizes:
            while len(history.dates) < size:
                count = min(BATCH, size - len(history.dates))
                _, response, _ = post_batch(server, history.next_movements(count))
                if response.status_code != 201:
                    raise RuntimeError(
                        f"seeding: HTTP {response.status_code} {response.text[:300]}"
                    )
            waited = wait_for_views(server, args.database_url, schema)
            if not args.no_analyze:
                analyze(args.database_url, schema)
            backdated = history.backdated_count()
            cpu: list = []
            with cpu_meter(server.pid, cpu):
                latencies, wrong = measure(server, history, args.requests)
            failures += wrong
            ms = [1000 * x for x in latencies]
            figure = {
                "events": size,
                "p50_ms": percentile(ms, 50),
                "p99_ms": percentile(ms, 99),
                "max_ms": ms[-1],
                "wrong": wrong,
            }
            results.append(figure)
            print(
                f"{size:>7,} events ({backdated:,} backdated; views caught up in "
                f"{waited:.1f}s{'' if args.no_analyze else ', then analyzed'}): "
                f"{len(ms)} reads, p50 {figure['p50_ms']:.1f} ms, "
                f"p99 {figure['p99_ms']:.1f} ms, max {figure['max_ms']:.1f} ms, "
                f"{wrong} wrong\n  {cpu[0].describe()}",
                flush=True,
            )
        last = results[-1]
        verdict = "met" if last["p99_ms"] < FLOOR_MS and not failures else "NOT met"
        print(
            f"\nfloor p99 < {FLOOR_MS:.0f} ms at {last['events']:,} events: {verdict} "
            f"(p99 {last['p99_ms']:.1f} ms)"
        )
        print("json: " + json.dumps(results))
    except BaseException:
        print(f"\nserver log (tail):\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.stop()
        if args.keep_schema:
            print(f"schema {schema} kept; server stopped")
        else:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
            print(f"schema {schema} dropped; server stopped")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
