"""GET /stock/{sku}?at= reads the movement report's running maximum of occurred_at, not the
stock's history, and says what a full replay of the stock's events says: for any history
(backdated movements, counts, reservations, orders), any moment, with the views caught up,
lagging or never run, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yoyo import get_backend, read_migrations

from adapters.migrations import MIGRATIONS
from api.settings import Settings
from api.wiring import Container, build
from ledger import ids
from ledger.application import LedgerApplication
from ledger.errors import LedgerError
from ledger.movements import MovementRequest
from ledger.orders import OrderLine, OrderStatus
from ledger.stock import Stock
from projections.history import levels_at
from projections.verify import verify
from tests.integration.test_migrations import _yoyo_url

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
WAREHOUSES = ["main", "north"]
SHOP = {"type": "webhook", "import_from": "awaiting_payment", "carriers": {"PAC": "pac"}}
_skus = itertools.count()

Levels = dict[str, tuple[Decimal, Decimal]]


def replayed_at(app: LedgerApplication, sku: str, warehouses: list[str], at: datetime) -> Levels:
    """The oracle: every event of each stock, summed when dated by ``at`` (the algorithm
    ``levels_at`` had before the report kept a running maximum)."""
    levels = {}
    for warehouse in warehouses:
        physical = reserved = Decimal(0)
        moved = False
        for stored in app.recorder.select_events(ids.stock_id(sku, warehouse)):
            event = app.mapper.to_domain_event(stored)
            if isinstance(event, Stock.Moved) and event.occurred_at <= at:
                change_physical, change_reserved = event.physical_change, event.reserved_change
                physical += change_physical
                reserved += change_reserved
                moved = True
        if moved:
            levels[warehouse] = (physical, reserved)
    return levels


def read_at(container: Container, sku: str, at: datetime) -> Levels:
    rows = levels_at(container.app, container.movement_report, sku, WAREHOUSES, at)
    return {r.warehouse: (r.physical, r.reserved) for r in rows}


# -- histories -------------------------------------------------------------------------------

minutes = st.integers(min_value=0, max_value=40)  # few distinct moments: ties happen
warehouse = st.sampled_from(WAREHOUSES)
amount = st.integers(min_value=1, max_value=9)
step = st.one_of(
    st.tuples(
        st.just("move"),
        warehouse,
        st.sampled_from(["invoice", "purchase_order", "scan", "manual", "sales_order"]),
        st.integers(min_value=-6, max_value=9).filter(bool),
        minutes,
    ),
    st.tuples(st.just("count"), warehouse, st.integers(min_value=0, max_value=12), minutes),
    st.tuples(st.sampled_from(["reserve", "release", "consume"]), warehouse, amount, minutes),
    st.tuples(st.just("order"), warehouse, amount),  # reserved by the order desk, dated now
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=5)),
    st.tuples(st.just("catch_up")),  # the views read up to here; later steps are their lag
)


def run(container: Container, sku: str, steps: list[tuple[Any, ...]]) -> list[datetime]:
    """Record ``steps`` on ``sku``; the moments the recorded events are dated."""
    app = container.app
    orders: list[str] = []
    for n, (action, *args) in enumerate(steps):
        movement_id = f"{sku}-{n}"
        try:
            if action == "catch_up":
                container.catch_up()
            elif action in ("move", "count"):
                if action == "move":
                    where, kind, quantity, at = args
                else:
                    where, quantity, at = args
                    kind = "inventory_count"
                row = {
                    "movement_id": movement_id,
                    "sku": sku,
                    "warehouse": where,
                    "kind": kind,
                    "quantity": str(quantity),
                    "occurred_at": (T0 + timedelta(minutes=at)).isoformat(),
                }
                app.record_movements([MovementRequest.parse(row)], recorded_by="t")
            elif action in ("reserve", "release", "consume"):
                where, quantity, at = args
                stock = app.stock_levels(sku, where)
                if stock is None:
                    continue
                getattr(stock, action)(
                    Decimal(quantity),
                    movement_id=movement_id,
                    reference=None,
                    note=None,
                    recorded_by="t",
                    occurred_at=T0 + timedelta(minutes=at),
                )
                app.save(stock)
            elif action == "order":
                (where, quantity) = args
                line = [OrderLine(sku, where, Decimal(quantity))]
                container.orders.import_order(
                    "shop", movement_id, OrderStatus.PAYMENT_CONFIRMED, "PAC", line, "t"
                )
                orders.append(movement_id)
            elif action == "cancel" and orders:
                container.orders.cancel("shop", orders[args[0] % len(orders)], "t")
        except LedgerError:
            continue  # refused by the rules (not enough stock or reservation): nothing recorded
    dates = []
    for where in WAREHOUSES:
        for stored in app.recorder.select_events(ids.stock_id(sku, where)):
            event = app.mapper.to_domain_event(stored)
            if isinstance(event, Stock.Moved):
                dates.append(event.occurred_at)
    return dates


def moments(dates: list[datetime], extra: list[int]) -> Iterator[datetime]:
    """Before the first event, at and just around each event's date, after the last, and
    some drawn at random."""
    yield T0 - timedelta(days=1)
    for date in sorted(set(dates)):
        yield date - timedelta(microseconds=1)
        yield date
        yield date + timedelta(microseconds=1)
    if dates:
        yield max(dates) + timedelta(days=1)
    for seconds in extra:
        yield T0 + timedelta(seconds=seconds)


# -- the property ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(module_database_url: str) -> Iterator[Container]:
    """One database per backend for every example: each example has a SKU of its own."""
    container = build(Settings(database_url=module_database_url))
    container.orders.configure("shop", SHOP)
    yield container
    container.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    steps=st.lists(step, min_size=1, max_size=30),
    extra=st.lists(st.integers(min_value=-600, max_value=3600), max_size=5),
)
def test_a_moment_reads_what_a_full_replay_reads(
    shared: Container, steps: list[tuple[Any, ...]], extra: list[int]
) -> None:
    sku = f"P{next(_skus)}"
    dates = run(shared, sku, steps)
    for moment in moments(dates, extra):
        assert read_at(shared, sku, moment) == replayed_at(shared.app, sku, WAREHOUSES, moment), (
            moment
        )


def test_the_report_rows_carry_a_running_latest_and_flag_backdated_rows(
    shared: Container,
) -> None:
    sku = f"P{next(_skus)}"
    run(shared, sku, [("move", "main", "invoice", 5, m) for m in (10, 30, 20, 30, 5, 40)])
    shared.catch_up()
    with shared.movement_report.reading() as c:
        rows = [r for r in shared.movement_report.rows(c) if r["sku"] == sku]
    latest = [r["latest_occurred_at"] - T0 for r in rows]
    assert latest == [timedelta(minutes=m) for m in (10, 30, 30, 30, 30, 40)]
    assert [r["backdated"] for r in rows] == [False, False, True, False, True, False]


# -- the view's lag --------------------------------------------------------------------------


def move(container: Container, sku: str, movement_id: str, quantity: str, at: int, **row: Any):
    request = {
        "movement_id": movement_id,
        "sku": sku,
        "kind": "invoice",
        "quantity": quantity,
        "occurred_at": (T0 + timedelta(minutes=at)).isoformat(),
        **row,
    }
    container.app.record_movements([MovementRequest.parse(request)], recorded_by="t")


def test_writes_the_view_has_not_read_are_counted(shared: Container) -> None:
    sku = f"P{next(_skus)}"
    move(shared, sku, "a", "10", 10)
    move(shared, sku, "b", "5", 30)
    shared.catch_up()
    move(shared, sku, "c", "1", 5)  # backdated, after the view's position
    move(shared, sku, "d", "2", 20, warehouse="north")  # a stock the view has never seen
    move(shared, sku, "e", "-3", 40)
    with shared.movement_report.reading() as c:
        in_view = [r["movement_id"] for r in shared.movement_report.rows(c) if r["sku"] == sku]
    assert in_view == ["a", "b"]  # lagging, as views may

    def at(minute: int) -> Levels:
        return read_at(shared, sku, T0 + timedelta(minutes=minute))

    assert at(4) == {}
    assert at(5) == {"main": (1, 0)}
    assert at(10) == {"main": (11, 0)}
    assert at(20) == {"main": (11, 0), "north": (2, 0)}
    assert at(30) == {"main": (16, 0), "north": (2, 0)}
    assert at(40) == {"main": (13, 0), "north": (2, 0)}


def test_with_the_views_never_run_the_events_alone_answer(database_url: str) -> None:
    container = build(Settings(database_url=database_url))
    try:
        move(container, "S", "a", "10", 10)
        move(container, "S", "b", "1", 5)
        assert read_at(container, "S", T0 + timedelta(minutes=7)) == {"main": (1, 0)}
        assert read_at(container, "S", T0 + timedelta(minutes=10)) == {"main": (11, 0)}
    finally:
        container.close()


# -- verify covers the new columns -----------------------------------------------------------


def test_verify_finds_a_wrong_running_latest_or_flag(database_url: str) -> None:
    container = build(Settings(database_url=database_url))
    try:
        move(container, "S", "a", "10", 10)
        move(container, "S", "b", "1", 5)
        move(container, "S", "c", "1", 20)
        container.catch_up()
        view = container.movement_report
        assert verify(container.app, view, lambda d: None).count == 0
        with view.writing() as c:
            c.execute(view.q("UPDATE {t} SET backdated = ? WHERE movement_id = 'b'"), (False,))
            c.execute(
                view.q("UPDATE {t} SET latest_occurred_at = ? WHERE movement_id = 'c'"),
                (view.moment(T0),),
            )
        verdict = verify(container.app, view, lambda d: None)
        assert verdict.count == 2
        assert "backdated" in str(verdict.differences[0])
        assert "latest_occurred_at" in str(verdict.differences[1])
    finally:
        container.close()


# -- the upgrade -----------------------------------------------------------------------------


def test_the_upgrade_fills_in_existing_rows(database_url: str) -> None:
    """A database whose report was written before migration 0008 gets the same running
    latest and flags as the view writes, and reads at a moment go on agreeing with a replay
    as the view carries the running latest on from ``movement_report_stocks``."""
    steps = [("move", "main", "invoice", 5, m) for m in (10, 30, 20, 30, 5)]
    steps += [("move", "north", "invoice", 2, m) for m in (7, 3)]
    steps += [("reserve", "main", 2, 1), ("count", "north", 9, 8)]
    container = build(Settings(database_url=database_url))
    try:
        run(container, "U", steps)
        container.catch_up()
        written = report_rows(container)
        stocks = running_latest_per_stock(container)
    finally:
        container.close()
    assert any(r["backdated"] for r in written)

    backend = get_backend(_yoyo_url(database_url))
    try:
        folder = MIGRATIONS / (
            "postgres" if backend.uri.scheme.startswith("postgres") else "sqlite"
        )
        ours = read_migrations(str(folder)).filter(lambda m: m.id.startswith("0008."))
        with backend.lock():
            backend.rollback_migrations(backend.to_rollback(ours))
    finally:
        backend.connection.close()

    container = build(Settings(database_url=database_url))  # migrates again
    try:
        assert report_rows(container) == written
        assert running_latest_per_stock(container) == stocks
        run(container, "U", [("move", "main", "scan", -1, 15), ("move", "main", "scan", 1, 50)])
        container.catch_up()
        assert verify(container.app, container.movement_report, lambda d: None).count == 0
        for minute in (0, 5, 15, 25, 30, 50):
            moment = T0 + timedelta(minutes=minute)
            assert read_at(container, "U", moment) == replayed_at(
                container.app, "U", WAREHOUSES, moment
            )
    finally:
        container.close()


def report_rows(container: Container) -> list[dict[str, Any]]:
    with container.movement_report.reading() as c:
        return list(container.movement_report.rows(c))


def running_latest_per_stock(container: Container) -> dict[str, Any]:
    view = container.movement_report
    with view.reading() as c:
        c.execute(view.q("SELECT warehouse, latest_occurred_at FROM {movement_report_stocks}"))
        return {r["warehouse"]: view.from_moment(r["latest_occurred_at"]) for r in c.fetchall()}
