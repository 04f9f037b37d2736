"""Compare every view row with a fresh replay of the events up to the view's position.

Each view is read in one snapshot (its position and its rows agree), and the replay computes
what its rows should be from the events alone, with the same pure rules the views apply (the
check is for rows that drifted, were lost, doubled or edited, not for a second opinion on the
rules, which the tests hold). The movement report, the long one, is compared as two streams in
position order, so memory stays flat; the other views hold one row per stock, order or product
(a product's row with its barcodes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ledger.application import LedgerApplication
from ledger.stock import EVENT_KINDS, Stock
from projections import products, publisher
from projections.base import View
from projections.library_internals import max_tracking_id
from projections.movement_report import MovementReportView, running_latest
from projections.order_list import OrderListView, fold
from projections.products import ProductsView
from projections.publisher import PublisherView
from projections.stock_levels import StockLevelsView

PAGE = 10_000
SHOWN = 50


@dataclass
class Difference:
    view: str
    key: Any
    expected: dict[str, Any] | None
    found: dict[str, Any] | None

    def __str__(self) -> str:
        if self.found is None:
            return f"{self.view} {self.key}: missing; expected {self.expected}"
        if self.expected is None:
            return f"{self.view} {self.key}: unexpected row {self.found}"
        changed = {
            k: (self.expected.get(k), self.found.get(k))
            for k in self.expected.keys() | self.found.keys()
            if self.expected.get(k) != self.found.get(k)
        }
        detail = ", ".join(f"{k}: expected {e!r}, found {f!r}" for k, (e, f) in changed.items())
        return f"{self.view} {self.key}: {detail}"


@dataclass
class Verdict:
    view: str
    position: int
    rows: int = 0
    differences: list[Difference] = field(default_factory=list)
    count: int = 0


def verify(
    app: LedgerApplication, view: View, on_difference: Callable[[Difference], None]
) -> Verdict:
    with _snapshot(view) as c:
        position = max_tracking_id(view, view.tracking_name(), c)
        verdict = Verdict(view.base_table, position)
        events = _events(app, view, position)
        expected = _replay(view, events)
        found = view.rows(c)
        if not isinstance(view, MovementReportView):
            # One row per stock or order: sort here, where the order is the replay's (the
            # database's collation may sort text otherwise).
            found = iter(sorted(found, key=_key_of(view)))
        for difference in _compare(view, expected, _counted(found, verdict)):
            verdict.count += 1
            if len(verdict.differences) < SHOWN:
                verdict.differences.append(difference)
            on_difference(difference)
    return verdict


class _snapshot:  # noqa: N801 - used as a context manager, reads like one
    """A read transaction in which the view's position and rows agree."""

    def __init__(self, view: View) -> None:
        self.view = view

    def __enter__(self) -> Any:
        self._context = self.view.datastore.transaction(commit=False)  # type: ignore[attr-defined]
        c = self._context.__enter__()
        if self.view.is_postgres:
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return c

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)


def _events(app: LedgerApplication, view: View, upto: int) -> Iterator[tuple[Any, int]]:
    start = 0
    while start < upto:
        page = app.recorder.select_notifications(
            start=start, limit=PAGE, stop=upto, inclusive_of_start=False
        )
        if not page:
            return
        for n in page:
            if n.topic in view.topics:
                yield app.mapper.to_domain_event(n), n.id
        start = page[-1].id


def _replay(view: View, events: Iterator[tuple[Any, int]]) -> Iterator[dict[str, Any]]:
    if isinstance(view, StockLevelsView):
        return _stock_levels(events)
    if isinstance(view, MovementReportView):
        return _movement_report(events)
    if isinstance(view, OrderListView):
        return _order_list(events)
    if isinstance(view, PublisherView):
        return publisher.replay(events)
    if isinstance(view, ProductsView):
        return products.replay(events)
    raise TypeError(f"no replay for {type(view).__name__}")


def _stock_levels(events: Iterator[tuple[Any, int]]) -> Iterator[dict[str, Any]]:
    rows: dict[Any, dict[str, Any]] = {}
    for event, position in events:
        if isinstance(event, Stock.Opened):
            rows[event.originator_id] = {
                "sku": event.sku,
                "warehouse": event.warehouse,
                "physical": Decimal(0),
                "reserved": Decimal(0),
                "position": position,
            }
        elif isinstance(event, Stock.Moved):
            row = rows[event.originator_id]
            physical, reserved = event.physical_change, event.reserved_change
            row["physical"] += physical
            row["reserved"] += reserved
            row["position"] = position
    return iter(sorted(rows.values(), key=lambda r: (r["sku"], r["warehouse"])))


def _movement_report(events: Iterator[tuple[Any, int]]) -> Iterator[dict[str, Any]]:
    stocks: dict[Any, list[Any]] = {}
    for event, position in events:
        if isinstance(event, Stock.Opened):
            stocks[event.originator_id] = [event.sku, event.warehouse, Decimal(0), Decimal(0), None]
            continue
        stock = stocks[event.originator_id]
        physical, reserved = event.physical_change, event.reserved_change
        stock[2] += physical
        stock[3] += reserved
        stock[4], backdated = running_latest(stock[4], event.occurred_at)
        yield {
            "position": position,
            "movement_id": event.movement_id,
            "sku": stock[0],
            "warehouse": stock[1],
            "kind": EVENT_KINDS[type(event)],
            "quantity_change": physical,
            "reserved_change": reserved,
            "physical_after": stock[2],
            "reserved_after": stock[3],
            "counted": event.counted if isinstance(event, Stock.InventoryCounted) else None,
            "reference": event.reference,
            "note": event.note,
            "recorded_by": event.recorded_by,
            "occurred_at": event.occurred_at,
            "recorded_at": event.timestamp,
            "latest_occurred_at": stock[4],
            "backdated": backdated,
        }


def _order_list(events: Iterator[tuple[Any, int]]) -> Iterator[dict[str, Any]]:
    rows: dict[Any, dict[str, Any]] = {}
    for event, position in events:
        rows[event.originator_id] = fold(rows.get(event.originator_id), event, position)
    return iter(sorted(({"order_key": key, **row} for key, row in rows.items()), key=_order_key))


def _order_key(row: dict[str, Any]) -> str:
    return str(row["order_key"].hex)


def _counted(rows: Iterator[dict[str, Any]], verdict: Verdict) -> Iterator[dict[str, Any]]:
    for row in rows:
        verdict.rows += 1
        yield row


def _compare(
    view: View,
    expected: Iterator[dict[str, Any]],
    found: Iterator[dict[str, Any]],
) -> Iterator[Difference]:
    """Merge two streams sorted by the view's key, yielding every disagreement."""
    key = _key_of(view)
    want = next(expected, None)
    have = next(found, None)
    while want is not None or have is not None:
        if have is None or (want is not None and key(want) < key(have)):
            yield Difference(view.base_table, key(want), want, None)
            want = next(expected, None)
        elif want is None or key(have) < key(want):
            yield Difference(view.base_table, key(have), None, have)
            have = next(found, None)
        else:
            if _comparable(want) != _comparable(have):
                yield Difference(view.base_table, key(want), want, have)
            want, have = next(expected, None), next(found, None)


def _key_of(view: View) -> Callable[[dict[str, Any]], Any]:
    if isinstance(view, OrderListView):
        return _order_key
    columns = view.key_columns
    return lambda row: tuple(row[c] for c in columns)


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.normalize() if isinstance(v, Decimal) else v) for k, v in row.items()}
