"""``ledger demo``: the seed's worked example, end to end, on this machine alone.

Invariant: the demo needs no network and no account, and leaves nothing running or behind.
The ledger (``ledger serve``) and a VTEX store (``python -m adapters.vtex_emulator``) run as
child processes on free loopback ports, with a temporary folder for the SQLite database (and
the key file the ledger may create beside it) and an admin token of their own; both are
stopped at the end, on failure and on Ctrl-C (or SIGTERM), and the folder is removed. The demo
talks to them only as a user would, over HTTP (the ledger's API, the emulator's control API),
and exits 0 only when every step's expectation held; otherwise it names the failing step and
what it saw.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx
from rich.console import Console

SKU = "DEMO-SHIRT"
WAREHOUSE = "main"
VTEX_WAREHOUSE = "1_1"
CARRIER = "Correios"
APP_KEY = "vtexappkey-demo-LEDGER"
APP_TOKEN = "demo-token"  # noqa: S105 (the local emulator's, not a secret)
PRICE_CENTS = 4990
FIRST_ORDER, SECOND_ORDER = "1001-01", "1002-01"
# Children inherit the environment, minus the user's ledger settings: the demo's database,
# token and robots are its own. The emulator still finds VTEX's files where the user has them.
KEPT_SETTINGS = frozenset({"LEDGER_VTEX_SPECS"})
START_TIMEOUT = 60.0

T = TypeVar("T")


class DemoFailed(Exception):
    """A step whose expectation did not hold (or a process that would not start)."""


@dataclass(frozen=True)
class Levels:
    physical: int
    reserved: int
    available: int

    def __str__(self) -> str:
        return f"{self.physical}/{self.reserved}/{self.available}"


@dataclass(frozen=True)
class Holdings:
    """What the ledger and the store hold for the demo's SKU at one moment."""

    ledger: Levels | None
    store: int | None

    def __str__(self) -> str:
        ledger = (
            "nothing"
            if self.ledger is None
            else f"physical {self.ledger.physical}, reserved {self.ledger.reserved}, "
            f"available {self.ledger.available}"
        )
        store = "nothing" if self.store is None else str(self.store)
        return f"ledger {ledger} │ store shows {store}"


# --------------------------------------------------------------------------- processes


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _child_environment(**settings: str) -> dict[str, str]:
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("LEDGER_") or k in KEPT_SETTINGS
    }
    return {**inherited, **settings}


def _spawn(name: str, argv: list[str], folder: Path, env: dict[str, str]) -> _Child:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        # Our own interpreter running our own modules, with arguments the demo builds.
        process = subprocess.Popen(  # noqa: S603
            argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return _Child(name, process, log)


def _stop(child: _Child) -> None:
    if child.process.poll() is not None:
        return
    child.process.terminate()
    try:
        child.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()


def _start_emulator(folder: Path, children: list[_Child]) -> tuple[str, str]:
    """The emulator's URL and the line saying whether VTEX's official check is on."""
    argv = [sys.executable, "-m", "adapters.vtex_emulator", "--port", "0"]
    argv += ["--app-key", APP_KEY, "--app-token", APP_TOKEN]
    child = _spawn("vtex-emulator", argv, folder, _child_environment())
    children.append(child)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+); (.*)", child.tail(1))
        if found:
            return found.group(1), found.group(2)
        if child.process.poll() is not None:
            break
        time.sleep(0.05)
    raise DemoFailed("the VTEX emulator did not start")


def _start_ledger(folder: Path, token: str, children: list[_Child]) -> str:
    port = _free_port()
    argv = [sys.executable, "-c", "from api.cli import main; main()", "serve"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = _child_environment(
        LEDGER_DATABASE_URL=f"sqlite:///{folder / 'ledger.db'}", LEDGER_ADMIN_TOKEN=token
    )
    child = _spawn("ledger", argv, folder, env)
    children.append(child)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise DemoFailed("the ledger did not start")


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the demo through its clean-up (Ctrl-C even where the demo was
    started with SIGINT ignored, as a shell does for background jobs)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, interrupt),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --------------------------------------------------------------------------- the play


class Demo:
    def __init__(self, console: Console, ledger: httpx.Client, store: httpx.Client, wait: float):
        self.console = console
        self.ledger = ledger
        self.store = store
        self.wait = wait
        self.step = 0

    # -- reading both sides ------------------------------------------------------------------

    def holdings(self) -> Holdings:
        response = self.ledger.get(f"/stock/{SKU}")
        levels = None
        if response.status_code == 200:
            [row] = [w for w in response.json()["warehouses"] if w["warehouse"] == WAREHOUSE]
            levels = Levels(*(int(Decimal(row[k])) for k in ("physical", "reserved", "available")))
        shown = [
            entry["quantity"]
            for entry in self.store.get("/inventory").json()
            if entry["sku"] == SKU and entry["warehouse"] == VTEX_WAREHOUSE
        ]
        return Holdings(levels, shown[0] if shown else None)

    def order_status(self, order_id: str) -> str | None:
        response = self.ledger.get(f"/orders/vtex/{order_id}")
        return response.json()["status"] if response.status_code == 200 else None

    # -- steps -------------------------------------------------------------------------------

    def until(self, check: Callable[[], T | None], expected: str, seen: Callable[[], Any]) -> T:
        """Poll ``check`` until it returns something, for up to ``wait`` seconds."""
        deadline = time.monotonic() + self.wait
        while True:
            result = check()
            if result is not None and result is not False:
                return result
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"step {self.step}: expected {expected}; after {self.wait:g} s saw {seen()}"
                )
            time.sleep(0.2)

    def expect(self, title: str, ledger: Levels, store: int, also: str = "") -> None:
        """Wait until the ledger and the store hold what the step expects, then say so."""
        wanted = Holdings(ledger, store)
        self.until(lambda: self.holdings() == wanted, str(wanted), self.holdings)
        self.done(title, str(wanted) + (f"\n{also}" if also else ""))

    def begin(self, title: str) -> None:
        self.step += 1
        self.console.print(f"[bold]{self.step:>2}[/] {title} …", highlight=False)

    def done(self, title: str, detail: str = "") -> None:
        self.console.print(f"   [green]✓[/] {title}", highlight=False)
        for line in detail.splitlines():
            self.console.print(f"     {line}", style="dim", highlight=False)

    def call(self, response: httpx.Response, *expected: int) -> dict[str, Any]:
        if response.status_code not in expected:
            raise DemoFailed(
                f"step {self.step}: {response.request.method} {response.request.url.path} "
                f"answered {response.status_code}: {response.text[:300]}"
            )
        return response.json() if response.content else {}

    def play(self, store_url: str) -> None:
        self.begin("Connect the ledger to the VTEX store")
        self.call(
            self.ledger.put(
                "/platforms/vtex",
                json={
                    "type": "vtex",
                    "base_url": store_url,
                    "credentials": {"app_key": APP_KEY, "app_token": APP_TOKEN},
                    "import_from": "awaiting_payment",
                    "warehouses": {WAREHOUSE: VTEX_WAREHOUSE},
                    "carriers": {CARRIER: "correios"},
                    # The robots' shortest intervals, so that the demo takes seconds.
                    "feed_interval_seconds": 1,
                    "payment_check_seconds": 1,
                },
            ),
            200,
        )
        self.done(
            "platform vtex: warehouse main → VTEX warehouse 1_1, carrier Correios → correios",
            "orders come in through VTEX's feed, read every second",
        )

        self.begin(f"Receive 10 units of {SKU} in the ledger")
        self.call(
            self.ledger.post(
                "/movements",
                json={
                    "movement_id": "demo-po-1",
                    "sku": SKU,
                    "warehouse": WAREHOUSE,
                    "kind": "purchase_order",
                    "quantity": "10",
                    "reference": "PO 1",
                },
            ),
            200,
            201,
        )
        self.expect("the ledger holds 10 and the store is sent 10", Levels(10, 0, 10), 10)

        self.begin(f"A shopper orders 5 in the store (order {FIRST_ORDER}, payment pending)")
        self._place(FIRST_ORDER, 5, "payment-pending")
        self.until(
            lambda: self.order_status(FIRST_ORDER) == "awaiting_payment",
            f"order {FIRST_ORDER} imported, awaiting payment",
            lambda: f"status {self.order_status(FIRST_ORDER)}",
        )
        self.expect(
            "imported as awaiting payment: nothing reserved yet",
            Levels(10, 0, 10),
            10,
            "while the payment is pending, VTEX holds the reservation itself",
        )

        self.begin("The payment is approved")
        self.call(
            self.store.post(f"/orders/{FIRST_ORDER}/state", json={"state": "payment-approved"}), 200
        )
        self.until(
            lambda: self.order_status(FIRST_ORDER) == "payment_confirmed",
            f"order {FIRST_ORDER} payment confirmed",
            lambda: f"status {self.order_status(FIRST_ORDER)}",
        )
        self.expect("5 reserved; the store is sent 5", Levels(10, 5, 5), 5)

        self.begin("The order is invoiced in the ledger (NF 1001)")
        brt = timezone(timedelta(hours=-3))
        invoice = {
            "number": "NF-1001",
            "key": "35261112345678000199550010000010011000010010",
            "issued_at": datetime.now(brt).replace(microsecond=0).isoformat(),
            "value": f"{5 * PRICE_CENTS / 100:.2f}",
            "tracking_code": "BR123456789BR",
            "tracking_url": "https://rastreamento.correios.com.br/?objeto=BR123456789BR",
        }
        self.call(self.ledger.post(f"/orders/vtex/{FIRST_ORDER}/invoice", json=invoice), 200)
        received = self.until(
            lambda: self._invoice_received(FIRST_ORDER, invoice["number"]),
            "the invoice to reach the store",
            lambda: f"invoices {self.store.get(f'/orders/{FIRST_ORDER}/invoices').json()}",
        )
        self.expect(
            "physical 5, nothing reserved; the invoice reached the store",
            Levels(5, 0, 5),
            5,
            f"store: invoice {received['invoiceNumber']}, value {received['invoiceValue']} "
            f"cents, issued {received['issuanceDate']}, tracking {received['trackingNumber']}; "
            f"order {self.store.get(f'/orders/{FIRST_ORDER}').json()['status']}",
        )

        self.begin(f"A second order of 2 arrives paid (order {SECOND_ORDER})")
        self._place(SECOND_ORDER, 2, "payment-approved")
        self.expect("2 reserved; the store is sent 3", Levels(5, 2, 3), 3)

        self.begin("The shopper cancels it")
        self.call(self.store.post(f"/orders/{SECOND_ORDER}/state", json={"state": "canceled"}), 200)
        self.until(
            lambda: self.order_status(SECOND_ORDER) == "cancelled",
            f"order {SECOND_ORDER} cancelled",
            lambda: f"status {self.order_status(SECOND_ORDER)}",
        )
        self.expect("the reservation is released; the store shows 5 again", Levels(5, 0, 5), 5)

        self.begin("Check what the ledger sent the store")
        requests = self.store.get("/requests").json()
        refused = [r for r in requests if not r["valid"]]
        if refused:
            raise DemoFailed(f"step {self.step}: the store refused {refused[:3]}")
        failed = self.call(self.ledger.get("/platforms/vtex/status"), 200)["deliveries"]["failed"]
        if failed:
            raise DemoFailed(f"step {self.step}: {failed} deliveries failed")
        self.done(f"all {len(requests)} requests the ledger sent VTEX were valid; none failed")

    def _place(self, order_id: str, quantity: int, state: str) -> None:
        order = {
            "order_id": order_id,
            "items": [{"sku": SKU, "quantity": quantity, "price": PRICE_CENTS}],
            "state": state,
            "carrier": CARRIER,
            "warehouse_id": VTEX_WAREHOUSE,
        }
        self.call(self.store.post("/orders", json=order), 201)

    def _invoice_received(self, order_id: str, number: str) -> dict[str, Any] | None:
        for invoice in self.store.get(f"/orders/{order_id}/invoices").json():
            if invoice["invoiceNumber"] == number:
                return invoice
        return None


def run(console: Console, wait: float = 60.0) -> int:
    """Play the demo; 0 when every expectation held, 1 when one did not, 130 on Ctrl-C."""
    children: list[_Child] = []
    console.print(
        "[bold]The seed's worked example[/]: stock 10 in the ledger and the store, the store "
        "sells 5, the order is invoiced; a second order is cancelled.",
        highlight=False,
    )
    with _interruptible(), tempfile.TemporaryDirectory(prefix="ledger-demo-") as temp:
        folder = Path(temp)
        try:
            store_url, checks = _start_emulator(folder, children)
            token = secrets.token_urlsafe(24)
            ledger_url = _start_ledger(folder, token, children)
            console.print(f"   ledger {ledger_url} (SQLite in a temporary folder)", highlight=False)
            console.print(f"   VTEX store emulator {store_url} ({checks})", highlight=False)
            with (
                httpx.Client(
                    base_url=ledger_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
                ) as ledger,
                httpx.Client(base_url=f"{store_url}/_emulator", timeout=30) as store,
            ):
                demo = Demo(console, ledger, store, wait)
                demo.play(store_url)
        except DemoFailed as failure:
            console.print(f"[bold red]✗ {failure}[/]", highlight=False)
            for child in children:
                if tail := child.tail():
                    console.print(f"   last lines of {child.name}'s log:", style="dim")
                    console.print(tail, style="dim", highlight=False, markup=False)
            return 1
        except KeyboardInterrupt:
            console.print("[yellow]interrupted; stopping the ledger and the store[/]")
            return 130
        except httpx.HTTPError as error:
            console.print(f"[bold red]✗ a request failed: {error}[/]", highlight=False)
            return 1
        finally:
            for child in reversed(children):
                _stop(child)
    console.print(
        f"[bold green]Every step held[/] ({demo.step} steps); the ledger and the store are "
        "stopped.",
        highlight=False,
    )
    return 0
