"""Stock as it stood at a business moment, computed from the stock's own events.

Every stock event whose ``occurred_at`` is not after the moment counts, including movements
recorded later but dated earlier (a late invoice entry): the answer is what the books say about
that moment now. Events are read a page at a time, so a long history never sits in memory.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ledger import ids
from ledger.application import LedgerApplication
from ledger.stock import Stock
from projections.stock_levels import LevelsRow, physical_and_reserved_change

PAGE = 5_000


def levels_at(
    app: LedgerApplication, sku: str, warehouses: list[str], at: datetime
) -> list[LevelsRow]:
    """The levels of ``sku`` in each of ``warehouses`` that had moved by ``at``."""
    rows = []
    for warehouse in warehouses:
        stock_id = ids.stock_id(sku, warehouse)
        physical = reserved = Decimal(0)
        moved = False
        after: int | None = None
        while True:
            page = app.recorder.select_events(stock_id, gt=after, limit=PAGE)
            for stored in page:
                event = app.mapper.to_domain_event(stored)
                if isinstance(event, Stock.Moved) and event.occurred_at <= at:
                    change_physical, change_reserved = physical_and_reserved_change(event)
                    physical += change_physical
                    reserved += change_reserved
                    moved = True
            if len(page) < PAGE:
                break
            after = page[-1].originator_version
        if moved:
            rows.append(LevelsRow(sku, warehouse, physical, reserved, position=0))
    return rows
