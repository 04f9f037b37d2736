"""An inventory count session: what was counted in one warehouse, and as of when.

Each line keeps the SKU's physical stock as it stood when the line was counted (the stock's
version then). Closing sets each counted SKU to what was counted plus every movement recorded
after its last line: the change recorded is the count minus the stock at that line, so a sale
made while people were counting is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger import ids


class CountStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    ABANDONED = "abandoned"


@dataclass
class CountedSku:
    sku: str
    counted: Decimal
    # The SKU's physical stock, and its stock's version, when its last line was counted.
    physical_at_count: Decimal
    stock_version: int
    last_line: str
    counted_at: datetime


class Count(Aggregate):
    @staticmethod
    def create_id(count_key: str, **_: object) -> UUID:
        return ids.count_id(count_key)

    @event("Opened")
    def __init__(self, count_key: str, warehouse: str, opened_by: str, opened_at: datetime) -> None:
        self.count_key = count_key
        self.warehouse = warehouse
        self.opened_by = opened_by
        self.opened_at = opened_at
        self.status = CountStatus.OPEN
        self.closed_at: datetime | None = None
        self.zero_uncounted = False
        # line id -> (sku, quantity): what makes a line id an idempotency key.
        self.lines: dict[str, tuple[str, Decimal]] = {}
        self.skus: dict[str, CountedSku] = {}

    @event("LineCounted")
    def count_line(
        self,
        line_id: str,
        sku: str,
        quantity: Decimal,
        physical_at_count: Decimal,
        stock_version: int,
        counted_at: datetime,
        counted_by: str,
    ) -> None:
        self.lines[line_id] = (sku, quantity)
        before = self.skus.get(sku)
        self.skus[sku] = CountedSku(
            sku,
            quantity + (before.counted if before else Decimal(0)),
            physical_at_count,
            stock_version,
            line_id,
            counted_at,
        )

    @event("Closed")
    def close(self, zero_uncounted: bool, closed_by: str, closed_at: datetime) -> None:
        self.status = CountStatus.CLOSED
        self.zero_uncounted = zero_uncounted
        self.closed_at = closed_at

    @event("Abandoned")
    def abandon(self, abandoned_by: str, abandoned_at: datetime) -> None:
        self.status = CountStatus.ABANDONED
        self.closed_at = abandoned_at
