"""The dispatcher with test platforms, on real SQLite and PostgreSQL: a claim that the rate
limit has eaten is never sent late; a crashing adapter's deliveries are reported, counted and
retried until they go through; a platform that cannot be served stops no other, in the
dispatcher or in the platform jobs."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, generate_latest

from adapters.delivery_metrics import DeliveryCollector
from adapters.delivery_store import ORDER, STOCK, DeliveryStore
from adapters.dispatcher import DispatchConfig, Dispatcher
from adapters.platform_jobs import PlatformJobs
from api.wiring import Container
from ledger.platforms import Platform
from tests.waiting import eventually

FAST = DispatchConfig(backoff_base=0.05, backoff_cap=0.3, tick=0.02, gap=0, refresh=0.2)


class Recorder:
    """A platform that takes a while to answer and remembers every value it was sent."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.lock = threading.Lock()

    def push_stock(self, payload: dict[str, Any]) -> None:
        time.sleep(0.2)
        with self.lock:
            self.received.append(payload["quantity"])

    def order_changed(self, order: Any, sent: Any) -> bool:
        return False

    def push_order(self, order: Any, sent: Any) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def test_a_claim_outlived_by_its_wait_for_the_rate_is_not_sent(container: Container) -> None:
    store = container.deliveries
    platform = Platform(
        name="shop", settings={"type": "webhook", "rate_limit": 1, "warehouses": {"main": "W"}}
    )
    recorder = Recorder()
    dispatcher = Dispatcher(
        store,
        lambda: ["shop"],
        lambda name: platform,
        lambda name, after=None, limit=0: [],
        lambda name, after=None, limit=0: [],
        lambda platform, order_id: None,  # type: ignore[arg-type,return-value]
        lambda p: recorder,
        # Claims lapse long before the rate (1 request a second) lets all four go.
        DispatchConfig(lease=1.5, timeout=0.2, in_flight=4, gap=0, tick=0.02),
    )
    for n, quantity in enumerate(["10", "9", "8", "7"]):
        sku = f"S{n}"
        payload = {"sku": sku, "warehouse": "main", "platform_warehouse": "W", "quantity": quantity}
        store.enqueue("shop", STOCK, [(sku, "main", payload, n + 1, False)], (n + 1, sku, "main"))
    payload = {"sku": "S0", "warehouse": "main", "platform_warehouse": "W", "quantity": "5"}
    dispatcher.start()
    try:
        time.sleep(0.5)
        store.enqueue("shop", STOCK, [("S0", "main", payload, 10, False)], (10, "S0", "main"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = store.delivery("shop", STOCK, "S0", "main")
            if store.status("shop")["pending"] == 0 and row and row["state"] == "sent":
                break
            time.sleep(0.1)
    finally:
        dispatcher.stop()
    s0 = [q for q in recorder.received if q in ("10", "5")]
    assert s0[-1] == "5", recorder.received  # the newest value landed last
    assert store.status("shop")["pending"] == 0
    assert store.status("shop")["delivered"] == 4, store.status("shop")


def owe(store: DeliveryStore, platform: str, sku: str, quantity: str, position: int) -> None:
    payload = {"sku": sku, "warehouse": "main", "platform_warehouse": "W", "quantity": quantity}
    store.enqueue(
        platform, STOCK, [(sku, "main", payload, position, False)], (position, sku, "main")
    )


class Crashing(Recorder):
    """A platform adapter with a bug (it cannot encode what it is given) until it is fixed."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True
        self.secrets = ("tok-123456",)

    def push_stock(self, payload: dict[str, Any]) -> None:
        if self.broken:
            raise TypeError("Object of type datetime is not JSON serializable (tok-123456)")
        with self.lock:
            self.received.append(payload["quantity"])


def dispatcher_for(
    store: DeliveryStore, platforms: dict[str, Platform], adapter_for: Any
) -> Dispatcher:
    return Dispatcher(
        store,
        lambda: sorted(platforms),
        lambda name: platforms[name],
        lambda name, after=None, limit=0: [],
        lambda name, after=None, limit=0: [],
        lambda platform, order_id: None,  # type: ignore[arg-type,return-value]
        adapter_for,
        FAST,
    )


def test_a_crashing_adapter_is_reported_counted_and_retried_until_it_delivers(
    container: Container,
) -> None:
    store = container.deliveries
    shop = Platform(name="shop", settings={"type": "webhook", "warehouses": {"main": "W"}})
    adapter = Crashing()
    dispatcher = dispatcher_for(store, {"shop": shop}, lambda p: adapter)
    owe(store, "shop", "A", "7", 1)
    dispatcher.start()
    try:
        retrying = eventually(
            lambda: [d for d in store.status("shop")["retrying_deliveries"] if d["attempts"] >= 2],
            "the crash is retried",
        )
        [delivery] = retrying
        assert delivery["last_error"].startswith("TypeError: Object of type datetime")
        assert "test_dispatcher.py:" in delivery["last_error"]  # where it happened
        assert "tok-123456" not in delivery["last_error"]  # scrubbed
        assert delivery["first_failed_at"] is not None
        status = store.status("shop")
        assert (status["pending"], status["failed"]) == (0, 0)
        assert not status["failing"]  # one delivery's crash, not the platform's outage
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DeliveryCollector(store))  # type: ignore[arg-type]
        metrics = generate_latest(registry).decode()
        assert 'ledger_platform_deliveries{platform="shop",state="retrying"} 1.0' in metrics
        crashes = (
            'ledger_platform_delivery_attempts_total{outcome="unexpected_error",platform="shop"}'
        )
        assert any(
            line.startswith(crashes) and float(line.split()[-1]) >= 2
            for line in metrics.splitlines()
        ), metrics
        adapter.broken = False  # the cause is gone
        eventually(lambda: store.status("shop")["delivered"] == 1, "delivered at last")
    finally:
        dispatcher.stop()
    assert adapter.received == ["7"]
    assert store.status("shop")["retrying"] == 0


def test_our_own_database_failing_before_a_send_says_nothing_about_the_platform(
    container: Container,
) -> None:
    store = container.deliveries
    shop = Platform(name="shop", settings={"type": "webhook", "warehouses": {"main": "W"}})
    adapter = Recorder()
    dispatcher = dispatcher_for(store, {"shop": shop}, lambda p: adapter)

    def load_order(platform: str, order_id: str) -> Any:
        raise psycopg.OperationalError("connection to the ledger's database lost")

    dispatcher.load_order = load_order  # type: ignore[method-assign,assignment]
    for n in range(4):
        order = f"o{n}"
        store.enqueue(
            "shop", ORDER, [(order, "", {"order_id": order}, n + 1, False)], (n + 1, order, "")
        )
    dispatcher.start()
    try:
        eventually(
            lambda: (
                len([d for d in store.status("shop")["retrying_deliveries"] if d["attempts"] >= 2])
                == 4
            ),
            "every order retried",
        )
        status = store.status("shop")
        assert not status["failing"], status  # the platform was never asked anything
        assert status["failed"] == 0
        assert (
            "connection to the ledger's database lost"
            in status["retrying_deliveries"][0]["last_error"]
        )
    finally:
        dispatcher.stop()


def test_a_platform_that_cannot_be_served_stops_no_other(container: Container) -> None:
    store = container.deliveries
    platforms = {
        name: Platform(name=name, settings={"type": "webhook", "warehouses": {"main": "W"}})
        for name in ("bad", "good")
    }
    good, fixed = Recorder(), threading.Event()

    def adapter_for(platform: Platform) -> Recorder:
        if platform.name == "bad" and not fixed.is_set():
            raise ValueError("credentials unreadable")
        return good if platform.name == "good" else Recorder()

    dispatcher = dispatcher_for(store, platforms, adapter_for)
    owe(store, "bad", "A", "1", 1)
    owe(store, "good", "A", "2", 2)
    dispatcher.start()
    try:
        eventually(lambda: store.status("good")["delivered"] == 1, "the good platform delivers")
        bad = eventually(
            lambda: (found := store.status("bad"))["halted"] and found, "the bad one is halted"
        )
        assert bad["failing"]
        assert "credentials unreadable" in bad["halted"]
        assert bad["pending"] == 1
        owe(store, "good", "B", "3", 3)  # and keeps delivering
        eventually(lambda: store.status("good")["delivered"] == 2, "the good one carries on")
        fixed.set()  # tried again at the next refresh
        eventually(lambda: store.status("bad")["delivered"] == 1, "the bad one recovers")
        assert not store.status("bad")["failing"]
    finally:
        dispatcher.stop()


class _Desk:
    def __init__(self, platforms: dict[str, Platform]) -> None:
        self.platforms = platforms

    def platform(self, name: str) -> Platform:
        return self.platforms[name]


class _Robot:
    def read_feed(self, orders: Any) -> dict[str, Any]:
        return {"read": 0}

    def follow_payments(self, orders: Any, order_ids: list[str]) -> dict[str, Any]:
        return {"checked": len(order_ids)}


def test_one_platforms_broken_settings_stop_no_other_platforms_jobs(
    container: Container,
) -> None:
    store = container.deliveries
    settings = {"type": "vtex", "base_url": "http://127.0.0.1:9", "import_from": "awaiting_payment"}
    platforms = {name: Platform(name=name, settings=dict(settings)) for name in ("bad", "good")}

    def vtex_for(platform: Platform) -> Any:
        if platform.name == "bad":
            raise UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range(128)")
        return _Robot()

    jobs = PlatformJobs(
        store, _Desk(platforms), lambda: sorted(platforms), lambda name, s: [], vtex_for
    )
    try:
        jobs.run_due()
        eventually(lambda: "feed" in store.jobs("good:"), "the good platform's feed runs")
        setup = store.jobs("bad:")["setup"]["report"]
        assert "UnicodeEncodeError" in setup["errors"][0]
        jobs.run_due()  # said once, and the good platform's next round still runs
        assert store.jobs("good:")["feed"]["report"]["read"] == 0
    finally:
        jobs.stop()
