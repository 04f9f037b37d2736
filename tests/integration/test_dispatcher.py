"""The dispatcher with a recording platform, on real SQLite and PostgreSQL: a claim that the
rate limit has eaten is given back, so an older value never lands after a newer one."""

from __future__ import annotations

import threading
import time
from typing import Any

from adapters.delivery_store import STOCK
from adapters.dispatcher import DispatchConfig, Dispatcher
from api.wiring import Container
from ledger.platforms import Platform


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
