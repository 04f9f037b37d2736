"""Periodic platform work: the order import robot, the payment follow-up and drift repair.

Each job of each platform runs in one process at a time, whichever takes its lease first
(``job_leases``), every so many seconds; its last report shows in the platform's status.

One platform cannot stop another's jobs: each job runs on its own thread and reports its own
errors, and a platform whose jobs cannot even be set up (its settings or client fail) is logged
once, shown in its status as the ``setup`` job's report, skipped, and tried again next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters.delivery_errors import DeliveryError
from adapters.delivery_store import STOCK, DeliveryStore, holder_name
from adapters.dispatch_rules import describe, scrub, secrets_in
from adapters.vtex_orders import vtex_quantity
from adapters.vtex_platform import AWAITING, VtexPlatform
from ledger.ordering import OrderDesk
from ledger.platforms import Platform, PlatformType

log = logging.getLogger(__name__)

# How often each job runs unless the platform's settings say otherwise (seconds).
DEFAULT_EVERY = {"feed": 10.0, "payments": 60.0, "drift": 600.0}
SETUP = "setup"  # the report of a platform whose jobs cannot be set up
SETTING = {
    "feed": "feed_interval_seconds",
    "payments": "payment_check_seconds",
    "drift": "drift_check_seconds",
}


@dataclass(frozen=True)
class Job:
    name: str
    every: float
    run: Callable[[], dict[str, Any]]


def repair_drift(store: DeliveryStore, vtex: VtexPlatform, page: int = 500) -> dict[str, Any]:
    """Read what VTEX shows for every SKU it was last sent, and send again where it differs:
    the ledger is the truth. Rows with a send pending are left to that send."""
    report: dict[str, Any] = {"checked": 0, "repaired": [], "errors": []}
    after: tuple[str, str] | None = None
    while True:
        rows = store.delivered_stock(vtex.name, after, page)
        for row in rows:
            report["checked"] += 1
            wanted = vtex_quantity(Decimal(row["quantity"]))
            try:
                shown = vtex.read_quantity(row["sku"], row["platform_warehouse"])
            except DeliveryError as error:
                report["errors"].append(f"{row['sku']}@{row['warehouse']}: {error}")
                continue
            if shown != wanted:
                store.resend(vtex.name, STOCK, row["sku"], row["warehouse"])
                report["repaired"].append(
                    {
                        "sku": row["sku"],
                        "warehouse": row["warehouse"],
                        "shown": shown,
                        "ledger": wanted,
                    }
                )
        if len(rows) < page:
            return report
        after = (rows[-1]["sku"], rows[-1]["warehouse"])


class PlatformJobs:
    def __init__(
        self,
        store: DeliveryStore,
        orders: OrderDesk,
        platform_names: Callable[[], list[str]],
        open_orders: Callable[[str, tuple[str, ...]], list[str]],
        vtex_for: Callable[[Platform], VtexPlatform],
    ) -> None:
        self.store = store
        self.orders = orders
        self.platform_names = platform_names
        self.open_orders = open_orders
        self.vtex_for = vtex_for
        self.holder = holder_name()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="platform-job")
        self.running: set[str] = set()
        self.lock = threading.Lock()
        self.broken: dict[str, str] = {}  # platform → why its jobs cannot be set up
        self.failures: dict[str, str] = {}  # job → its last failure, while it repeats

    def jobs(self, platform: Platform) -> list[Job]:
        if platform.type is not PlatformType.VTEX or not platform.settings.get("base_url"):
            return []
        vtex = self.vtex_for(platform)

        def every(job: str) -> float:
            return float(platform.settings.get(SETTING[job]) or DEFAULT_EVERY[job])

        return [
            Job("feed", every("feed"), lambda: vtex.read_feed(self.orders)),
            Job(
                "payments",
                every("payments"),
                lambda: vtex.follow_payments(
                    self.orders, self.open_orders(platform.name, AWAITING)
                ),
            ),
            Job("drift", every("drift"), lambda: repair_drift(self.store, vtex)),
        ]

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="platform-jobs", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=15)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run_due()
            except Exception:  # a database outage must not end the robot
                log.exception("platform jobs failed; trying again")
            self.stopping.wait(0.5)

    def run_due(self, now: float | None = None) -> None:
        """Start every due job on its own thread: a long drift repair must not hold up the
        order robot. A job still running here is not started again."""
        for name in self.platform_names():
            platform: Platform | None = None
            try:
                platform = self.orders.platform(name)
                jobs = self.jobs(platform)
            except Exception as error:
                self._cannot_set_up(name, platform, error)
                continue
            self._set_up(name)
            for job in jobs:
                self._start(f"{name}:{job.name}", job, now)

    def _start(self, key: str, job: Job, now: float | None) -> None:
        with self.lock:
            if key in self.running:
                return
        if not self.store.take_job(key, self.holder, job.every, now):
            return
        with self.lock:
            self.running.add(key)
        try:
            self.pool.submit(self._run_job, key, job)
        except RuntimeError:  # stopping
            with self.lock:
                self.running.discard(key)

    def _cannot_set_up(self, name: str, platform: Platform | None, error: Exception) -> None:
        settings = platform.settings if platform is not None else None
        legacy = list((platform.legacy_credentials or {}).values()) if platform else []
        secrets = secrets_in(settings) + legacy
        message = scrub(f"its jobs could not be set up: {describe(error)}", secrets)
        if self.broken.get(name) == message:
            return
        log.warning(
            "platform %s: %s; the other platforms' jobs carry on, and it is tried again",
            name,
            message,
            extra={"platform": name},
        )
        self.broken[name] = message
        try:
            self.store.report_job(f"{name}:{SETUP}", {"errors": [message]})
        except Exception as failure:  # the database: the log said it
            log.debug("platform %s: could not report: %s", name, failure)

    def _set_up(self, name: str) -> None:
        if name not in self.broken:
            return
        try:
            self.store.report_job(f"{name}:{SETUP}", None)
        except Exception as failure:
            log.debug("platform %s: could not clear its report: %s", name, failure)
            return
        del self.broken[name]
        log.warning("platform %s: its jobs run again", name, extra={"platform": name})

    def _run_job(self, key: str, job: Job) -> None:
        started = time.time()
        try:
            try:
                report = job.run()
            except DeliveryError as error:
                report = {"errors": [str(error)]}
                # A platform down for an hour fails its feed every few seconds: said loudly
                # once, then quietly while it stays the same.
                repeated = self.failures.get(key) == str(error)
                log.log(logging.INFO if repeated else logging.WARNING, "%s failed: %s", key, error)
                self.failures[key] = str(error)
            except Exception as error:
                report = {"errors": [f"{type(error).__name__}: {error}"]}
                log.exception("%s failed", key)
            else:
                self.failures.pop(key, None)
            report["seconds"] = round(time.time() - started, 3)
            self.store.job_done(key, report)
        except Exception:
            log.exception("%s: could not record its report", key)
        finally:
            with self.lock:
                self.running.discard(key)
