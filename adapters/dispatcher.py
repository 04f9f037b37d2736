"""The dispatcher: sends each platform what the views say it should show, and keeps trying.

Every tick, per platform, it copies the publisher view's changed rows (and the order list's
changed orders) into the delivery table, claims the due rows (zero stock first) and sends them
through the platform's adapter on a small thread pool, at the platform's request rate. A failure
is retried with exponential backoff and jitter (or after ``Retry-After``); after
``max_attempts`` the row is failed, shown in the platform's status, and waits for a retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from adapters.delivery_errors import DeliveryError
from adapters.delivery_store import ORDER, STOCK, Claim, DeliveryStore, holder_name, stock_payload
from ledger.orders import Order
from ledger.platforms import Platform

log = logging.getLogger(__name__)


class PlatformAdapter(Protocol):
    def push_stock(self, payload: dict[str, Any]) -> None:
        """Set the platform's quantity of one SKU in one warehouse; raise DeliveryError."""

    def order_changed(self, order: Order, sent: dict[str, Any] | None) -> bool:
        """Whether ``order`` holds news for the platform beyond ``sent``."""
        ...

    def push_order(self, order: Order, sent: dict[str, Any] | None) -> dict[str, Any]:
        """Tell the platform what changed on ``order`` since ``sent`` (what it last accepted);
        return the new record of what it has. Raise DeliveryError."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DispatchConfig:
    max_attempts: int = 10
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    tick: float = 0.05
    gap: float = 0.25  # least time between two sends of one SKU (VTEX: 423 within ms)
    timeout: float = 10.0  # of one platform request
    lease: float = 25.0  # of a claim: longer than a request can take
    in_flight: int = 16  # requests at once per platform
    default_rate: float = 50.0  # requests per second per platform, unless configured
    page: int = 500
    refresh: float = 2.0  # how often platform settings are re-read


def _seen(platform: Platform) -> dict[str, Any]:
    """What the dispatcher compares to know a platform changed: its settings, and the revision
    of its credentials (which changes with any of them; the values are never compared)."""
    return {**platform.settings, "credentials_revision": platform.credentials_revision}


def _reaches_elsewhere(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("base_url", "credentials_revision", "skus", "type")
    return any(old.get(k) != new.get(k) for k in keys)


def backoff_delay(
    attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds before attempt ``attempt + 1``: exponential with jitter, so many SKUs failing
    together do not come back together; at least what the platform asked for."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after + rng.uniform(0, min(1.0, retry_after / 10 + 0.05)))
    return delay


class RateLimiter:
    """A token bucket shared by every sending thread of one platform; a 429 pauses it all."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = max(rate, 0.1)
        self.burst = burst if burst is not None else max(1.0, self.rate / 10)
        self.tokens = self.burst
        self.stamp = time.monotonic()
        self.paused_until = 0.0
        self.lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """Up to ``wanted`` tokens available now (none while paused), without waiting."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if now < self.paused_until:
                return 0
            taken = max(0, min(wanted, int(self.tokens)))
            self.tokens -= taken
            return taken

    def give_back(self, tokens: int) -> None:
        with self.lock:
            self.tokens = min(self.burst, self.tokens + tokens)

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.paused_until = max(self.paused_until, time.monotonic() + seconds)


@dataclass
class _Platform:
    platform: Platform
    adapter: PlatformAdapter
    limiter: RateLimiter
    # Its own senders: a platform paused by a 429 or timing out must not hold another's.
    pool: ThreadPoolExecutor
    in_flight: int = 0
    retired: list[PlatformAdapter] = field(default_factory=list)


class Dispatcher:
    """One per process; any number of processes may run one against the same database."""

    def __init__(
        self,
        store: DeliveryStore,
        platform_names: Callable[[], list[str]],
        load_platform: Callable[[str], Platform],
        desired: Callable[..., list[dict[str, Any]]],
        changed_orders: Callable[..., list[dict[str, Any]]],
        load_order: Callable[[str, str], Order],
        adapter_for: Callable[[Platform], PlatformAdapter | None],
        config: DispatchConfig | None = None,
    ) -> None:
        self.store = store
        self.platform_names = platform_names
        self.load_platform = load_platform
        self.desired = desired
        self.changed_orders = changed_orders
        self.load_order = load_order
        self.adapter_for = adapter_for
        self.config = config or DispatchConfig()
        self.holder = holder_name()
        self.platforms: dict[str, _Platform] = {}
        self.cursors: dict[tuple[str, str], tuple[int, str, str] | None] = {}
        self.refreshed = 0.0
        self.rng = random.Random()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()
        # Finished sends, recorded together by the loop: one transaction, not one each.
        self.sent: list[tuple[Claim, dict[str, Any], float]] = []
        self.failed: list[tuple[Claim, str, float, bool, float]] = []
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=15)
        for entry in self.platforms.values():
            entry.pool.shutdown(wait=True, cancel_futures=True)
        try:
            self.flush()
        except Exception:  # the claims expire and another dispatcher sends them again
            log.exception("could not record the last deliveries")
        for entry in self.platforms.values():
            for adapter in (entry.adapter, *entry.retired):
                adapter.close()

    def _run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                busy = self.tick()
                failures = 0
                self.last_error = None
            except Exception as error:  # the loop must outlive a database outage
                failures += 1
                self.cursors.clear()  # read them again: the database may have lost a commit
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("dispatcher tick failed (%d in a row)", failures)
                self.stopping.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))
                continue
            if not busy:
                # A finished send wakes the loop early: its slot is free again.
                self.wake.wait(self.config.tick)
                self.wake.clear()

    # -- one round ---------------------------------------------------------------------------

    def tick(self) -> bool:
        """Record finished sends, then fill and send once for every platform; True if anything
        was claimed."""
        self.flush()
        self._refresh()
        busy = False
        for name, entry in list(self.platforms.items()):
            self.fill(name)
            with self.lock:
                free = self.config.in_flight - entry.in_flight
            # Rate first, then claims: a claim waiting for the rate could lapse, and another
            # sender's newer value could land before it.
            tokens = entry.limiter.take(free)
            claims = self.store.claim(
                name, self.holder, tokens, self.config.lease, gap=self.config.gap
            )
            entry.limiter.give_back(tokens - len(claims))
            for claim in claims:
                with self.lock:
                    entry.in_flight += 1
                try:
                    entry.pool.submit(self._send, entry, claim)
                except RuntimeError:  # the pool is shutting down
                    with self.lock:
                        entry.in_flight -= 1
                    self.store.release([claim], self.holder)
            busy = busy or bool(claims)
        return busy

    def fill(self, name: str) -> None:
        """Copy what changed in the views since this platform's cursors into its deliveries."""
        page = self.config.page
        while True:
            after = self._cursor(name, STOCK)
            rows = self.desired(name, after=after, limit=page)
            if not rows:
                break
            last = rows[-1]
            self.store.enqueue(
                name,
                STOCK,
                [
                    (
                        r["sku"],
                        r["warehouse"],
                        stock_payload(r),
                        r["position"],
                        r["quantity"] == Decimal(0),
                    )
                    for r in rows
                ],
                (last["position"], last["sku"], last["warehouse"]),
            )
            self.cursors[(name, STOCK)] = (last["position"], last["sku"], last["warehouse"])
            if len(rows) < page:
                break
        while True:
            cursor = self._cursor(name, ORDER)
            after = None if cursor is None else (cursor[0], cursor[1])
            orders = self.changed_orders(name, after=after, limit=page)
            if not orders:
                break
            last = orders[-1]
            self.store.enqueue(
                name,
                ORDER,
                [
                    (o["order_id"], "", {"order_id": o["order_id"]}, o["position"], False)
                    for o in orders
                ],
                (last["position"], last["order_id"], ""),
            )
            self.cursors[(name, ORDER)] = (last["position"], last["order_id"], "")
            if len(orders) < page:
                break

    def _cursor(self, name: str, kind: str) -> tuple[int, str, str] | None:
        # Read once, then kept here: another dispatcher moving the stored cursor on only
        # means this one enqueues some rows again, which changes nothing.
        if (name, kind) not in self.cursors:
            self.cursors[(name, kind)] = self.store.cursor(name, kind)
        return self.cursors[(name, kind)]

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self.refreshed < self.config.refresh and self.platforms:
            return
        self.refreshed = now
        for name in self.platform_names():
            platform = self.load_platform(name)
            entry = self.platforms.get(name)
            if entry is not None and _seen(entry.platform) == _seen(platform):
                continue
            adapter = self.adapter_for(platform)
            if adapter is None:
                continue
            rate = float(platform.settings.get("rate_limit") or self.config.default_rate)
            # Whatever another process did while this one was not looking: rows of warehouses
            # no longer mapped go, and rows failed for reasons the new settings may fix, or
            # delivered to a SKU, account or credentials that changed, are sent again.
            self.store.drop_unmapped(name, set(platform.settings.get("warehouses") or {}))
            if entry is None:
                pool = ThreadPoolExecutor(self.config.in_flight, thread_name_prefix=f"send-{name}")
                self.platforms[name] = _Platform(platform, adapter, RateLimiter(rate), pool)
                continue
            if _reaches_elsewhere(_seen(entry.platform), _seen(platform)):
                self.store.resend_all(name)
            # Sends in flight keep the adapter they started with; it closes when we stop.
            entry.retired.append(entry.adapter)
            entry.platform, entry.adapter, entry.limiter = platform, adapter, RateLimiter(rate)

    # -- one delivery ------------------------------------------------------------------------

    def flush(self) -> None:
        with self.lock:
            sent, self.sent = self.sent, []
            failed, self.failed = self.failed, []
        if not sent and not failed:
            return
        try:
            self.store.record(self.holder, sent, failed)
        except Exception:
            with self.lock:  # kept for the next round; the claims hold meanwhile
                self.sent[:0], self.failed[:0] = sent, failed
            raise

    def _send(self, entry: _Platform, claim: Claim) -> None:
        try:
            self._deliver(entry, claim)
        except Exception:  # a bug must not kill the pool thread or lose the claim
            log.exception("delivery %s crashed", claim.key)
            self._failed(entry, claim, "internal error: see the log", None, retryable=True)
        finally:
            with self.lock:
                entry.in_flight -= 1
            self.wake.set()

    def _done(self, claim: Claim, sent: dict[str, Any]) -> None:
        with self.lock:
            self.sent.append((claim, sent, time.time()))

    def _deliver(self, entry: _Platform, claim: Claim) -> None:
        if claim.kind == STOCK and claim.sent == claim.payload:
            # The platform already shows this value (say 5 → 4 → 5 between two sends).
            self._done(claim, claim.payload)
            return
        order = None
        if claim.kind == ORDER:
            order = self.load_order(claim.platform, claim.subject)
            if not entry.adapter.order_changed(order, claim.sent):
                self._done(claim, claim.sent or {})
                return
        # A send that could still be in flight when its claim lapses might land after a newer
        # value another sender claimed: a claim that sat too long (a stalled process) goes back.
        if time.time() > claim.until - self.config.timeout - 1:
            self.store.release([claim], self.holder)
            return
        try:
            if claim.kind == STOCK:
                entry.adapter.push_stock(claim.payload)
                sent = claim.payload
            else:
                assert order is not None
                sent = entry.adapter.push_order(order, claim.sent)
        except DeliveryError as error:
            if error.status == 429:
                wait = error.retry_after if error.retry_after is not None else 1.0
                entry.limiter.pause(min(wait, self.config.backoff_cap))
            self._failed(entry, claim, str(error), error.retry_after, error.retryable)
            return
        self._done(claim, sent)

    def _failed(
        self,
        entry: _Platform,
        claim: Claim,
        message: str,
        retry_after: float | None,
        retryable: bool,
    ) -> None:
        attempt = claim.attempts + 1
        give_up = not retryable or attempt >= self.config.max_attempts
        delay = backoff_delay(
            attempt, self.config.backoff_base, self.config.backoff_cap, retry_after, self.rng
        )
        if give_up:
            log.warning(
                "delivery %s failed for good after %d attempt(s): %s", claim.key, attempt, message
            )
        else:
            log.info(
                "delivery %s attempt %d failed, retry in %.2fs: %s",
                claim.key,
                attempt,
                delay,
                message,
            )
        now = time.time()
        with self.lock:
            self.failed.append((claim, message, now + delay, give_up, now))
