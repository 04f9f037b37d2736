"""The dispatcher's delivery table on real SQLite and PostgreSQL: newest value wins, one sender
at a time, failures counted and retried, unmapped warehouses forgotten, one job runner."""

from __future__ import annotations

import time
from typing import Any

from adapters.delivery_store import STOCK, DeliveryStore
from api.wiring import Container


def want(store: DeliveryStore, sku: str, quantity: str, position: int, wh: str = "main") -> None:
    payload = {"sku": sku, "warehouse": wh, "platform_warehouse": "1_1", "quantity": quantity}
    store.enqueue(
        "shop", STOCK, [(sku, wh, payload, position, quantity == "0")], (position, sku, wh)
    )


def quantities(claims: list[Any]) -> dict[str, str]:
    return {c.subject: c.payload["quantity"] for c in claims}


def test_a_burst_leaves_only_the_newest_value_to_send(container: Container) -> None:
    store = container.deliveries
    for position, quantity in enumerate(["9", "8", "7", "6"], start=1):
        want(store, "A", quantity, position)
    want(store, "A", "5", 2)  # late and older: ignored
    [claim] = store.claim("shop", "me", 10, lease=60)
    assert claim.payload["quantity"] == "6"
    assert claim.position == 4
    assert store.claim("shop", "other", 10, lease=60) == []  # one sender at a time


def test_a_value_arriving_during_a_send_is_sent_next(container: Container) -> None:
    store = container.deliveries
    want(store, "A", "9", 1)
    [claim] = store.claim("shop", "me", 10, lease=60)
    want(store, "A", "3", 2)
    assert store.delivered(claim, "me", claim.payload)
    [again] = store.claim("shop", "me", 10, lease=60)
    assert again.payload["quantity"] == "3"
    assert again.sent == claim.payload
    assert store.delivered(again, "me", again.payload)
    assert store.claim("shop", "me", 10, lease=60) == []
    assert store.status("shop")["delivered"] == 1


def test_zero_stock_is_claimed_first(container: Container) -> None:
    store = container.deliveries
    want(store, "A", "4", 1)
    want(store, "B", "2", 2)
    want(store, "C", "0", 3)
    assert [c.subject for c in store.claim("shop", "me", 1, lease=60)] == ["C"]


def test_failures_back_off_then_fail_and_wait_for_a_retry(container: Container) -> None:
    store = container.deliveries
    want(store, "A", "4", 1)
    [claim] = store.claim("shop", "me", 10, lease=60)
    assert store.attempt_failed(claim, "me", "HTTP 500", retry_at=10**12, give_up=False)
    assert store.claim("shop", "me", 10, lease=60) == []  # backing off
    [claim] = store.claim("shop", "me", 10, lease=60, now=10**12 + 1)
    assert claim.attempts == 1
    assert store.attempt_failed(claim, "me", "HTTP 500 again", retry_at=0, give_up=True)
    status = store.status("shop")
    assert status["failed"] == 1
    assert status["pending"] == 0
    [failed] = status["failed_deliveries"]
    assert failed["subject"] == "A"
    assert failed["last_error"] == "HTTP 500 again"
    want(store, "A", "2", 5)  # a newer value keeps it failed, and visible, with that value
    assert store.claim("shop", "me", 10, lease=60) == []
    assert store.status("shop")["failed_deliveries"][0]["wanted"]["quantity"] == "2"
    assert store.retry_failed("shop") == 1
    [claim] = store.claim("shop", "me", 10, lease=60)
    assert claim.payload["quantity"] == "2"
    assert claim.attempts == 0


def test_a_lost_claim_records_nothing(container: Container) -> None:
    store = container.deliveries
    want(store, "A", "4", 1)
    [stale] = store.claim("shop", "slow", 10, lease=-1)  # already expired
    [taken] = store.claim("shop", "fast", 10, lease=60)
    assert not store.delivered(stale, "slow", stale.payload)
    assert not store.attempt_failed(stale, "slow", "late", 0, give_up=True)
    assert store.delivered(taken, "fast", taken.payload)


def test_unmapped_warehouses_are_forgotten(container: Container) -> None:
    store = container.deliveries
    want(store, "A", "4", 1, wh="main")
    want(store, "A", "4", 2, wh="old")
    assert store.drop_unmapped("shop", {"main"}) == 1
    assert {c.scope for c in store.claim("shop", "me", 10, lease=60)} == {"main"}


def test_the_cursor_only_moves_forward(container: Container) -> None:
    store = container.deliveries
    want(store, "B", "1", 7)
    want(store, "A", "1", 3)
    assert store.cursor("shop", STOCK) == (7, "B", "main")


def test_a_periodic_job_runs_in_one_process_per_period(make_container) -> None:
    one, two = make_container().deliveries, make_container().deliveries
    assert one.take_job("shop:feed", "one", every=10, now=100)
    assert not two.take_job("shop:feed", "two", every=10, now=105)
    assert two.take_job("shop:feed", "two", every=10, now=110)
    two.job_done("shop:feed", {"read": 3})
    assert one.jobs("shop:")["feed"]["report"] == {"read": 3}


def test_a_sku_just_sent_waits_its_gap_before_the_next_value(container: Container) -> None:
    store = container.deliveries
    t = time.time() + 5
    want(store, "A", "9", 1)
    [claim] = store.claim("shop", "me", 10, lease=60, now=t)
    want(store, "A", "8", 2)
    store.delivered(claim, "me", claim.payload, now=t)
    assert store.claim("shop", "me", 10, lease=60, now=t + 0.1, gap=0.25) == []
    [claim] = store.claim("shop", "me", 10, lease=60, now=t + 0.3, gap=0.25)
    assert claim.payload["quantity"] == "8"


def test_a_platforms_job_reports_are_its_own(container: Container) -> None:
    store = container.deliveries
    store.take_job("my-shop:feed", "one", every=10)
    store.job_done("my-shop:feed", {"read": 1})
    assert store.jobs("my_shop:") == {}  # "_" is not a wildcard here
    assert store.jobs("my-shop:")["feed"]["report"] == {"read": 1}
