"""Stock as it stood at a business moment, without replaying the stock's history.

Every stock event whose ``occurred_at`` is not after the moment counts, including movements
recorded later but dated earlier (a late invoice entry): the answer is what the books say about
that moment now. It also includes every write answered before the read, like
``projections/current.py``.

The movement report (``projections/movement_report.py``) has one row per stock event, in
position order, with the stock's balances after it. Each row also carries ``latest``, the
latest ``occurred_at`` of its stock's rows up to and including it, and ``backdated``: whether
the row is dated before an earlier row of its stock. For a moment ``at`` and one stock:

- ``latest`` never decreases with position, so the last row K whose ``latest`` is not after
  ``at`` is one lookup in an index on (sku, warehouse, latest, position). Every row up to K is
  dated by ``at``, so K's balances after count all of them.
- K's successor is dated after ``at`` (its ``latest`` is after ``at``, K's is not). Any row
  after that successor that is dated by ``at`` is dated before the successor, so it is
  backdated: the rows after K that count are backdated rows, summed from a partial index on
  the backdated rows alone.
- The view may lag: the stock's events after its last row in the view are read from the event
  store (``loader.versions_at`` places that row in the stock's history) and added. These are
  the view's lag, a few events; with the views stopped, the whole history.

So the cost is a few index lookups plus the backdated rows recorded after K, whatever the
length of the history. Backdated rows are rare (late entries); their number, not the
history's, bounds the correction. A stock recorded mostly out of date order would have most
of its rows backdated, and its reads at early moments would read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledger import ids
from ledger.application import LedgerApplication
from ledger.stock import Stock
from projections.movement_report import MovementReportView
from projections.stock_levels import LevelsRow

PAGE = 5_000


def levels_at(
    app: LedgerApplication,
    report: MovementReportView,
    sku: str,
    warehouses: list[str],
    at: datetime,
) -> list[LevelsRow]:
    """The levels of ``sku`` in each of ``warehouses`` that had moved by ``at``."""
    seen = report.stocks_at(sku, warehouses, at)
    versions = app.loader.versions_at([s.through for s in seen.values() if s.through])
    rows = []
    for warehouse in warehouses:
        stock_id = ids.stock_id(sku, warehouse)
        known = seen[warehouse]
        physical, reserved, moved = known.physical, known.reserved, known.moved
        after: int | None = None
        if known.through:
            placed = versions.get(known.through)
            if placed is not None and placed[0] == stock_id:
                after = placed[1]
            else:
                # The view's rows cannot be placed in the stock's history (a loader without
                # lookups by position): count from the events alone.
                physical = reserved = Decimal(0)
                moved = False
        for event in _events_after(app, stock_id, after):
            if isinstance(event, Stock.Moved) and event.occurred_at <= at:
                change_physical, change_reserved = event.physical_change, event.reserved_change
                physical += change_physical
                reserved += change_reserved
                moved = True
        if moved:
            rows.append(LevelsRow(sku, warehouse, physical, reserved, position=0))
    return rows


def _events_after(app: LedgerApplication, stock_id: UUID, version: int | None) -> Iterator[Any]:
    """The stock's events after ``version`` (all of them for None), read a page at a time, so
    a long history never sits in memory."""
    while True:
        page = app.recorder.select_events(stock_id, gt=version, limit=PAGE)
        for stored in page:
            yield app.mapper.to_domain_event(stored)
        if len(page) < PAGE:
            return
        version = page[-1].originator_version
