"""Stock of one SKU in one warehouse, as an event-sourced aggregate.

Physical stock moves through the seven movement kinds of the domain; reserved stock moves only
through orders (reserve, release, consume). available = physical - reserved is derived, never
stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from ledger import ids
from ledger.errors import InsufficientStock, InvalidInput


class MovementKind(StrEnum):
    INVOICE = "invoice"
    SALES_ORDER = "sales_order"
    PURCHASE_ORDER = "purchase_order"
    SCAN = "scan"
    SPREADSHEET = "spreadsheet"
    MANUAL = "manual"
    INVENTORY_COUNT = "inventory_count"


class ReservationKind(StrEnum):
    RESERVATION = "reservation"
    RELEASE = "release"
    CONSUMPTION = "consumption"


@dataclass(frozen=True)
class Levels:
    physical: Decimal
    reserved: Decimal

    @property
    def available(self) -> Decimal:
        return self.physical - self.reserved


class Stock(Aggregate):
    @staticmethod
    def create_id(sku: str, warehouse: str) -> UUID:
        return ids.stock_id(sku, warehouse)

    class Opened(Aggregate.Created):
        sku: str
        warehouse: str

    class Moved(Aggregate.Event):
        """What every stock event carries: the movement it belongs to and who did it, when.

        Each kind states once how it moves the stock: ``change`` goes to physical stock, to
        reserved stock, or to both. The aggregate and every view read that statement
        (``physical_change``, ``reserved_change``), so no rule is written twice."""

        movement_id: str
        change: Decimal
        reference: str | None
        note: str | None
        recorded_by: str
        occurred_at: datetime

        moves_physical = True
        moves_reserved = False

        @property
        def physical_change(self) -> Decimal:
            return self.change if self.moves_physical else _ZERO

        @property
        def reserved_change(self) -> Decimal:
            return self.change if self.moves_reserved else _ZERO

        def apply(self, stock: Stock) -> None:
            if self.moves_physical:
                stock.physical += self.change
            if self.moves_reserved:
                stock.reserved += self.change

    class InvoicePosted(Moved):
        pass

    class SalesOrderPosted(Moved):
        pass

    class PurchaseOrderReceived(Moved):
        pass

    class ScanAdjusted(Moved):
        pass

    class SpreadsheetImported(Moved):
        pass

    class ManualEntryRecorded(Moved):
        pass

    class InventoryCounted(Moved):
        """``change`` is the difference the count caused; ``counted`` the number on the shelf."""

        counted: Decimal

    class Reserved(Moved):
        moves_physical = False
        moves_reserved = True

    class Released(Moved):
        """``change`` is negative: the reservation shrinks by that much."""

        moves_physical = False
        moves_reserved = True

    class Consumed(Moved):
        """``change`` is negative: physical and reserved both drop by that much."""

        moves_physical = True
        moves_reserved = True

    def __init__(self, sku: str, warehouse: str) -> None:
        self.sku = sku
        self.warehouse = warehouse
        self.physical = Decimal(0)
        self.reserved = Decimal(0)

    @classmethod
    def opened(cls, sku: str, warehouse: str, timestamp: datetime) -> tuple[Stock, Stock.Opened]:
        """A new stock and its creation event, as ``Stock(sku, warehouse)`` would make them,
        but with the event handed back instead of pending on the aggregate.

        A batch over new SKUs opens one stock per row; the library's generic construction
        inspects its arguments each time and costs about as much again as the event itself.
        ``tests/unit/test_stock.py`` holds the two paths equal; the caller stores the event.
        """
        event = cls.Opened(
            originator_id=ids.stock_id(sku, warehouse),
            originator_version=cls.INITIAL_VERSION,
            timestamp=timestamp,
            originator_topic=_STOCK_TOPIC,
            sku=sku,
            warehouse=warehouse,
        )
        return event.mutate(None), event

    @property
    def levels(self) -> Levels:
        return Levels(self.physical, self.reserved)

    @property
    def available(self) -> Decimal:
        return self.physical - self.reserved

    def move(
        self,
        kind: MovementKind,
        quantity: Decimal,
        *,
        movement_id: str,
        reference: str | None,
        note: str | None,
        recorded_by: str,
        occurred_at: datetime,
        allow_negative: bool,
        counted_against: Decimal | None = None,
    ) -> None:
        """Record a movement of physical stock.

        ``quantity`` is a signed change, except for an inventory count, where it is the counted
        quantity and the event records the difference it makes: from the physical stock now,
        or from ``counted_against``, the physical stock when the count was taken (a count
        session's line), so that every movement recorded since the count is kept.
        """
        common = {
            "movement_id": movement_id,
            "reference": reference,
            "note": note,
            "recorded_by": recorded_by,
            "occurred_at": occurred_at,
        }
        if kind is MovementKind.INVENTORY_COUNT:
            if quantity < 0:
                raise InvalidInput("an inventory count cannot be negative", field="quantity")
            base = self.physical if counted_against is None else counted_against
            self.trigger_event(
                Stock.InventoryCounted, change=quantity - base, counted=quantity, **common
            )
            return
        if quantity == 0:
            raise InvalidInput("quantity must not be zero for this kind", field="quantity")
        if not allow_negative and self.physical + quantity < 0:
            raise InsufficientStock(
                f"{self.sku} in {self.warehouse} has physical stock {self.physical}; "
                f"a change of {quantity} would make it negative",
                sku=self.sku,
                warehouse=self.warehouse,
                physical=str(self.physical),
                movement_id=movement_id,
            )
        self.trigger_event(_MOVEMENT_EVENTS[kind], change=quantity, **common)

    def reserve(self, quantity: Decimal, **common: object) -> None:
        """Reservations never fail for lack of stock: the sale already happened on the platform."""
        self._check_positive(quantity)
        self.trigger_event(Stock.Reserved, change=quantity, **common)

    def release(self, quantity: Decimal, **common: object) -> None:
        self._check_positive(quantity)
        self._check_reserved_covers(quantity)
        self.trigger_event(Stock.Released, change=-quantity, **common)

    def consume(self, quantity: Decimal, **common: object) -> None:
        self._check_positive(quantity)
        self._check_reserved_covers(quantity)
        self.trigger_event(Stock.Consumed, change=-quantity, **common)

    @staticmethod
    def _check_positive(quantity: Decimal) -> None:
        if quantity <= 0:
            raise InvalidInput("a reservation quantity must be positive", field="quantity")

    def _check_reserved_covers(self, quantity: Decimal) -> None:
        if quantity > self.reserved:
            raise InvalidInput(
                f"only {self.reserved} is reserved for {self.sku} in {self.warehouse}",
                field="quantity",
            )


_ZERO = Decimal(0)
_STOCK_TOPIC = get_topic(Stock)

_MOVEMENT_EVENTS: dict[MovementKind, type[Stock.Moved]] = {
    MovementKind.INVOICE: Stock.InvoicePosted,
    MovementKind.SALES_ORDER: Stock.SalesOrderPosted,
    MovementKind.PURCHASE_ORDER: Stock.PurchaseOrderReceived,
    MovementKind.SCAN: Stock.ScanAdjusted,
    MovementKind.SPREADSHEET: Stock.SpreadsheetImported,
    MovementKind.MANUAL: Stock.ManualEntryRecorded,
    MovementKind.INVENTORY_COUNT: Stock.InventoryCounted,
}

EVENT_KINDS: dict[type[Stock.Moved], str] = {
    **{event: kind.value for kind, event in _MOVEMENT_EVENTS.items()},
    Stock.Reserved: ReservationKind.RESERVATION.value,
    Stock.Released: ReservationKind.RELEASE.value,
    Stock.Consumed: ReservationKind.CONSUMPTION.value,
}
"""The movement report's ``kind`` for each stock event."""
