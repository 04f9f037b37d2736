"""The read models against real SQLite and PostgreSQL: report, stock at a moment, orders, rebuild
and verify."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from api.wiring import Container
from ledger.movements import MovementRequest
from ledger.orders import OrderLine, OrderStatus
from projections.catalog import VIEWS
from projections.history import levels_at
from projections.movement_report import ReportCursor, ReportFilter
from projections.order_list import OrderFilter
from projections.rebuild import rebuild
from projections.runner import PollingRunner
from projections.verify import verify

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
SHOP = {"type": "webhook", "import_from": "awaiting_payment", "carriers": {"PAC": "pac"}}


def record(container: Container, *rows: dict[str, Any], by: str = "t") -> list[int]:
    results = container.app.record_movements(
        [MovementRequest.parse({"kind": "invoice", "sku": "SKU-1", **row}) for row in rows],
        recorded_by=by,
    )
    return [r.position or 0 for r in results]


def report(container: Container, **where: Any) -> list[dict[str, Any]]:
    limit = where.pop("limit", 100)
    before = where.pop("before", None)
    cursor = None if before is None else ReportCursor(before)
    return container.movement_report.report(ReportFilter(**where), before=cursor, limit=limit)


def all_rows(container: Container) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name, view in container.views.items():
        with view.reading() as c:
            out[name] = list(view.rows(c))
    return out


def test_the_report_explains_the_number_with_balances_after_each_change(
    container: Container,
) -> None:
    record(
        container,
        {"movement_id": "nf-1", "quantity": "10", "reference": "NF 1"},
        {"movement_id": "scan-1", "kind": "scan", "quantity": "-2", "note": "broken"},
        {"movement_id": "count-1", "kind": "inventory_count", "quantity": "7"},
        by="alice",
    )
    container.orders.configure("shop", SHOP)
    line = [OrderLine("SKU-1", "main", Decimal(3))]
    container.orders.import_order("shop", "o1", OrderStatus.PAYMENT_CONFIRMED, "PAC", line, "bob")
    container.orders.invoice("shop", "o1", {"number": "55"}, "bob")
    container.catch_up()
    rows = report(container, sku="SKU-1")
    assert [
        (r["kind"], r["quantity_change"], r["reserved_change"], r["physical_after"]) for r in rows
    ] == [
        ("consumption", -3, -3, 4),
        ("reservation", 0, 3, 7),
        ("inventory_count", -1, 0, 7),
        ("scan", -2, 0, 8),
        ("invoice", 10, 0, 10),
    ]
    assert [r["reserved_after"] for r in rows] == [0, 3, 0, 0, 0]
    assert rows[2]["counted"] == 7
    assert rows[3]["note"] == "broken"
    assert rows[4]["reference"] == "NF 1"
    assert rows[4]["recorded_by"] == "alice"
    assert rows[0]["reference"] == "shop order o1"
    assert rows[0]["recorded_by"] == "bob"
    # The last balance is the stock view's number: the report explains it.
    [levels] = container.stock_levels.levels_of("SKU-1")
    assert (levels.physical, levels.reserved) == (rows[0]["physical_after"], 0)


def test_report_filters_and_keyset_pages(container: Container) -> None:
    # One at a time: within one batch, positions follow the stocks, not the rows' order.
    for row in (
        {
            "movement_id": f"m{n}",
            "sku": f"S{n % 3}",
            "warehouse": "north" if n % 2 else "main",
            "kind": "scan" if n % 4 == 0 else "invoice",
            "quantity": "1",
            "reference": f"R{n % 5}",
            "occurred_at": (T0 + timedelta(days=n)).isoformat(),
        }
        for n in range(12)
    ):
        record(container, row)
    container.catch_up()
    everything = report(container)
    assert [r["movement_id"] for r in everything] == [f"m{n}" for n in reversed(range(12))]
    assert {r["sku"] for r in report(container, sku="S1")} == {"S1"}
    assert len(report(container, sku="S1")) == 4
    assert {r["warehouse"] for r in report(container, warehouse="north")} == {"north"}
    assert [r["movement_id"] for r in report(container, kind="scan")] == ["m8", "m4", "m0"]
    assert [r["movement_id"] for r in report(container, reference="R2")] == ["m7", "m2"]
    window = report(container, since=T0 + timedelta(days=3), until=T0 + timedelta(days=5))
    assert [r["movement_id"] for r in window] == ["m4", "m3"]  # since inclusive, until not
    assert report(container, sku="S1", kind="scan", warehouse="north") == []
    # Pages: exactly ``limit`` rows each, the next one starts after the last position shown.
    pages, before = [], None
    while True:
        page = report(container, limit=5, before=before)
        pages.append([r["movement_id"] for r in page])
        if len(page) < 5:
            break
        before = page[-1]["position"]
    assert pages == [
        ["m11", "m10", "m9", "m8", "m7"],
        ["m6", "m5", "m4", "m3", "m2"],
        ["m1", "m0"],
    ]
    assert report(container, before=everything[-1]["position"]) == []
    streamed = list(container.movement_report.stream(ReportFilter(), before=None, page=5))
    assert streamed == everything


def test_a_date_window_reads_in_occurred_at_order_and_pages_by_it(container: Container) -> None:
    for n in range(6):
        record(
            container,
            {
                "movement_id": f"m{n}",
                "quantity": "1",
                "occurred_at": (T0 + timedelta(hours=n)).isoformat(),
            },
        )
    # Recorded last, dated before the others: newest by position, oldest by date.
    record(container, {"movement_id": "late", "quantity": "1", "occurred_at": T0.isoformat()})
    container.catch_up()
    assert [r["movement_id"] for r in report(container)][:2] == ["late", "m5"]
    where = ReportFilter(since=T0, until=T0 + timedelta(days=1))
    view = container.movement_report
    first = view.report(where, before=None, limit=4)
    assert [r["movement_id"] for r in first] == ["m5", "m4", "m3", "m2"]
    rest = view.report(where, before=ReportCursor.after(first[-1]), limit=4)
    assert [r["movement_id"] for r in rest] == ["m1", "late", "m0"]  # same moment: by position
    # With a SKU, the report stays in recording order, where balances add up.
    by_sku = ReportFilter(sku="SKU-1", since=T0, until=T0 + timedelta(days=1))
    rows = view.report(by_sku, before=None, limit=10)
    assert [r["movement_id"] for r in rows][:2] == ["late", "m5"]
    assert [r["physical_after"] for r in rows] == [7, 6, 5, 4, 3, 2, 1]


def test_stock_at_a_moment_counts_what_occurred_by_then(container: Container) -> None:
    record(
        container,
        {"movement_id": "a", "quantity": "10", "occurred_at": T0.isoformat()},
        {
            "movement_id": "b",
            "quantity": "-4",
            "occurred_at": (T0 + timedelta(hours=2)).isoformat(),
        },
        {
            "movement_id": "c",
            "quantity": "5",
            "warehouse": "north",
            "occurred_at": (T0 + timedelta(hours=1)).isoformat(),
        },
    )
    # Recorded last, dated first: a late entry changes what the books say about the past.
    record(
        container,
        {
            "movement_id": "late",
            "quantity": "1",
            "occurred_at": (T0 - timedelta(days=1)).isoformat(),
        },
    )

    def at(moment: datetime) -> dict[str, Decimal]:
        rows = levels_at(
            container.app, container.movement_report, "SKU-1", ["main", "north"], moment
        )
        return {r.warehouse: r.physical for r in rows}

    assert at(T0 - timedelta(days=2)) == {}
    assert at(T0 - timedelta(seconds=1)) == {"main": 1}
    assert at(T0) == {"main": 11}
    assert at(T0 + timedelta(hours=1)) == {"main": 11, "north": 5}
    assert at(T0 + timedelta(hours=2) - timedelta(microseconds=1)) == {"main": 11, "north": 5}
    assert at(T0 + timedelta(hours=2)) == {"main": 7, "north": 5}


def test_the_order_list_filters_by_platform_status_and_blocked(container: Container) -> None:
    desk = container.orders
    desk.configure("shop", SHOP)
    desk.configure("vtex", {**SHOP, "type": "vtex"})
    line = [OrderLine("SKU-1", "main", Decimal(2))]
    desk.import_order("shop", "1", OrderStatus.PAYMENT_CONFIRMED, "PAC", line, "t")
    desk.import_order("shop", "2", OrderStatus.AWAITING_PAYMENT, "Jadlog", line, "t")
    desk.import_order("vtex", "3", OrderStatus.AWAITING_PAYMENT, "PAC", line, "t")
    desk.cancel("shop", "1", "t")
    container.catch_up()

    def ids(**where: Any) -> list[str]:
        rows = container.order_list.listing(OrderFilter(**where), before=None, limit=10)
        return [r["order_id"] for r in rows]

    assert ids() == ["3", "2", "1"]
    assert ids(platform="shop") == ["2", "1"]
    assert ids(status="cancelled") == ["1"]
    assert ids(blocked=True) == ["2"]
    assert ids(blocked=False) == ["3", "1"]
    [cancelled] = container.order_list.listing(
        OrderFilter(status="cancelled"), before=None, limit=1
    )
    assert cancelled["reserved"] == 0
    [vtex] = container.order_list.listing(OrderFilter(platform="vtex"), before=None, limit=1)
    assert vtex["reserved"] == 0  # VTEX: awaiting payment reserves nothing
    [held] = container.order_list.listing(OrderFilter(blocked=True), before=None, limit=1)
    assert held["blocked_reason"] == "carrier 'Jadlog' has no mapping"
    first = container.order_list.listing(OrderFilter(), before=None, limit=2)
    rest = container.order_list.listing(OrderFilter(), before=first[-1]["first_position"], limit=2)
    assert [r["order_id"] for r in first + rest] == ["3", "2", "1"]


def busy_ledger(container: Container) -> None:
    record(
        container,
        *({"movement_id": f"m{n}", "sku": f"S{n % 7}", "quantity": "3"} for n in range(60)),
    )
    desk = container.orders
    desk.configure("shop", SHOP)
    for n in range(5):
        line = [OrderLine(f"S{n}", "main", Decimal(2))]
        desk.import_order("shop", f"o{n}", OrderStatus.PAYMENT_CONFIRMED, "PAC", line, "t")
    desk.invoice("shop", "o1", {"number": "9"}, "t")
    desk.cancel("shop", "o2", "t")
    container.catalog.name_products({f"S{n}": f"Produto {n}" for n in range(7)})
    container.catalog.put_barcode("4006381333931", {"sku": "S1", "units": 1})
    container.catalog.put_barcode("BOX-S2", {"sku": "S2", "units": 6})
    container.catalog.name_product("S1", {"name": "Açúcar"})
    container.catalog.delete_barcode("BOX-S2")


def test_a_rebuild_equals_the_live_views_and_verify_agrees(container: Container) -> None:
    busy_ledger(container)
    container.catch_up()
    live = all_rows(container)
    results = rebuild(container.app, list(VIEWS.values()))
    head = container.app.recorder.max_notification_id()
    assert {r.name: r.position for r in results} == dict.fromkeys(VIEWS, head)
    assert all_rows(container) == live
    for name, view in container.views.items():
        verdict = verify(container.app, view, lambda d: None)
        assert verdict.count == 0
        assert verdict.rows == len(live[name])
    # The swapped-in tables keep serving, and keep being followed.
    record(container, {"movement_id": "after", "sku": "S1", "quantity": "100"})
    container.catch_up()
    [row] = container.stock_levels.levels_of("S1")
    assert row.physical == 9 * 3 - 2 + 100  # nine receipts of 3, order o1 invoiced, then 100
    # ...and a second rebuild swaps again (index names alternate).
    before = all_rows(container)["movement_report"]
    rebuild(container.app, [VIEWS["movement_report"]])
    assert all_rows(container)["movement_report"] == before
    assert verify(container.app, container.movement_report, lambda d: None).count == 0


def test_a_rebuild_catches_up_with_a_live_view_that_moved_on(
    make_container: Callable[..., Container],
) -> None:
    """Events recorded and applied live while the copy was being filled are in the copy too."""
    first = make_container()
    busy_ledger(first)
    first.catch_up()
    pages = []

    def more_writes_meanwhile(done: int, total: int) -> None:
        if not pages:
            record(first, {"movement_id": "meanwhile", "sku": "S3", "quantity": "1"})
            first.catch_up()
        pages.append(done)

    rebuild(first.app, list(VIEWS.values()), progress=more_writes_meanwhile)
    for view in first.views.values():
        assert verify(first.app, view, lambda d: None).count == 0
    assert [r["movement_id"] for r in report(first, sku="S3", limit=1)] == ["meanwhile"]


def test_an_interrupted_rebuild_resumes(container: Container) -> None:
    busy_ledger(container)
    container.catch_up()
    live = all_rows(container)

    class Interrupted(Exception):
        pass

    def interrupt(done: int, total: int) -> None:
        raise Interrupted

    import projections.rebuild as module

    page = module.PAGE
    module.PAGE = 50
    try:
        with pytest.raises(Interrupted):
            rebuild(container.app, list(VIEWS.values()), progress=interrupt)
        [result, *_] = rebuild(container.app, list(VIEWS.values()))
    finally:
        module.PAGE = page
    assert result.resumed_from == 50
    assert all_rows(container) == live


def test_verify_catches_a_row_changed_behind_its_back(container: Container) -> None:
    busy_ledger(container)
    container.catch_up()
    view = container.stock_levels
    column = "physical_micros" if not view.is_postgres else "physical"
    with view.writing() as c:
        c.execute(view.q(f"UPDATE {{t}} SET {column} = {column} + 1 WHERE sku = ?"), ("S2",))
    found: list[str] = []
    verdict = verify(container.app, view, lambda d: found.append(str(d)))
    assert verdict.count == 1
    assert "S2" in found[0]
    assert "physical" in found[0]
    report_view = container.movement_report
    with report_view.writing() as c:
        c.execute(report_view.q("DELETE FROM {t} WHERE movement_id = ?"), ("m5",))
    assert verify(container.app, report_view, lambda d: None).count == 1
    assert verify(container.app, container.order_list, lambda d: None).count == 0


def _fail_twice_then_run(container: Container, error: Exception) -> set[str | None]:
    """Run the stock view over one movement while its writes fail twice with ``error``; the
    problems it reported while failing, once it has recovered."""
    record(container, {"movement_id": "a", "quantity": "5"})
    view = container.stock_levels
    failures = [1, 2]
    real_write = view.write

    def flaky(c: Any, events: Any) -> None:
        if failures:
            failures.pop()
            raise error
        real_write(c, events)

    view.write = flaky  # type: ignore[method-assign]
    runner = PollingRunner(
        container.app, VIEWS["stock_levels"].projection(view), poll_interval=0.05
    )
    problems: set[str | None] = set()
    runner.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while datetime.now(UTC) < deadline:
            health = runner.health()
            if health.failing:
                problems.add(health.problem)
            if not failures and health.position and not health.failing:
                break
            time.sleep(0.01)
    finally:
        runner.stop()
    [row] = view.levels_of("SKU-1")
    assert row.physical == 5  # nothing skipped
    return problems


def test_a_failing_view_is_reported_retried_and_skips_nothing(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        problems = _fail_twice_then_run(container, RuntimeError("disk on fire"))
    assert problems
    assert "disk on fire" in caplog.text
    # The page failed, then its first event alone: that is the event named.
    assert "cannot apply event 1 (Stock.Opened)" in caplog.text


def test_a_database_outage_is_not_blamed_on_an_event(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    with caplog.at_level(logging.ERROR):
        problems = _fail_twice_then_run(container, lost)
    assert problems == {"OperationalError"}
    assert "cannot apply event" not in caplog.text


def test_a_swapped_in_table_is_not_written_from_what_the_old_one_was(
    container: Container,
) -> None:
    """A runner that remembers balances from before a rebuild must not carry them into the
    rebuilt tables, even when the rebuild left the view's position where it was."""
    busy_ledger(container)
    container.catch_up()
    report_view = container.movement_report
    cache = report_view.__dict__["_memory"]
    assert cache  # the runner's view object remembers balances from its last page
    for balance in cache.values():
        balance.physical += 100  # what a since-fixed bug would have left behind
    rebuild(container.app, [VIEWS["movement_report"]])
    assert report_view.position() == container.app.recorder.max_notification_id()
    record(container, {"movement_id": "next", "sku": "S1", "quantity": "1"})
    container.catch_up()
    assert verify(container.app, report_view, lambda d: None).count == 0


def test_a_backdated_moment_before_the_year_1000_sorts_and_reads_back(container: Container) -> None:
    record(
        container,
        {"movement_id": "old", "quantity": "1", "occurred_at": "0999-05-06T07:08:09Z"},
        {"movement_id": "new", "quantity": "1", "occurred_at": "2026-01-01T00:00:00Z"},
    )
    container.catch_up()
    window = report(container, until=datetime(1500, 1, 1, tzinfo=UTC))
    assert [r["movement_id"] for r in window] == ["old"]
    assert window[0]["occurred_at"] == datetime(999, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert verify(container.app, container.movement_report, lambda d: None).count == 0


def test_the_swap_catches_up_from_the_copys_tables_not_from_memory(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap writes outside ``apply``; if its transaction is retried (a lock timeout), what
    the copy remembers may hold uncommitted changes: it must read its tables instead."""
    from projections.base import REBUILD
    from projections.catalog import build_view
    from projections.rebuild import _prepare, _swap, fill

    busy_ledger(container)
    container.catch_up()
    kind = VIEWS["movement_report"]
    live = container.movement_report
    copy = build_view(kind, container.app.factory.datastore, suffix=REBUILD)  # type: ignore[attr-defined]
    _prepare(live, copy, restart=True)
    monkeypatch.setattr("projections.rebuild.PAGE", 40)  # several pages: the copy remembers
    fill(container.app, [copy], progress=None)
    for balance in copy.__dict__["_memory"].values():
        balance.physical += 100  # as if a rolled-back swap had left its changes in memory
    record(container, {"movement_id": "during", "sku": "S1", "quantity": "1"})
    container.catch_up()  # the live view moves on; the swap must catch the copy up
    _swap(container.app, live, copy)
    assert verify(container.app, live, lambda d: None).count == 0
