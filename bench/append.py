"""How fast the ledger appends movements, next to raw PostgreSQL inserts on the same machine.

Starts the real server (``ledger serve``) on a fresh PostgreSQL schema, then measures

* ``POST /movements`` with 1 and with 8 concurrent clients (movements/s, p50 and p99 latency),
* ``POST /movements/batch`` with 10,000 and 50,000 movements (movements/s, request latency),

and, in a scratch table shaped like the event store's, the raw PostgreSQL baseline:

* single-row ``INSERT`` + ``COMMIT`` per row at 1 and 8 connections (commits/s),
* multi-row inserts of 10,000 and 50,000 rows by ``executemany`` (pipeline), ``COPY`` and
  ``INSERT ... SELECT FROM unnest(...)`` (rows/s; the fastest is the baseline).

It prints every figure, the CPU each party used, and a table of ledger / baseline ratios.
The schema is dropped at the end, also on error. Run from the repository root::

    .venv/bin/python bench/append.py            # the full run (a few minutes)
    .venv/bin/python bench/append.py --quick    # a smoke run, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.fernet import Fernet
from psycopg import sql

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
SKU_POOL = 1_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- options -------------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark appending movements through the ledger's HTTP API against raw "
        "PostgreSQL inserts."
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL URL without ?schema= (a fresh schema is created and dropped). "
        "Default: $LEDGER_BENCH_POSTGRES_URL or %(default)s.",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="POST /movements requests per single-append run, spread over the clients "
        "(default 4000; 200 with --quick). Also the row count of the raw single-row runs.",
    )
    parser.add_argument(
        "--clients",
        type=_int_list,
        default=None,
        help="Concurrent clients (and raw connections) to measure, comma-separated (default 1,8).",
    )
    parser.add_argument(
        "--batch-sizes",
        type=_int_list,
        default=None,
        help="Movements per POST /movements/batch, comma-separated "
        "(default 10000,50000; 1000,5000 with --quick).",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="Times each batch size (and raw multi-row insert) is run (default 3; 1 with --quick).",
    )
    parser.add_argument(
        "--batch-timeout",
        type=float,
        default=120.0,
        help="Seconds to wait for one batch response before calling it stalled, diagnosing "
        "and restarting the server (default %(default)s).",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="API processes for `ledger serve --workers` (default: the server's own default, "
        "one per CPU on PostgreSQL).",
    )
    parser.add_argument(
        "--no-platform",
        dest="platform",
        action="store_false",
        help="Do not start the VTEX emulator and connect it with the warehouse mapped (by "
        "default it is, so the dispatcher pushes every change as in production).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Small numbers for a smoke run: 200 single requests, batches of 1000 and 5000.",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    if args.requests is None:
        args.requests = 200 if quick else 4_000
    if args.clients is None:
        args.clients = [1, 8]
    if args.batch_sizes is None:
        args.batch_sizes = [1_000, 5_000] if quick else [10_000, 50_000]
    if args.repeats is None:
        args.repeats = 1 if quick else 3
    if args.requests < 1 or args.repeats < 1:
        parser.error("--requests and --repeats must be positive")
    if "?" in args.database_url:
        parser.error("--database-url must not carry a query string; the schema is chosen here")
    return args


# -- measuring helpers ---------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _proc_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _group_cpu_seconds(pgid: int) -> float | None:
    """CPU seconds of every live process in the process group ``pgid`` (the server started
    in a session of its own: its API processes and its background process)."""
    total, found = 0.0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found = True
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total if found else None


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@dataclass
class CpuUse:
    wall: float
    bench: float
    server: float
    postgres: float

    def describe(self) -> str:
        def share(seconds: float) -> str:
            return f"{seconds:.1f}s ({seconds / self.wall:.0%} of a core)"

        return (
            f"cpu over {self.wall:.1f}s: server {share(self.server)}, postgres "
            f"{share(self.postgres)}, this bench process {share(self.bench)}"
        )


@contextmanager
def cpu_meter(server_pid: int | None, into: list[CpuUse]) -> Iterator[None]:
    """CPU seconds used by the server, by PostgreSQL (all its processes on this machine, when
    it runs here) and by this process, over the block. Backends that exit inside the block
    are not counted."""
    pg_before = {pid: _proc_cpu_seconds(pid) for pid in _postgres_pids()}
    server_before = _group_cpu_seconds(server_pid) if server_pid else None
    bench_before = time.process_time()
    wall_before = time.perf_counter()
    try:
        yield
    finally:
        wall = time.perf_counter() - wall_before
        bench = time.process_time() - bench_before
        server = 0.0
        if server_pid and server_before is not None:
            server = (_group_cpu_seconds(server_pid) or server_before) - server_before
        postgres = 0.0
        for pid in _postgres_pids():
            now = _proc_cpu_seconds(pid)
            if now is not None:
                postgres += now - (pg_before.get(pid) or 0.0)
        into.append(CpuUse(wall, bench, server, postgres))


@dataclass
class Figure:
    label: str
    rate: float  # movements or rows or commits per second
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    runs: list[float] = field(default_factory=list)
    note: str = ""
    failed: str = ""  # e.g. "2 of 3 runs failed"


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(port: int, workers: int | None = None) -> list[str]:
    script = Path(sys.executable).with_name("ledger")
    if script.exists():
        head = [str(script)]
    else:
        head = [sys.executable, "-c", "from api.cli import main; main()"]
    # Without ``workers``, the server's own default (one API process per CPU on PostgreSQL);
    # the flag is left out then, so that a checkout older than ``--workers`` runs too.
    chosen = [] if workers is None else ["--workers", str(workers)]
    return [*head, "serve", *chosen, "--port", str(port), "--log-level", "warning"]


class Server:
    def __init__(self, database_url: str, log_path: Path, workers: int | None = None) -> None:
        self.port = free_port()
        self.token = "bench-" + secrets.token_urlsafe(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = server_command(self.port, workers)
        self.env = {
            **os.environ,
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_ADMIN_TOKEN": self.token,
            # Platform credentials are stored encrypted; PostgreSQL needs a key for them.
            "LEDGER_SECRET_KEY": os.environ.get("LEDGER_SECRET_KEY")
            or Fernet.generate_key().decode(),
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.schema: str | None = None  # set by served()

    def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("ab")
        # A scratch working folder, so that no .env file of the checkout changes the settings.
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"GET /healthz did not answer 200 in {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, grace: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:]) or "(the server log is empty)"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def database_ports(self) -> set[int]:
        """Local TCP ports of the server's sockets, to find its backends in pg_stat_activity."""
        if self.pid is None:
            return set()
        inodes = set()
        fds = Path(f"/proc/{self.pid}/fd")
        try:
            for fd in fds.iterdir():
                with suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
        except OSError:
            return set()
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    if fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports

    def display_command(self, schema_url: str) -> str:
        env = f"LEDGER_DATABASE_URL={schema_url} LEDGER_ADMIN_TOKEN=<random>"
        return f"{env} {shlex.join(self.command)}"


# -- the ledger through HTTP ---------------------------------------------------------------------


@contextmanager
def served(database_url: str, name: str, workers: int | None = None) -> Iterator[Server]:
    """``ledger serve`` on a fresh schema ``bench_<name>_<run>``, started; stopped and the
    schema dropped afterwards, whatever happens."""
    schema = f"bench_{name}_{secrets.token_hex(3)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    workdir = Path(tempfile.mkdtemp(prefix=f"ledger-bench-{name}-"))
    server = Server(f"{database_url}?schema={schema}", workdir / "server.log", workers)
    server.schema = schema
    try:
        server.start()
        yield server
    finally:
        server.stop()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        print(f"schema {schema} dropped; server stopped; log in {workdir}")


@dataclass
class ClientRun:
    latencies: list[float]  # seconds, ascending
    failures: list[str]
    wall: float
    cpu: CpuUse

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def describe(self, what: str) -> str:
        return (
            f"{self.rate:,.0f} {what}/s, p50 {1000 * percentile(self.latencies, 50):.1f} ms, "
            f"p99 {1000 * percentile(self.latencies, 99):.1f} ms "
            f"({len(self.latencies)} in {self.wall:.2f} s)"
        )


def run_clients(
    server: Server,
    clients: int,
    per_client: int,
    send: Callable[[httpx.Client, int], httpx.Response],
    expect: int = 201,
) -> ClientRun:
    """``clients`` threads, each with its own connection, each calling ``send(client, k)`` for
    its ``per_client`` numbers ``k`` (distinct across threads), timed one by one."""
    headers = {"Authorization": f"Bearer {server.token}"}
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def loop(index: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            for n in range(per_client):
                start = time.perf_counter()
                response = send(client, index * per_client + n)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != expect:
                        failures.append(f"{response.status_code} {response.text[:200]}")

    cpu: list[CpuUse] = []
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    with cpu_meter(server.pid, cpu):
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    return ClientRun(sorted(latencies), failures, wall, cpu[-1])


def movement(movement_id: str, sku: str, quantity: int = 5) -> dict[str, Any]:
    return {
        "movement_id": movement_id,
        "sku": sku,
        "warehouse": "main",
        "kind": "purchase_order",
        "quantity": str(quantity),
        "reference": "bench",
    }


class Errors:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[int] = Counter()
        self.samples: dict[int, str] = {}

    def add(self, status: int, body: str) -> None:
        with self.lock:
            self.counts[status] += 1
            self.samples.setdefault(status, body[:300])

    def __bool__(self) -> bool:
        return bool(self.counts)

    def describe(self) -> str:
        return "; ".join(
            f"{count} x {'timeout' if status == 0 else f'HTTP {status}'} ({self.samples[status]})"
            for status, count in sorted(self.counts.items())
        )


def post_batch(
    server: Server, movements: list[dict[str, Any]], timeout: float = 600.0
) -> tuple[float, httpx.Response, int]:
    body = json.dumps({"movements": movements}).encode()
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server.url, timeout=timeout) as client:
        start = time.perf_counter()
        response = client.post("/movements/batch", content=body, headers=headers)
        elapsed = time.perf_counter() - start
    return elapsed, response, len(body)


def seed_sku_pool(server: Server, run: str) -> list[str]:
    """Open the stock of the SKU pool with one un-timed batch, so that every timed single
    append moves an existing stock (one stock event and one idempotency record)."""
    skus = [f"S{run}-{n:04d}" for n in range(SKU_POOL)]
    _, response, _ = post_batch(server, [movement(f"seed-{run}-{s}", s, 1000) for s in skus])
    if response.status_code != 201:
        raise RuntimeError(f"seeding failed: HTTP {response.status_code} {response.text[:300]}")
    return skus


def wait_for_views(server: Server, conninfo: str, schema: str, timeout: float = 600.0) -> float:
    """Wait until the stock view has processed every event it subscribes to, so that one
    phase's projection work does not run into the next; the seconds waited.

    GET /views' ``lag`` is not used: it counts from the head of the event store, and the
    last events of every save are idempotency records, which the view never tracks."""
    from projections.stock_levels import StockLevelsProjection

    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("ledger_events"))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        target = conn.execute(
            sql.SQL(
                "SELECT coalesce(max(notification_id), 0) FROM {} WHERE topic = ANY(%s)"
            ).format(table),
            (list(StockLevelsProjection.topics),),
        ).fetchone()[0]
    start = time.perf_counter()
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        while time.perf_counter() - start < timeout:
            views = client.get("/views").json().get("views", [])
            if all(view["position"] >= target for view in views):
                return time.perf_counter() - start
            time.sleep(0.02)
    raise RuntimeError(f"the stock view did not reach position {target} within {timeout:.0f}s")


def count_events(conninfo: str, schema: str) -> int:
    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("ledger_events"))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]


def run_singles(
    server: Server, skus: list[str], total: int, clients: int, run: str, cpu: list[CpuUse]
) -> tuple[Figure, Errors]:
    per_client = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    # Bodies are encoded before the clock starts, so the clients spend their time on HTTP.
    bodies: list[list[bytes]] = []
    counter = 0
    for count in per_client:
        mine = []
        for _ in range(count):
            sku = skus[(counter * 7919) % len(skus)]
            mine.append(json.dumps(movement(f"m-{run}-{clients}-{counter}", sku)).encode())
            counter += 1
        bodies.append(mine)
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = Errors()
    ready = threading.Barrier(clients + 1)
    go = threading.Event()

    def client_thread(index: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            client.get("/healthz")  # open the connection before the clock starts
            ready.wait()
            go.wait()
            mine = latencies[index]
            perf = time.perf_counter
            for body in bodies[index]:
                start = perf()
                response = client.post("/movements", content=body)
                mine.append(perf() - start)
                if response.status_code != 201:
                    errors.add(response.status_code, response.text)

    threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    with cpu_meter(server.pid, cpu):
        start = time.perf_counter()
        go.set()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    flat = sorted(x for per in latencies for x in per)
    done = len(flat) - sum(errors.counts.values())
    figure = Figure(
        label=f"single append, {clients} client{'s' if clients > 1 else ''}",
        rate=done / wall,
        unit="movements/s",
        p50_ms=percentile(flat, 50) * 1000,
        p99_ms=percentile(flat, 99) * 1000,
        note=f"{len(flat)} requests in {wall:.2f}s",
    )
    return figure, errors


def diagnose_stall(server: Server, conninfo: str, dump_path: Path) -> list[str]:
    """What a stalled server is doing: its backends' transactions, and (when py-spy is
    installed next to this interpreter or on PATH) the stack of the thread in the event store."""
    lines = []
    ports = sorted(server.database_ports())
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, state, wait_event_type, wait_event, "
            "round(extract(epoch FROM now() - xact_start)::numeric, 1), left(query, 60) "
            "FROM pg_stat_activity WHERE client_port = ANY(%s) AND xact_start IS NOT NULL",
            (ports,),
        ).fetchall()
    for pid, state, wait_type, wait, age, query in rows:
        lines.append(
            f"server backend {pid}: {state}, waiting on {wait_type}/{wait}, "
            f"in a transaction for {age}s, last statement {query.strip()!r}"
        )
    if not rows:
        lines.append("no server backend is inside a transaction")
    spy = Path(sys.executable).with_name("py-spy")
    spy_path = str(spy) if spy.exists() else shutil.which("py-spy")
    if spy_path and server.pid:
        dump = subprocess.run(
            [spy_path, "dump", "--pid", str(server.pid)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        dump_path.write_text(dump)
        for block in dump.split("\nThread ")[1:]:
            if "insert_events" in block:
                frames = [f.strip() for f in block.splitlines()[1:7]]
                lines.append("server thread stack (innermost first): " + " <- ".join(frames))
        lines.append(f"full py-spy dump of the server: {dump_path}")
    return lines


def run_batches(
    server: Server,
    size: int,
    args: argparse.Namespace,
    run: str,
    cpu: list[CpuUse],
    conninfo: str,
    schema: str,
    workdir: Path,
) -> tuple[Figure, Errors]:
    errors = Errors()
    rates, latencies = [], []
    for repeat in range(args.repeats):
        prefix = f"b{run}-{size}-{repeat}"
        movements = [movement(f"{prefix}-{i}", f"{prefix}-sku-{i}") for i in range(size)]
        before = count_events(conninfo, schema)
        try:
            with cpu_meter(server.pid, cpu):
                elapsed, response, body_bytes = post_batch(server, movements, args.batch_timeout)
        except httpx.TimeoutException:
            errors.add(0, f"no response within {args.batch_timeout:.0f}s")
            print(
                f"  batch of {size:,} (#{repeat + 1}): NO RESPONSE within "
                f"{args.batch_timeout:.0f}s\n    {cpu[-1].describe()}",
                flush=True,
            )
            for line in diagnose_stall(server, conninfo, workdir / f"stall-{size}-{repeat}.txt"):
                print(f"    {line}", flush=True)
            print("    restarting the server (the stalled request holds its locks)", flush=True)
            server.stop(grace=5)
            server.start()
            wait_for_views(server, conninfo, schema)
            continue
        written = count_events(conninfo, schema) - before
        catch_up = wait_for_views(server, conninfo, schema)
        ok = response.status_code == 201 and len(response.json().get("results", [])) == size
        if ok:
            rates.append(size / elapsed)
            latencies.append(elapsed)
        else:
            errors.add(response.status_code, response.text)
        print(
            f"  batch of {size:,} (#{repeat + 1}): HTTP {response.status_code} in {elapsed:.2f}s "
            f"-> {fmt_rate(size / elapsed if ok else 0)} movements/s "
            f"(request body {body_bytes / 1e6:.1f} MB)"
            f"\n    {cpu[-1].describe()}"
            f"\n    {written:,} events written ({written / size:.1f} per movement); "
            f"the stock view caught up {catch_up:.2f}s after the response",
            flush=True,
        )
    failed = args.repeats - len(rates)
    note = "median of " + ", ".join(fmt_rate(r) for r in rates) if rates else "no run succeeded"
    figure = Figure(
        label=f"batch of {size:,}",
        rate=statistics.median(rates) if rates else 0.0,
        unit="movements/s",
        p50_ms=statistics.median(latencies) * 1000 if latencies else None,
        runs=rates,
        note=note,
        failed=f"{failed} of {args.repeats} runs failed" if failed else "",
    )
    return figure, errors


# -- raw PostgreSQL ------------------------------------------------------------------------------

TOPIC = "ledger.stock:Stock.Moved"


def create_scratch_table(conninfo: str, schema: str) -> sql.Composed:
    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("raw_events"))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id uuid NOT NULL, version int NOT NULL, topic text, "
                "state bytea, notification_id bigserial, PRIMARY KEY (id, version))"
            ).format(table)
        )
        # As the event store has: notifications are read in notification_id order.
        conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (notification_id)").format(table))
    return table


def raw_singles(
    conninfo: str,
    table: sql.Composed,
    state: bytes,
    total: int,
    connections: int,
    cpu: list[CpuUse],
    *,
    event_store_shaped: bool = False,
) -> Figure:
    """One transaction per row (or, event-store-shaped, per movement: LOCK TABLE, NOTIFY and a
    two-row INSERT ... RETURNING, as eventsourcing does), each committed on its own."""
    per_conn = [
        total // connections + (1 if i < total % connections else 0) for i in range(connections)
    ]
    insert = sql.SQL("INSERT INTO {} (id, version, topic, state) VALUES (%s, %s, %s, %s)").format(
        table
    )
    pair = sql.SQL(
        "INSERT INTO {} (id, version, topic, state) VALUES (%s, %s, %s, %s), (%s, %s, %s, %s) "
        "RETURNING notification_id"
    ).format(table)
    lock = sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    ready = threading.Barrier(connections + 1)
    go = threading.Event()
    done = threading.Barrier(connections + 1)
    release = threading.Event()
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            with psycopg.connect(conninfo) as conn:
                conn.execute("SELECT 1")
                conn.commit()
                ready.wait()
                go.wait()
                mine = latencies[index]
                perf = time.perf_counter
                for _ in range(per_conn[index]):
                    start = perf()
                    if event_store_shaped:
                        with conn.pipeline():
                            conn.execute("SET LOCAL lock_timeout = '10s'", prepare=True)
                            conn.execute(lock, prepare=True)
                            conn.execute("NOTIFY raw_events", prepare=True)
                            conn.execute(
                                pair,
                                (uuid.uuid4(), 1, TOPIC, state, uuid.uuid4(), 1, TOPIC, state),
                                prepare=True,
                            ).fetchall()
                    else:
                        conn.execute(insert, (uuid.uuid4(), 1, TOPIC, state), prepare=True)
                    conn.commit()
                    mine.append(perf() - start)
                # Stay connected until the CPU meter has read the backends' counters.
                done.wait()
                release.wait()
        except BaseException as error:
            failures.append(error)
            ready.abort()
            done.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    with suppress(threading.BrokenBarrierError):
        ready.wait()
    with cpu_meter(None, cpu):
        start = time.perf_counter()
        go.set()
        with suppress(threading.BrokenBarrierError):
            done.wait()
        wall = time.perf_counter() - start
    release.set()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    flat = sorted(x for per in latencies for x in per)
    what = (
        "event-store-shaped commit (LOCK TABLE + NOTIFY + 2-row INSERT)"
        if event_store_shaped
        else "single-row INSERT + COMMIT"
    )
    return Figure(
        label=f"raw {what}, {connections} conn{'s' if connections > 1 else ''}",
        rate=len(flat) / wall,
        unit="commits/s",
        p50_ms=percentile(flat, 50) * 1000,
        p99_ms=percentile(flat, 99) * 1000,
        note=f"{len(flat)} commits in {wall:.2f}s",
    )


def _rows(size: int, state: bytes) -> list[tuple[uuid.UUID, int, str, bytes]]:
    return [(uuid.uuid4(), 1, TOPIC, state) for _ in range(size)]


def _by_executemany(conn: psycopg.Connection[Any], table: sql.Composed, rows: list[Any]) -> None:
    insert = sql.SQL("INSERT INTO {} (id, version, topic, state) VALUES (%s, %s, %s, %s)")
    with conn.cursor() as cur:
        cur.executemany(insert.format(table), rows)  # pipeline mode in psycopg 3


def _by_copy(conn: psycopg.Connection[Any], table: sql.Composed, rows: list[Any]) -> None:
    statement = sql.SQL("COPY {} (id, version, topic, state) FROM STDIN (FORMAT BINARY)")
    with conn.cursor() as cur, cur.copy(statement.format(table)) as copy:
        copy.set_types(["uuid", "int4", "text", "bytea"])
        for row in rows:
            copy.write_row(row)


def _by_unnest(conn: psycopg.Connection[Any], table: sql.Composed, rows: list[Any]) -> None:
    ids, versions, topics, states = map(list, zip(*rows, strict=True))
    statement = sql.SQL(
        "INSERT INTO {} (id, version, topic, state) "
        "SELECT * FROM unnest(%s::uuid[], %s::int[], %s::text[], %s::bytea[])"
    )
    conn.execute(statement.format(table), (ids, versions, topics, states))


MULTI_ROW_METHODS: dict[str, Callable[[psycopg.Connection[Any], sql.Composed, list[Any]], None]] = {
    "executemany (pipeline)": _by_executemany,
    "COPY (binary)": _by_copy,
    "INSERT ... SELECT FROM unnest(arrays)": _by_unnest,
}


def raw_multi_row(
    conninfo: str, table: sql.Composed, state: bytes, size: int, repeats: int, cpu: list[CpuUse]
) -> tuple[Figure, list[Figure]]:
    """Each method inserts ``size`` rows in one transaction, ``repeats`` times; the fastest
    method (by median) is the baseline."""
    figures = []
    with psycopg.connect(conninfo) as conn:
        for name, method in MULTI_ROW_METHODS.items():
            rates = []
            for _ in range(repeats):
                rows = _rows(size, state)
                with cpu_meter(None, cpu):
                    start = time.perf_counter()
                    method(conn, table, rows)
                    conn.commit()
                    elapsed = time.perf_counter() - start
                rates.append(size / elapsed)
            figures.append(
                Figure(
                    label=f"raw {size:,} rows by {name}",
                    rate=statistics.median(rates),
                    unit="rows/s",
                    runs=rates,
                    note="median of " + ", ".join(fmt_rate(r) for r in rates),
                )
            )
    best = max(figures, key=lambda f: f.rate)
    return best, figures


# -- the machine ---------------------------------------------------------------------------------


def machine(conninfo: str) -> list[str]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(conninfo, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                (["synchronous_commit", "fsync", "shared_buffers", "wal_sync_method"],),
            ).fetchall()
        )
    packages = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("eventsourcing", "fastapi", "uvicorn", "psycopg", "httpx")
    )
    local_pg = bool(_postgres_pids())
    return [
        f"CPU: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {cpu_model}",
        f"memory: {mem_kb / 1024 / 1024:.1f} GiB (MemTotal {mem_kb:,} kB)",
        f"PostgreSQL {version} ({'on this machine' if local_pg else 'remote'}; "
        + ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
        + ")",
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        packages,
    ]


# -- main ----------------------------------------------------------------------------------------


def ratio_row(ledger: Figure, baseline: Figure) -> tuple[str, str, str, str, str]:
    failed = f" ({ledger.failed})" if ledger.failed else ""
    return (
        ledger.label,
        f"{fmt_rate(ledger.rate)} {ledger.unit}{failed}",
        baseline.label,
        f"{fmt_rate(baseline.rate)} {baseline.unit}",
        f"{ledger.rate / baseline.rate:.2f}" if baseline.rate else "n/a",
    )


def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Clean up (stop the server, drop the schema) on SIGTERM, and on SIGINT even when started
    # in the background, where the shell leaves SIGINT ignored.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run = secrets.token_hex(3)
    schema = f"bench_{run}"
    base = args.database_url
    schema_url = f"{base}?schema={schema}"
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))

    print(f"command: {command}")
    for line in machine(base):
        print(f"machine: {line}")
    print(f"schema: {schema}", flush=True)

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    workdir = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    server = Server(schema_url, workdir / "server.log", args.workers)
    print(f"server: {server.display_command(schema_url)}", flush=True)
    problems: list[str] = []
    vtex = None
    try:
        server.start()
        print(f"server: pid {server.pid}, {server.url}, healthy", flush=True)
        if args.platform:
            from vtex import Emulator, connect_vtex

            vtex = Emulator(workdir / "emulator.log", official=False)
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}
            ) as client:
                connect_vtex(client, vtex)
            print(f"platform: vtex at {vtex.url}, warehouse main mapped", flush=True)
        print(flush=True)
        singles, batches, raw_single, raw_multi = [], [], {}, {}
        cpu: list[CpuUse] = []

        print("== ledger: POST /movements ==", flush=True)
        skus = seed_sku_pool(server, run)
        wait_for_views(server, base, schema)
        print(f"  (seeded {len(skus):,} SKUs with one un-timed batch; requests cycle over them)")
        for clients in args.clients:
            before = count_events(base, schema)
            figure, errors = run_singles(server, skus, args.requests, clients, run, cpu)
            singles.append(figure)
            written = count_events(base, schema) - before
            catch_up = wait_for_views(server, base, schema)
            print(
                f"  {figure.label}: {fmt_rate(figure.rate)} movements/s, p50 "
                f"{figure.p50_ms:.1f} ms, p99 {figure.p99_ms:.1f} ms ({figure.note})"
                f"\n    {cpu[-1].describe()}"
                f"\n    {written:,} events written ({written / args.requests:.1f} per movement); "
                f"the stock view caught up {catch_up:.2f}s after the last response",
                flush=True,
            )
            if errors:
                problems.append(f"{figure.label}: {errors.describe()}")
                print(f"    errors: {errors.describe()}", flush=True)

        print("\n== ledger: POST /movements/batch ==", flush=True)
        for size in args.batch_sizes:
            figure, errors = run_batches(server, size, args, run, cpu, base, schema, workdir)
            batches.append(figure)
            if errors:
                problems.append(f"{figure.label}: {errors.describe()}")
                print(f"    errors: {errors.describe()}", flush=True)

        with psycopg.connect(base, autocommit=True) as conn:
            events = sql.SQL("{}.{}").format(
                sql.Identifier(schema), sql.Identifier("ledger_events")
            )
            count, avg_state, avg_topic = conn.execute(
                sql.SQL(
                    "SELECT count(*), avg(octet_length(state)), avg(octet_length(topic)) FROM {}"
                ).format(events)
            ).fetchone()
        print(
            f"\n  event store after the ledger runs: {count:,} events, state "
            f"{float(avg_state):.0f} bytes and topic {float(avg_topic):.0f} bytes on average"
        )
        server.stop()  # its view runner and pool would otherwise compete with the baseline
        print("  (server stopped before the baseline)")

        state = os.urandom(round(float(avg_state or 300)))
        print(
            f"\n== raw PostgreSQL: scratch table {schema}.raw_events "
            f"(state {len(state)} bytes, like the ledger's events) ==",
            flush=True,
        )
        table = create_scratch_table(base, schema)
        for connections in args.clients:
            for shaped in (False, True):
                figure = raw_singles(
                    base, table, state, args.requests, connections, cpu, event_store_shaped=shaped
                )
                raw_single[(connections, shaped)] = figure
                print(
                    f"  {figure.label}: {fmt_rate(figure.rate)} commits/s, p50 "
                    f"{figure.p50_ms:.2f} ms, p99 {figure.p99_ms:.2f} ms ({figure.note})"
                    f"\n    {cpu[-1].describe()}",
                    flush=True,
                )
        for size in args.batch_sizes:
            best, figures = raw_multi_row(base, table, state, size, args.repeats, cpu)
            raw_multi[size] = best
            for figure in figures:
                mark = "  <- fastest" if figure is best else ""
                print(f"  {figure.label}: {fmt_rate(figure.rate)} rows/s ({figure.note}){mark}")

        print("\n== ledger next to raw PostgreSQL (ratio = ledger / baseline) ==")
        rows = []
        for clients, figure in zip(args.clients, singles, strict=True):
            rows.append(ratio_row(figure, raw_single[(clients, False)]))
        for size, figure in zip(args.batch_sizes, batches, strict=True):
            rows.append(ratio_row(figure, raw_multi[size]))
        print_table(rows, ("ledger", "rate", "baseline", "rate", "ratio"))
        print("\nsingle appends next to the event store's own commit pattern:")
        rows = [
            ratio_row(figure, raw_single[(clients, True)])
            for clients, figure in zip(args.clients, singles, strict=True)
        ]
        print_table(rows, ("ledger", "rate", "baseline", "rate", "ratio"))
        print("\nlatency (ms):")
        for figure in singles:
            print(f"  {figure.label}: p50 {figure.p50_ms:.1f}, p99 {figure.p99_ms:.1f}")
        for figure in batches:
            latency = "n/a" if figure.p50_ms is None else f"{figure.p50_ms:.0f}"
            print(f"  {figure.label}: request {latency} (median of the runs that answered)")
        print("\nfloors:")
        for clients, figure in zip(args.clients, singles, strict=True):
            if clients == 8:
                met = figure.rate >= 600 and not figure.failed
                print(
                    f"  600 single appends/s at 8 clients: {'met' if met else 'NOT met'} "
                    f"({fmt_rate(figure.rate)}/s)"
                )
        for figure in batches:
            met = figure.rate >= 10_000 and not figure.failed
            print(
                f"  10,000 movements/s in batches, {figure.label}: "
                f"{'met' if met else 'NOT met'} ({fmt_rate(figure.rate)}/s"
                f"{'; ' + figure.failed if figure.failed else ''})"
            )
        if problems:
            print("\nPROBLEMS:")
            for problem in problems:
                print(f"  {problem}")
        return 1 if problems else 0
    except BaseException:
        print(f"\nserver log (tail):\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.stop()
        if vtex is not None:
            vtex.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        print(f"\nschema {schema} dropped; server stopped")


if __name__ == "__main__":
    sys.exit(main())
