"""The dispatcher: sends each platform what the views say it should show, and keeps trying.

Every tick, per platform, it copies the publisher view's changed rows (and the order list's
changed orders) into the delivery table, claims the due rows (zero stock first) within the
platform's shared request budget, and sends them through the platform's adapter on the
platform's own small thread pool.

Invariants, and why:

- **Every attempt ends in a recorded result.** Whatever an adapter raises (a ``DeliveryError``
  or any other exception: a bug, a value it cannot encode) becomes the delivery's last error,
  scrubbed of the platform's secrets, is logged once and counted, and the delivery is retried;
  nothing is left silently pending.
- **Retryable failures are never permanent.** Only a refusal that repeating cannot change (the
  other 4xx, no ``base_url``) fails a delivery for good; everything else retries with capped,
  jittered backoff for as long as it takes. How a long outage then converges quickly, without
  hammering the platform meanwhile, is in ``adapters.dispatch_rules``.
- **One platform cannot stop another.** A platform whose adapter cannot be built, or whose
  deliveries cannot be filled or claimed, is skipped (its status says why, for
  ``HALT_SECONDS`` at a time, and it is tried again at the next refresh); the others carry on.
  Only when every platform fails at once (the database, most likely) does the tick fail and back
  off.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from adapters.delivery_errors import DeliveryError
from adapters.delivery_store import ORDER, STOCK, Claim, DeliveryStore, holder_name, stock_payload
from adapters.dispatch_rules import Backoff, Outcome, Result, describe, scrub, secrets_in
from ledger.orders import Order
from ledger.platforms import Platform

log = logging.getLogger(__name__)


class PlatformAdapter(Protocol):
    """What the dispatcher sends through. An adapter may also have ``secrets``: the credential
    values it sends, blanked out of every error recorded or logged."""

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

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.backoff_base, self.backoff_cap)


def _seen(platform: Platform) -> dict[str, Any]:
    """What the dispatcher compares to know a platform changed: its settings, and the revision
    of its credentials (which changes with any of them; the values are never compared)."""
    return {**platform.settings, "credentials_revision": platform.credentials_revision}


def _reaches_elsewhere(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("base_url", "credentials_revision", "skus", "type")
    return any(old.get(k) != new.get(k) for k in keys)


def _secrets(platform: Platform | None, adapter: object = None) -> list[str]:
    if platform is None:
        return secrets_in(None, adapter)
    # Credentials read from events of before they left the log, until they are copied.
    legacy = list((platform.legacy_credentials or {}).values())
    return secrets_in(platform.settings, adapter) + legacy


def _what(claim: Claim) -> str:
    where = f" in {claim.scope}" if claim.scope else ""
    return f"{claim.platform} {claim.kind} {claim.subject}{where}"


def _fields(claim: Claim, attempt: int) -> dict[str, Any]:
    # For a structured log formatter; the message says the same in words.
    return {
        "platform": claim.platform,
        "delivery_kind": claim.kind,
        "subject": claim.subject,
        "scope": claim.scope,
        "attempt": attempt,
    }


@dataclass
class _Platform:
    platform: Platform
    adapter: PlatformAdapter | None  # None while it cannot be built
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
        # Finished attempts, recorded together by the loop: one transaction, not one each.
        self.results: list[Result] = []
        self.last_error: str | None = None
        # Platforms that cannot be served now: what was logged, and when the halt was said.
        self.troubles: dict[str, tuple[str, float]] = {}

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
            adapters = [entry.adapter] if entry.adapter is not None else []
            for adapter in adapters + entry.retired:
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
            if busy:
                # Claims went out: go again for what they left after one tick, not at once. A
                # round costs a few transactions whatever it carries; under a stream of changes
                # back-to-back rounds each carried one or two, and the dispatcher was the
                # background process's busiest thread.
                self.stopping.wait(self.config.tick)
            else:
                # A finished send wakes the loop early: its slot is free again.
                self.wake.wait(self.config.tick)
                self.wake.clear()

    # -- one round ---------------------------------------------------------------------------

    def tick(self) -> bool:
        """Record finished attempts, then fill and send once for every platform; True if
        anything was claimed."""
        self.flush()
        self._refresh()
        busy = False
        served = failed = 0
        failure: Exception | None = None
        for name, entry in list(self.platforms.items()):
            if entry.adapter is None:
                continue
            served += 1
            try:
                busy = self._dispatch(name, entry, entry.adapter) or busy
            except Exception as error:
                failed, failure = failed + 1, error
                for kind in (STOCK, ORDER):  # read again: the transaction may not have landed
                    self.cursors.pop((name, kind), None)
                self._trouble(name, "its deliveries could not be dispatched", error, entry)
            else:
                self._untroubled(name)
        if failure is not None and failed == served:
            raise failure  # every platform at once: the database, most likely; back off
        return busy

    def _dispatch(self, name: str, entry: _Platform, adapter: PlatformAdapter) -> bool:
        self.fill(name)
        with self.lock:
            free = self.config.in_flight - entry.in_flight
        rate = float(entry.platform.settings.get("rate_limit") or self.config.default_rate)
        # The budget is taken with the claim, in one transaction: a claim never waits for the
        # rate (it could lapse, and another sender's newer value land before it).
        claims = self.store.claim(
            name,
            self.holder,
            free,
            self.config.lease,
            gap=self.config.gap,
            rate=rate,
            backoff=self.config.backoff,
            rng=self.rng,
        )
        for claim in claims:
            with self.lock:
                entry.in_flight += 1
            try:
                entry.pool.submit(self._send, entry, adapter, claim)
            except RuntimeError:  # the pool is shutting down
                with self.lock:
                    entry.in_flight -= 1
                self.store.release([claim], self.holder)
        return bool(claims)

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
        if now - self.refreshed < self.config.refresh and (self.platforms or self.troubles):
            return
        self.refreshed = now
        for name in self.platform_names():
            try:
                platform = self.load_platform(name)
            except Exception as error:
                # The database, most likely: the adapter in hand is still good, and is kept.
                self._trouble(name, "its settings could not be read", error, None)
                continue
            try:
                self._refresh_platform(name, platform)
            except Exception as error:
                entry = self.platforms.get(name)
                if entry is not None and entry.adapter is not None:
                    # Sends in flight keep the adapter they started with; none start now.
                    entry.retired.append(entry.adapter)
                    entry.adapter = None
                self._trouble(name, "its adapter could not be built", error, entry, platform)

    def _refresh_platform(self, name: str, platform: Platform) -> None:
        entry = self.platforms.get(name)
        if (
            entry is not None
            and entry.adapter is not None
            and _seen(entry.platform) == _seen(platform)
        ):
            return
        adapter = self.adapter_for(platform)
        if adapter is None:
            return
        # Whatever another process did while this one was not looking: rows of warehouses
        # no longer mapped go, and rows failed for reasons the new settings may fix, or
        # delivered to a SKU, account or credentials that changed, are sent again.
        try:
            self.store.drop_unmapped(name, set(platform.settings.get("warehouses") or {}))
            if entry is not None and _reaches_elsewhere(_seen(entry.platform), _seen(platform)):
                self.store.resend_all(name)
        except Exception:
            adapter.close()
            raise
        if entry is None:
            pool = ThreadPoolExecutor(self.config.in_flight, thread_name_prefix=f"send-{name}")
            self.platforms[name] = _Platform(platform, adapter, pool)
        else:
            if entry.adapter is not None:
                # Sends in flight keep the adapter they started with; it closes when we stop.
                entry.retired.append(entry.adapter)
            entry.platform, entry.adapter = platform, adapter
        self._untroubled(name)

    # -- a platform that cannot be served ----------------------------------------------------

    def _trouble(
        self,
        name: str,
        what: str,
        error: Exception,
        entry: _Platform | None,
        platform: Platform | None = None,
    ) -> None:
        """Log a platform's problem once (again only if it changes), and keep it shown in the
        platform's status while it lasts."""
        platform = platform or (entry.platform if entry is not None else None)
        message = scrub(f"{what}: {describe(error)}", _secrets(platform))
        logged, said = self.troubles.get(name, (None, 0.0))
        now = time.monotonic()
        if message != logged:
            log.warning(
                "platform %s: %s; the other platforms carry on, and it is tried again",
                name,
                message,
                extra={"platform": name},
            )
        if message != logged or now - said >= self.config.refresh:
            try:
                self.store.halt(name, message)
                said = now
            except Exception as failure:  # the database itself: the tick's failure says more
                log.debug("platform %s: could not record its halt: %s", name, failure)
        self.troubles[name] = (message, said)

    def _untroubled(self, name: str) -> None:
        if name not in self.troubles:
            return
        try:
            self.store.resume(name)
        except Exception:  # shown a little longer; said again at the next success
            return
        del self.troubles[name]
        log.warning("platform %s can be served again", name, extra={"platform": name})

    # -- one delivery ------------------------------------------------------------------------

    def flush(self) -> None:
        with self.lock:
            results, self.results = self.results, []
        if not results:
            return
        try:
            changes = self.store.record(self.holder, results, self.config.backoff)
        except Exception:
            with self.lock:  # kept for the next round; the claims hold meanwhile
                self.results[:0] = results
            raise
        for name, change in changes.items():
            if change.recovered_after is not None:
                log.warning(
                    "platform %s answers again after %.0f s of failures; every delivery "
                    "backing off is due now",
                    name,
                    change.recovered_after,
                    extra={"platform": name},
                )
            if change.started_failing:
                log.warning(
                    "platform %s is failing: %s; its deliveries wait, and one probe at a time "
                    "is sent until it answers",
                    name,
                    change.error,
                    extra={"platform": name},
                )

    def _send(self, entry: _Platform, adapter: PlatformAdapter, claim: Claim) -> None:
        result: Result | None = None
        try:
            result = self._deliver(adapter, claim)
        except _BeforeSending as error:
            # Our database or our code, before any request: retried, but no word about the
            # platform, which a blip here must not put into probing.
            result = replace(self._crashed(entry, adapter, claim, error.cause), request=False)
        except Exception as error:  # a bug must not kill the pool thread or lose the attempt
            result = self._crashed(entry, adapter, claim, error)
        finally:
            if result is not None:
                with self.lock:
                    self.results.append(result)
            with self.lock:
                entry.in_flight -= 1
            self.wake.set()

    def _deliver(self, adapter: PlatformAdapter, claim: Claim) -> Result | None:
        if claim.kind == STOCK and claim.sent == claim.payload:
            # The platform already shows this value (say 5 → 4 → 5 between two sends).
            return Result(claim, Outcome.DELIVERED, time.time(), sent=claim.payload, request=False)
        order = None
        if claim.kind == ORDER:
            try:
                order = self.load_order(claim.platform, claim.subject)
                changed = adapter.order_changed(order, claim.sent)
            except Exception as error:
                raise _BeforeSending(error) from error
            if not changed:
                return Result(
                    claim, Outcome.DELIVERED, time.time(), sent=claim.sent or {}, request=False
                )
        # A send that could still be in flight when its claim lapses might land after a newer
        # value another sender claimed: a claim that sat too long (a stalled process) goes back.
        if time.time() > claim.until - self.config.timeout - 1:
            self.store.release([claim], self.holder)
            return None
        try:
            if claim.kind == STOCK:
                adapter.push_stock(claim.payload)
                sent = claim.payload
            else:
                assert order is not None
                sent = adapter.push_order(order, claim.sent)
        except DeliveryError as error:
            return self._failed(adapter, claim, error)
        return Result(claim, Outcome.DELIVERED, time.time(), sent=sent)

    def _failed(self, adapter: PlatformAdapter, claim: Claim, error: DeliveryError) -> Result:
        entry = self.platforms.get(claim.platform)
        message = scrub(str(error), _secrets(entry.platform if entry else None, adapter))
        attempt = claim.attempts + 1
        now = time.time()
        if not error.retryable:
            log.warning(
                "%s refused at attempt %d, failed until retried: %s",
                _what(claim),
                attempt,
                message,
                extra=_fields(claim, attempt),
            )
            return Result(claim, Outcome.REFUSED, now, error=message, status=error.status)
        delay = self.config.backoff.delay(attempt, error.retry_after, self.rng)
        log.info(
            "%s attempt %d failed, due again in %.1f s: %s",
            _what(claim),
            attempt,
            delay,
            message,
            extra=_fields(claim, attempt),
        )
        return Result(
            claim,
            Outcome.RETRYABLE,
            now,
            error=message,
            retry_at=now + delay,
            status=error.status,
            retry_after=error.retry_after,
        )

    def _crashed(
        self, entry: _Platform, adapter: PlatformAdapter, claim: Claim, error: Exception
    ) -> Result:
        message = scrub(describe(error), _secrets(entry.platform, adapter))
        attempt = claim.attempts + 1
        delay = self.config.backoff.delay(attempt, None, self.rng)
        # A crash is a defect: the first of a row's failures says so loudly; its retries, like
        # any other, quietly.
        level = logging.WARNING if claim.attempts == 0 else logging.INFO
        log.log(
            level,
            "%s attempt %d crashed, due again in %.1f s: %s",
            _what(claim),
            attempt,
            delay,
            message,
            extra=_fields(claim, attempt),
        )
        now = time.time()
        return Result(claim, Outcome.UNEXPECTED, now, error=message, retry_at=now + delay)


class _BeforeSending(Exception):
    """An attempt failed before any request reached the platform."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause
