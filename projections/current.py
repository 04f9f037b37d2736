"""A SKU's stock as the ledger holds it now: every write answered before the read is included.

The stock-levels view may lag the event store by milliseconds (or by much more while it is
stopped or rebuilt), and a person who records a movement and then looks at the SKU expects to
see it. So the answer comes from the stocks themselves, the same aggregates every write
decides on, loaded as writes load them (``LedgerApplication.read_current``: the process's
cached copy brought up to date, or the latest snapshot and the events after it), in one
indexed query for all of the SKU's warehouses. The view only says which warehouses those are:

- the SKU's rows in the view name the warehouses it had reached;
- a warehouse the view has not seen yet has its ``Stock.Opened`` event after the view's
  position: those are looked up too.

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
    wanted = [ids.stock_id(sku, warehouse) for warehouse in warehouses_of(app, view, sku)]

    def read(stocks: dict[UUID, Any]) -> list[LevelsRow]:
        return [
            LevelsRow(s.sku, s.warehouse, s.physical, s.reserved, position=0)
            for s in sorted(stocks.values(), key=_warehouse)
        ]

    return app.read_current(wanted, read)


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
