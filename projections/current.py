"""A SKU's stock as the ledger holds it now: every write answered before the read is included.

The stock-levels view may lag the event store by milliseconds (or by much more while it is
stopped or rebuilt), and a person who records a movement and then looks at the SKU expects to
see it. So the answer comes from the stocks themselves, the same aggregates every write
decides on, and the view only saves work:

- each view row stands for its stock as of the row's ``position`` (the notification id of the
  last event it applied), so the stock is restored at that event's version and brought up to
  date with the events recorded after it, one indexed query for all of the SKU's warehouses;
- a warehouse the view has not seen yet has its ``Stock.Opened`` event after the view's
  position: those are looked up too, and those stocks are loaded from their first event.

Read the view's position before its rows: rows read later only know more, and every stock
opened after that position is found among the events that follow it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger import ids
from ledger.application import LedgerApplication
from ledger.stock import Stock
from projections.stock_levels import LevelsRow, StockLevelsView

_OPENED = get_topic(Stock.Opened)
PAGE = 1_000


def current_levels(app: LedgerApplication, view: StockLevelsView, sku: str) -> list[LevelsRow]:
    """The SKU's levels in every warehouse where it has a stock, by warehouse, current."""
    seen_up_to = view.position()
    rows = view.levels_of(sku)
    versions = app.loader.versions_at([row.position for row in rows])
    known: dict[UUID, Any] = {}
    for row in rows:
        at = versions.get(row.position)
        if at is not None:
            stock = Stock.restored(sku, row.warehouse, row.physical, row.reserved, at[1])
            if stock.id == at[0]:
                known[stock.id] = stock
    wanted = [ids.stock_id(sku, row.warehouse) for row in rows]
    wanted += [ids.stock_id(sku, warehouse) for warehouse in opened_since(app, sku, seen_up_to)]
    stocks = sorted(app.loader.load_many(wanted, known=known).values(), key=_warehouse)
    return [LevelsRow(s.sku, s.warehouse, s.physical, s.reserved, position=0) for s in stocks]


def _warehouse(stock: Stock) -> str:
    return stock.warehouse


def warehouses_of(app: LedgerApplication, view: StockLevelsView, sku: str) -> list[str]:
    """Every warehouse in which ``sku`` has a stock now."""
    seen_up_to = view.position()
    known = [row.warehouse for row in view.levels_of(sku)]
    return sorted({*known, *opened_since(app, sku, seen_up_to)})


def opened_since(app: LedgerApplication, sku: str, position: int) -> Iterator[str]:
    """Warehouses in which a stock of ``sku`` was opened after ``position``."""
    start = position + 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=PAGE, topics=[_OPENED])
        for notification in page:
            opened = app.mapper.to_domain_event(notification)
            if opened.sku == sku:
                yield opened.warehouse
        if len(page) < PAGE:
            return
        start = page[-1].id + 1
