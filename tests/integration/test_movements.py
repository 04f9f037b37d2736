"""The application service against real SQLite and real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from api.wiring import Container
from ledger.errors import IdempotencyConflict, InsufficientStock, InvalidInput
from ledger.movements import MovementRequest
from projections.base import StalePage


def mv(movement_id: str, quantity: str = "10", sku: str = "SKU-1", **extra: Any) -> MovementRequest:
    return MovementRequest.parse(
        {
            "movement_id": movement_id,
            "sku": sku,
            "kind": extra.pop("kind", "purchase_order"),
            "quantity": quantity,
            **extra,
        }
    )


def head(container: Container) -> int:
    return container.app.recorder.max_notification_id() or 0


def physical(container: Container, sku: str = "SKU-1", warehouse: str = "main") -> Decimal:
    stock = container.app.stock_levels(sku, warehouse)
    assert stock is not None
    return stock.physical


def test_a_movement_changes_physical_and_returns_its_position(container: Container) -> None:
    [result] = container.app.record_movements([mv("m1", "10")], recorded_by="tester")
    assert (result.physical, result.reserved, result.available) == (10, 0, 10)
    assert result.position == head(container) - 1  # the idempotency record follows the event
    assert not result.replayed


def test_the_same_movement_twice_is_recorded_once(container: Container) -> None:
    first = container.app.record_movements([mv("m1", "10")], recorded_by="tester")
    before = head(container)
    again = container.app.record_movements([mv("m1", "10.000")], recorded_by="someone else")
    assert head(container) == before
    assert again[0].replayed
    assert (again[0].physical, again[0].position) == (first[0].physical, first[0].position)
    assert physical(container) == 10


def test_the_same_id_with_another_body_is_a_conflict(container: Container) -> None:
    container.app.record_movements([mv("m1", "10")], recorded_by="tester")
    before = head(container)
    with pytest.raises(IdempotencyConflict):
        container.app.record_movements([mv("m1", "11")], recorded_by="tester")
    assert head(container) == before
    assert physical(container) == 10


def test_a_batch_is_all_or_nothing(container: Container) -> None:
    container.app.record_movements([mv("seed", "5", sku="B")], recorded_by="tester")
    before = head(container)
    batch = [mv("a", "3", sku="A"), mv("b", "-6", sku="B", kind="invoice"), mv("c", "1", sku="C")]
    with pytest.raises(InsufficientStock):
        container.app.record_movements(batch, recorded_by="tester")
    assert head(container) == before
    assert container.app.stock_levels("A", "main") is None
    assert physical(container, "B") == 5


def test_a_batch_applies_rows_in_order_on_the_same_sku(container: Container) -> None:
    results = container.app.record_movements(
        [mv("a", "5"), mv("b", "-5", kind="invoice"), mv("c", "2", kind="inventory_count")],
        recorded_by="tester",
    )
    assert [r.physical for r in results] == [5, 0, 2]
    assert results[0].position < results[1].position < results[2].position


def test_a_batch_repeating_a_movement_id_is_refused(container: Container) -> None:
    with pytest.raises(InvalidInput):
        container.app.record_movements([mv("a", "1"), mv("a", "1")], recorded_by="tester")
    assert head(container) == 0


def test_a_batch_resent_after_a_partial_success_records_only_what_is_new(
    container: Container,
) -> None:
    container.app.record_movements([mv("a", "1")], recorded_by="tester")
    results = container.app.record_movements([mv("a", "1"), mv("b", "2")], recorded_by="tester")
    assert [r.replayed for r in results] == [True, False]
    assert physical(container) == 3


def test_negative_stock_is_allowed_only_where_configured(
    make_container: Callable[..., Container],
) -> None:
    container = make_container(negative_stock_warehouses="outlet")
    with pytest.raises(InsufficientStock):
        container.app.record_movements([mv("a", "-1", kind="manual")], recorded_by="t")
    container.app.record_movements(
        [mv("b", "-1", kind="manual", warehouse="outlet")], recorded_by="t"
    )
    assert physical(container, warehouse="outlet") == -1


def _hammer(container: Container, prefix: str, count: int, errors: list[BaseException]) -> None:
    try:
        for n in range(count):
            container.app.record_movements([mv(f"{prefix}-{n}", "1")], recorded_by=prefix)
    except BaseException as error:
        errors.append(error)


def test_concurrent_writers_in_several_processes_lose_no_update(
    make_container: Callable[..., Container],
) -> None:
    # Separate containers group and cache separately, like separate processes: they meet
    # only at the event store's unique key, and the service retries the loser.
    containers = [make_container() for _ in range(4)]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_hammer, args=(c, f"w{i}", 25, errors))
        for i, c in enumerate(containers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert physical(containers[0]) == 100


def test_one_movement_id_raced_from_several_processes_is_recorded_once(
    make_container: Callable[..., Container],
) -> None:
    containers = [make_container() for _ in range(4)]
    barrier = threading.Barrier(len(containers))
    outcomes: list[bool] = []

    def send(container: Container) -> None:
        barrier.wait()
        [result] = container.app.record_movements([mv("same", "7")], recorded_by="t")
        outcomes.append(result.replayed)

    threads = [threading.Thread(target=send, args=(c,)) for c in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False, True, True, True]
    assert physical(containers[0]) == 7


def test_the_stock_view_matches_the_aggregates(container: Container) -> None:
    results = container.app.record_movements(
        [
            mv("a", "10"),
            mv("b", "3", sku="SKU-2", warehouse="north"),
            mv("c", "-4", kind="invoice"),
            mv("d", "2.5", kind="inventory_count", sku="SKU-2", warehouse="north"),
        ],
        recorded_by="t",
    )
    container.catch_up()
    rows = {
        (r.sku, r.warehouse): (r.physical, r.reserved)
        for r in container.stock_levels.page(warehouse=None, after_sku=None, limit=10)
    }
    assert rows == {("SKU-1", "main"): (6, 0), ("SKU-2", "north"): (Decimal("2.5"), 0)}
    # The view has read every notification, the idempotency records included.
    assert container.stock_levels.position() == container.app.recorder.max_notification_id()
    assert container.stock_levels.position() > max(r.position or 0 for r in results)


def test_the_stock_view_pages_by_sku_and_filters_by_warehouse(container: Container) -> None:
    container.app.record_movements(
        [mv(f"m{n}", "1", sku=f"S{n}", warehouse="main" if n % 2 else "north") for n in range(5)],
        recorded_by="t",
    )
    container.catch_up()
    view = container.stock_levels
    first = view.page(warehouse=None, after_sku=None, limit=2)
    assert [r.sku for r in first] == ["S0", "S1"]
    assert [r.sku for r in view.page(warehouse=None, after_sku="S1", limit=10)] == [
        "S2",
        "S3",
        "S4",
    ]
    assert [r.sku for r in view.page(warehouse="north", after_sku=None, limit=10)] == [
        "S0",
        "S2",
        "S4",
    ]


def test_a_cached_stock_catches_up_with_writes_from_another_process(
    make_container: Callable[..., Container],
) -> None:
    first, second = make_container(), make_container()
    first.app.record_movements([mv("a", "10")], recorded_by="t")
    second.app.record_movements([mv("b", "-4", kind="invoice")], recorded_by="t")
    # ``first`` still holds the stock at 10 in memory; the rule must see 6, not 10.
    with pytest.raises(InsufficientStock):
        first.app.record_movements([mv("c", "-7", kind="invoice")], recorded_by="t")
    [result] = first.app.record_movements([mv("d", "-6", kind="invoice")], recorded_by="t")
    assert result.physical == 0
    assert physical(second) == 0


def test_concurrent_single_movements_keep_their_own_outcomes(container: Container) -> None:
    container.app.record_movements([mv("stock", "5")], recorded_by="t")
    barrier = threading.Barrier(12)
    outcomes: dict[str, str] = {}

    def send(movement_id: str, quantity: str, kind: str) -> None:
        barrier.wait()
        try:
            [result] = container.app.record_movements(
                [mv(movement_id, quantity, kind=kind)], recorded_by="t"
            )
            outcomes[movement_id] = "replayed" if result.replayed else "recorded"
        except (InsufficientStock, IdempotencyConflict) as error:
            outcomes[movement_id] = error.code

    jobs = [(f"in-{n}", "1", "purchase_order") for n in range(10)]
    jobs += [("too-much", "-1000", "invoice"), ("stock", "6", "purchase_order")]
    threads = [threading.Thread(target=send, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == {
        **{f"in-{n}": "recorded" for n in range(10)},
        "too-much": "insufficient_stock",
        "stock": "idempotency_conflict",
    }
    assert physical(container) == 15


def test_a_large_batch_is_all_or_nothing(container: Container) -> None:
    # Over 2,000 events: on PostgreSQL this goes by COPY rather than the insert function.
    rows = [mv(f"row-{n}", "1", sku=f"S{n}") for n in range(1_500)]
    before = head(container)
    with pytest.raises(InsufficientStock):
        container.app.record_movements([*rows, mv("last", "-2", sku="S0")], recorded_by="t")
    assert head(container) == before
    results = container.app.record_movements(rows, recorded_by="t")
    assert len(results) == 1_500
    positions = [r.position for r in results]
    assert None not in positions
    assert positions == sorted(positions)
    assert head(container) == before + 4_500
    assert physical(container, "S1499") == 1


def test_a_large_save_refused_by_the_event_store_writes_nothing(container: Container) -> None:
    container.app.record_movements([mv("taken", "1", sku="S5")], recorded_by="t")
    before = head(container)
    rows = [mv(f"row-{n}", "1", sku=f"S{n}") for n in range(1_500)]
    # A second process would see an old version of S5; simulate it by dropping the cache.
    container.app.aggregates.clear()
    stale = container.app.loader.load_many
    container.app.loader.load_many = lambda ids, known=None: {  # type: ignore[method-assign]
        i: a for i, a in stale(ids, known).items() if a.__class__.__name__ != "Stock"
    }
    try:
        with pytest.raises(Exception, match="concurrently"):
            container.app.record_movements(rows, recorded_by="t")
    finally:
        container.app.loader.load_many = stale  # type: ignore[method-assign]
    assert head(container) == before


def test_two_runners_on_one_view_never_apply_an_event_twice(
    make_container: Callable[..., Container],
) -> None:
    first, second = make_container(), make_container()
    first.app.record_movements([mv(f"m{n}", "1") for n in range(20)], recorded_by="t")
    stale = first.stock_levels.position()
    second.catch_up()
    # ``first`` read its position before ``second`` applied the page: its page is stale.
    with pytest.raises(StalePage):
        first.stock_levels.apply([], 999, after=stale)
    first.catch_up()
    [row] = first.stock_levels.levels_of("SKU-1")
    assert row.physical == 20


def test_a_refusal_on_cached_state_is_confirmed_against_the_database(
    make_container: Callable[..., Container],
) -> None:
    first, second = make_container(), make_container()
    first.app.record_movements([mv("a", "1")], recorded_by="t")
    first.app.record_movements([mv("b", "-1", kind="invoice")], recorded_by="t")
    second.app.record_movements([mv("c", "10")], recorded_by="t")
    # ``first`` has the stock cached at 0: taking 4 looks impossible until it reads again.
    [result] = first.app.record_movements([mv("d", "-4", kind="invoice")], recorded_by="t")
    assert result.physical == 6
    [again] = first.app.record_movements([mv("d", "-4", kind="invoice")], recorded_by="t")
    assert again.replayed
    assert again.position == result.position
