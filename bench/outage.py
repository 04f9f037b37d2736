"""Benchmark recovery from a platform outage: from the moment VTEX (the emulator) answers again to
the moment every SKU shows its available stock there, with the default dispatch settings, on
PostgreSQL.

Starts the VTEX emulator (its own process, validating every request against VTEX's OpenAPI
files) and the real server (``ledger serve``, dispatcher inside) on a fresh schema, with no
``LEDGER_DISPATCH_*`` setting (backoff 0.5 s doubling to 60 s, 50 requests/s per platform). It
seeds every SKU with one un-timed batch and waits until the emulator shows them all; then the
emulator answers 503 to every request for ``--outage`` seconds while movements of -1 land on
random SKUs at ``--rate`` per second. Then the emulator answers again, and the bench waits until
every SKU shows its last quantity. It prints the figures the issue asks for:

- recovery → convergence: until the last SKU shows its final quantity;
- recovery → first delivery (the next probe after recovery);
- what the bound says: the backoff cap plus pending / rate;
- requests the outage cost (how many the emulator answered 503), to show that a failing
  platform is probed, not sent every row at every backoff;
- the platform's status at the end of the outage.

    .venv/bin/python bench/outage.py [--outage 300] [--skus 1000] [--rate 10]

Drops the schema at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from append import DEFAULT_DATABASE_URL, Server, machine  # noqa: E402
from publish_lag import SEED, Emulator, connect_vtex, ledger_and_vtex, seed  # noqa: E402

CAP = 60.0  # LEDGER_DISPATCH_BACKOFF_CAP's default
RATE = 50.0  # a platform's default rate_limit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=300.0, help="seconds VTEX answers 503")
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="movements per second")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    for line in machine(args.database_url):
        print(f"machine: {line}")
    run = secrets.token_hex(3)
    with ledger_and_vtex(args.database_url, f"outage_{run}", default_dispatch=True) as (
        server,
        vtex,
    ):
        return measure(server, vtex, args, run)


def measure(server: Server, vtex: Emulator, args: argparse.Namespace, run: str) -> int:
    headers = {"Authorization": f"Bearer {server.token}"}
    client = httpx.Client(base_url=server.url, headers=headers, timeout=60)
    skus = [f"U{run}-{k:04d}" for k in range(args.skus)]
    connect_vtex(client, vtex)
    if not seed(server, vtex, skus):
        return 1
    print(f"seeded {len(skus)} SKUs; VTEX now answers 503 for {args.outage:g} s")

    requests_before = len(vtex.requests())
    vtex.http.post("/faults", json={"mode": "503"}).raise_for_status()
    outage_start = time.monotonic()
    final: dict[str, int] = {}
    errors: list[str] = []
    stop = threading.Event()

    def write() -> None:
        rng = random.Random()
        n = 0
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as writer:
            while not stop.is_set():
                due = outage_start + n / args.rate
                if (pause := due - time.monotonic()) > 0:
                    time.sleep(pause)
                sku = skus[rng.randrange(len(skus))]
                answer = writer.post(
                    "/movements",
                    json={
                        "movement_id": f"o{run}-{n}",
                        "sku": sku,
                        "kind": "manual",
                        "quantity": "-1",
                    },
                )
                n += 1
                if answer.status_code != 201:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")
                    continue
                final[sku] = min(final.get(sku, SEED), int(float(answer.json()["available"])))

    writer = threading.Thread(target=write)
    writer.start()
    while time.monotonic() - outage_start < args.outage:
        time.sleep(min(30.0, args.outage - (time.monotonic() - outage_start)))
        deliveries = client.get("/platforms/vtex/status").json()["deliveries"]
        print(
            f"  {time.monotonic() - outage_start:5.0f} s: pending {deliveries['pending']}, "
            f"retrying {deliveries['retrying']}, failing {deliveries['failing']}, "
            f"oldest {deliveries['oldest_pending_seconds']:.0f} s"
        )
    stop.set()
    writer.join()
    # The writes of the outage are all in: what waits now is what recovery must send.
    time.sleep(2)
    at_end = client.get("/platforms/vtex/status").json()["deliveries"]
    refused = sum(1 for r in vtex.requests()[requests_before:] if r.get("fault") == "503")
    waiting = at_end["pending"] + at_end["retrying"]

    vtex.http.delete("/faults").raise_for_status()
    recovered_wall = time.time()
    recovered = time.monotonic()
    deadline = recovered + 1200
    while True:
        shown = vtex.stocks()
        if all(shown.get(s) == q for s, q in final.items()):
            break
        if time.monotonic() > deadline:
            print("the emulator never converged", file=sys.stderr)
            return 1
        time.sleep(0.2)
    polled = time.monotonic() - recovered
    puts = [p for p in vtex.stock_updates() if p["at"] >= recovered_wall]
    last_needed = max(
        min(p["at"] for p in puts if p["sku"] == s and p["quantity"] == q) for s, q in final.items()
    )
    first = min((p["at"] for p in puts), default=recovered_wall)
    converged = last_needed - recovered_wall
    bound = CAP + waiting / RATE
    print(
        f"outage: {args.outage:g} s, {len(final)} SKUs changed by "
        f"{int(args.rate * args.outage)} movements (errors: {len(errors)})"
    )
    print(
        f"at the end of the outage: {waiting} deliveries waiting ({at_end['retrying']} "
        f"retrying), failing {at_end['failing']}; the outage cost {refused} requests answered 503"
    )
    print(
        f"recovery -> first delivery: {first - recovered_wall:.1f} s; recovery -> convergence: "
        f"{converged:.1f} s (seen by polling after {polled:.1f} s); stock updates after recovery: "
        f"{len(puts)}"
    )
    print(f"bound (cap {CAP:g} s + {waiting} pending / {RATE:g}/s): {bound:.1f} s")
    ok = converged <= bound and not errors
    print(f"within the bound: {'yes' if ok else 'NO'}")
    client.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
