"""The dispatcher's delivery table on real SQLite and PostgreSQL: newest value wins, one sender
at a time, failures retried for as long as it takes and refusals kept for a retry, one request
budget and one health per platform across processes, unmapped warehouses forgotten, one job
runner."""

from __future__ import annotations

import time
from typing import Any

from adapters.delivery_store import STOCK, Claim, DeliveryStore
from adapters.dispatch_rules import Backoff, Outcome, Result
from api.wiring import Container

BACKOFF = Backoff(base=0.5, cap=60.0)


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


def test_a_retryable_failure_backs_off_and_stays_retrying_however_many_attempts(
    container: Container,
) -> None:
    store = container.deliveries
    want(store, "A", "4", 1)
    now = time.time()
    for attempt in range(1, 31):
        [claim] = store.claim("shop", "me", 10, lease=60, now=now)
        assert claim.attempts == attempt - 1
        assert store.attempt_failed(claim, "me", f"HTTP 503 #{attempt}", now + 5, refused=False)
        assert store.claim("shop", "me", 10, lease=60, now=now + 4) == []  # backing off
        now += 5
    status = store.status("shop")
    assert (status["pending"], status["retrying"], status["failed"]) == (0, 1, 0)
    [retrying] = status["retrying_deliveries"]
    assert retrying["attempts"] == 30
    assert retrying["last_error"] == "HTTP 503 #30"
    assert retrying["first_failed_at"] is not None
    assert retrying["next_attempt_at"] == now
    assert status["failed_deliveries"] == []
    want(store, "A", "2", 5)  # a newer value keeps the backoff and the history
    [claim] = store.claim("shop", "me", 10, lease=60, now=now)
    assert (claim.payload["quantity"], claim.attempts) == ("2", 30)
    assert store.delivered(claim, "me", claim.payload)
    status = store.status("shop")
    assert (status["retrying"], status["delivered"]) == (0, 1)


def test_a_refusal_fails_and_waits_for_a_retry(container: Container) -> None:
    store = container.deliveries
    want(store, "A", "4", 1)
    [claim] = store.claim("shop", "me", 10, lease=60)
    assert store.attempt_failed(claim, "me", "HTTP 400 bad", retry_at=0, refused=True)
    status = store.status("shop")
    assert (status["failed"], status["pending"], status["retrying"]) == (1, 0, 0)
    [failed] = status["failed_deliveries"]
    assert failed["subject"] == "A"
    assert failed["last_error"] == "HTTP 400 bad"
    assert failed["attempts"] == 1
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
    assert not store.attempt_failed(stale, "slow", "late", 0, refused=True)
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


def outage(claims: list[Claim], at: float) -> list[Result]:
    return [
        Result(c, Outcome.RETRYABLE, at, error="HTTP 503", retry_at=at + 600, status=503)
        for c in claims
    ]


def test_dispatchers_share_one_request_budget(make_container) -> None:
    """Two processes claiming every 50 ms for 3 s at a rate of 10/s take 31 rows at most
    between them (the rate, plus the one-request burst), not twice that."""
    one, two = make_container().deliveries, make_container().deliveries
    for n in range(200):
        want(one, f"S{n:03d}", "1", n + 1)
    start, taken = time.time(), 0
    for tick in range(60):
        for store, holder in ((one, "one"), (two, "two")):
            claims = store.claim("shop", holder, 16, lease=60, now=start + tick * 0.05, rate=10)
            taken += len(claims)
    assert 25 <= taken <= 31


def test_a_429_pauses_every_dispatcher(make_container) -> None:
    one, two = make_container().deliveries, make_container().deliveries
    for n in range(20):
        want(one, f"S{n:02d}", "1", n + 1)
    now = time.time()
    [claim] = one.claim("shop", "one", 1, lease=60, now=now, rate=100)
    slow_down = Result(
        claim,
        Outcome.RETRYABLE,
        now,
        error="HTTP 429",
        retry_at=now + 5,
        status=429,
        retry_after=5.0,
    )
    one.record("one", [slow_down], BACKOFF)
    assert two.claim("shop", "two", 16, lease=60, now=now + 4.9, rate=100) == []
    assert two.status("shop")["paused_until"] is not None
    assert len(two.claim("shop", "two", 16, lease=60, now=now + 5.1, rate=100)) == 10


def test_a_failing_platform_is_probed_one_row_at_a_time_and_its_answer_frees_every_row(
    make_container,
) -> None:
    one, two = make_container().deliveries, make_container().deliveries
    for n, quantity in enumerate(["3", "0", "5", "7"]):
        want(one, f"S{n}", quantity, n + 1)
    now = time.time()
    claims = one.claim("shop", "one", 16, lease=60, now=now, rate=100)
    assert len(claims) == 4
    changes = one.record("one", outage(claims, now), BACKOFF)
    assert changes["shop"].started_failing
    status = two.status("shop")
    assert status["failing"]
    assert status["last_error"] == "HTTP 503"
    assert status["retrying"] == 4
    # Every row backs off for ten minutes, yet one probe goes out within the backoff...
    assert two.claim("shop", "two", 16, lease=60, now=now + 0.1, rate=100) == []
    [probe] = two.claim("shop", "two", 16, lease=60, now=now + 1, rate=100)
    assert probe.subject == "S1"  # zero stock first
    assert one.claim("shop", "one", 16, lease=60, now=now + 1, rate=100) == []  # ...only one
    two.record("two", outage([probe], now + 1), BACKOFF)
    [probe] = one.claim("shop", "one", 16, lease=60, now=now + 61, rate=100)  # cap: 60 s
    # ...and when the platform answers, every row is due at once.
    delivered = Result(probe, Outcome.DELIVERED, now + 61, sent=probe.payload)
    changes = one.record("one", [delivered], BACKOFF)
    assert changes["shop"].recovered_after is not None
    assert not two.status("shop")["failing"]
    assert len(two.claim("shop", "two", 16, lease=60, now=now + 61, rate=100)) == 3


def test_new_settings_forget_a_platforms_failures_and_send_at_once(container: Container) -> None:
    store = container.deliveries
    for n in range(3):
        want(store, f"S{n}", "1", n + 1)
    now = time.time()
    claims = store.claim("shop", "me", 16, lease=60, now=now, rate=100)
    store.record("me", outage(claims, now), BACKOFF)
    assert store.status("shop")["failing"]
    store.resend_all("shop")  # say, base_url fixed
    assert not store.status("shop")["failing"]
    assert len(store.claim("shop", "me", 16, lease=60, rate=100)) == 3


def test_a_halt_shows_in_the_status_until_it_is_lifted_or_lapses(container: Container) -> None:
    store = container.deliveries
    now = time.time()
    store.halt("shop", "its adapter could not be built: ValueError: no", now=now)
    status = store.status("shop")
    assert status["failing"]
    assert status["halted"].startswith("its adapter")
    assert status["last_error"] == status["halted"]
    store.resume("shop")
    assert not store.status("shop")["failing"]
    store.halt("shop", "again", now=now - 31)  # said half a minute ago, never since
    assert not store.status("shop")["failing"]


def test_metrics_figures_cover_every_platform(container: Container) -> None:
    store = container.deliveries
    want(store, "A", "4", 1)
    want(store, "B", "4", 2)
    [claim, _] = store.claim("shop", "me", 2, lease=60)
    store.record("me", outage([claim], time.time()), BACKOFF)
    store.halt("other", "its adapter could not be built")
    figures = {f["platform"]: f for f in store.figures()}
    shop = figures["shop"]
    assert (shop["pending"], shop["retrying"], shop["failed"]) == (1, 1, 0)
    assert shop["attempts"]["retryable_error"] == 1
    assert shop["oldest_pending_seconds"] >= 0
    assert not shop["failing"]
    assert figures["other"]["failing"]
