"""A sales order from a platform, and what it does to stock.

An order decides; the stocks it touches carry out. Each command on an ``Order`` checks the
order's rules, records the order's own event, and returns the ``StockChange``s that the
application service applies to the ``Stock`` aggregates and saves in the same transaction, so
an order is never half-reserved.

Lifecycle: awaiting_payment → payment_in_analysis → payment_confirmed → invoiced, or cancelled,
or deleted. Status updates that arrive late or out of order never move an order backwards.
Whether a status reserves is the platform's policy (VTEX holds the reservation itself until
payment is confirmed; other platforms reserve at import), passed in as ``reserves``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import ids
from ledger.codes import check_code
from ledger.errors import Conflict, InvalidInput
from ledger.quantities import parse_quantity


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAYMENT_IN_ANALYSIS = "payment_in_analysis"
    PAYMENT_CONFIRMED = "payment_confirmed"
    INVOICED = "invoiced"
    CANCELLED = "cancelled"


# The forward path; cancelled (and deletion) end an order from any status before invoiced.
_RANK = {
    OrderStatus.AWAITING_PAYMENT: 0,
    OrderStatus.PAYMENT_IN_ANALYSIS: 1,
    OrderStatus.PAYMENT_CONFIRMED: 2,
    OrderStatus.INVOICED: 3,
}


class StockAction(StrEnum):
    RESERVE = "reserve"
    RELEASE = "release"
    CONSUME = "consume"  # physical and reserved both drop
    DEDUCT = "deduct"  # physical drops: the order never reserved


@dataclass(frozen=True)
class OrderLine:
    sku: str
    warehouse: str
    quantity: Decimal

    @property
    def key(self) -> tuple[str, str]:
        return (self.sku, self.warehouse)


@dataclass(frozen=True)
class StockChange:
    action: StockAction
    sku: str
    warehouse: str
    quantity: Decimal


class OrderConflict(Conflict):
    code = "order_conflict"


def parse_lines(items: object, default_warehouse: str = "main") -> list[OrderLine]:
    """An order's items as a client or platform sent them: non-empty, one line per
    (SKU, warehouse), positive quantities."""
    if not isinstance(items, list) or not items:
        raise InvalidInput("an order needs at least one item", field="items")
    lines: list[OrderLine] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        field = f"items[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{field} must be an object", field=field)
        sku = check_code(item.get("sku"), f"{field}.sku")
        warehouse = check_code(item.get("warehouse", default_warehouse), f"{field}.warehouse")
        if "quantity" not in item:
            raise InvalidInput(f"{field}.quantity is required", field=f"{field}.quantity")
        quantity = parse_quantity(item["quantity"], f"{field}.quantity")
        if quantity <= 0:
            raise InvalidInput(f"{field}.quantity must be positive", field=f"{field}.quantity")
        if (sku, warehouse) in seen:
            raise InvalidInput(
                f"{field}: {sku} in {warehouse} appears on more than one line", field=field
            )
        seen.add((sku, warehouse))
        lines.append(OrderLine(sku, warehouse, quantity))
    return lines


def _line_state(lines: Iterable[OrderLine]) -> list[dict[str, Any]]:
    return [{"sku": x.sku, "warehouse": x.warehouse, "quantity": x.quantity} for x in lines]


def _lines_of(state: list[dict[str, Any]]) -> dict[tuple[str, str], Decimal]:
    return {(x["sku"], x["warehouse"]): x["quantity"] for x in state}


class Order(Aggregate):
    @staticmethod
    def create_id(platform: str, order_id: str) -> UUID:
        return ids.order_id(platform, order_id)

    class Imported(Aggregate.Created):
        platform: str
        order_id: str
        status: str
        carrier: str | None
        lines: list[dict[str, Any]]

    class StatusChanged(Aggregate.Event):
        status: str

        def apply(self, order: Order) -> None:
            order.status = OrderStatus(self.status)

    class StockReserved(Aggregate.Event):
        lines: list[dict[str, Any]]

        def apply(self, order: Order) -> None:
            for key, quantity in _lines_of(self.lines).items():
                order.reserved[key] = order.reserved.get(key, Decimal(0)) + quantity

    class StockReleased(Aggregate.Event):
        lines: list[dict[str, Any]]

        def apply(self, order: Order) -> None:
            for key, quantity in _lines_of(self.lines).items():
                left = order.reserved.get(key, Decimal(0)) - quantity
                if left:
                    order.reserved[key] = left
                else:
                    order.reserved.pop(key, None)

    class StockPosted(Aggregate.Event):
        """The order's stock left the warehouse: reserved lines consumed, the rest deducted."""

        lines: list[dict[str, Any]]

        def apply(self, order: Order) -> None:
            order.reserved.clear()
            order.stock_posted = True

    class Invoiced(Aggregate.Event):
        invoice: dict[str, Any]

        def apply(self, order: Order) -> None:
            order.invoice = dict(self.invoice)
            order.status = OrderStatus.INVOICED

    class TrackingUpdated(Aggregate.Event):
        tracking_code: str | None
        tracking_url: str | None

        def apply(self, order: Order) -> None:
            order.invoice = {
                **(order.invoice or {}),
                "tracking_code": self.tracking_code,
                "tracking_url": self.tracking_url,
            }

    class LinesEdited(Aggregate.Event):
        lines: list[dict[str, Any]]

        def apply(self, order: Order) -> None:
            order.lines = _lines_of(self.lines)

    class Deleted(Aggregate.Event):
        def apply(self, order: Order) -> None:
            order.deleted = True

    class Held(Aggregate.Event):
        """Not imported yet (e.g. its carrier has no mapping): reserves nothing meanwhile."""

        reason: str

        def apply(self, order: Order) -> None:
            order.blocked_reason = self.reason

    class Released(Aggregate.Event):
        def apply(self, order: Order) -> None:
            order.blocked_reason = None

    def __init__(
        self,
        platform: str,
        order_id: str,
        status: str,
        carrier: str | None,
        lines: list[dict[str, Any]],
    ) -> None:
        self.platform = platform
        self.order_id = order_id
        self.status = OrderStatus(status)
        self.carrier = carrier
        self.lines: dict[tuple[str, str], Decimal] = _lines_of(lines)
        self.reserved: dict[tuple[str, str], Decimal] = {}
        self.stock_posted = False
        self.invoice: dict[str, Any] | None = None
        self.deleted = False
        self.blocked_reason: str | None = None

    @classmethod
    def imported(
        cls,
        platform: str,
        order_id: str,
        status: OrderStatus,
        carrier: str | None,
        lines: list[OrderLine],
        reserves: Callable[[OrderStatus], bool],
        blocked_reason: str | None = None,
    ) -> tuple[Order, list[StockChange]]:
        if status is OrderStatus.CANCELLED:
            raise InvalidInput("a cancelled order is not imported", field="status")
        order = cls(
            platform=platform,
            order_id=order_id,
            status=status.value,
            carrier=carrier,
            lines=_line_state(lines),
        )
        if blocked_reason is not None:
            order.trigger_event(Order.Held, reason=blocked_reason)
            return order, []
        return order, order._enter(reserves)

    def unblock(self, reserves: Callable[[OrderStatus], bool]) -> list[StockChange]:
        """The reason it was held is gone: import it now, as if it had just arrived."""
        if self.blocked_reason is None:
            return []
        self.trigger_event(Order.Released)
        if self.deleted or self.status is OrderStatus.CANCELLED:
            return []
        return self._enter(reserves)

    def _enter(self, reserves: Callable[[OrderStatus], bool]) -> list[StockChange]:
        if self.status is OrderStatus.INVOICED:
            return self._take_stock()
        if reserves(self.status):
            return self._reserve_all()
        return []

    # -- queries -----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self.deleted and self.status not in (
            OrderStatus.CANCELLED,
            OrderStatus.INVOICED,
        )

    @property
    def holds_reservation(self) -> bool:
        return bool(self.reserved)

    # -- commands ----------------------------------------------------------------------------

    def advance(
        self, status: OrderStatus, reserves: Callable[[OrderStatus], bool]
    ) -> list[StockChange]:
        """A status reported by the platform. Late or out-of-order reports change nothing."""
        if status is OrderStatus.CANCELLED:
            return self.cancel()
        if self.deleted or self.status is OrderStatus.CANCELLED:
            return []
        if _RANK[status] <= _RANK[self.status]:
            return []
        self.trigger_event(Order.StatusChanged, status=status.value)
        if self.blocked_reason is not None:
            return []
        if status is OrderStatus.INVOICED:
            return self._take_stock()
        if not self.reserved and not self.stock_posted and reserves(status):
            return self._reserve_all()
        return []

    def post_stock(self) -> list[StockChange]:
        """The seller ships before invoicing: the stock leaves now, and only once."""
        self._check_not_ended("post the stock of")
        self._check_not_held()
        return self._take_stock()

    def record_invoice(self, invoice: dict[str, Any]) -> list[StockChange]:
        if self.deleted or self.status is OrderStatus.CANCELLED:
            raise OrderConflict(f"order {self.order_id} is {self._ended()}; it cannot be invoiced")
        self._check_not_held()
        if self.invoice is not None:
            if self.invoice == invoice:
                return []
            if _same_but_tracking(self.invoice, invoice):
                # Tracking often arrives after the invoice: the same invoice sent again with it.
                self.trigger_event(
                    Order.TrackingUpdated,
                    tracking_code=invoice.get("tracking_code"),
                    tracking_url=invoice.get("tracking_url"),
                )
                return []
            raise OrderConflict(
                f"order {self.order_id} is already invoiced with number {self.invoice['number']}"
            )
        changes = self._take_stock()
        self.trigger_event(Order.Invoiced, invoice=invoice)
        return changes

    def cancel(self) -> list[StockChange]:
        return self._end(
            "cancel",
            lambda: self.trigger_event(Order.StatusChanged, status=OrderStatus.CANCELLED.value),
        )

    def delete(self) -> list[StockChange]:
        return self._end("delete", lambda: self.trigger_event(Order.Deleted))

    def edit_lines(self, lines: list[OrderLine]) -> list[StockChange]:
        """A local edit before invoicing: the reservation moves by exactly the difference."""
        self._check_not_ended("edit")
        if self.stock_posted:
            raise OrderConflict(
                f"the stock of order {self.order_id} was already posted; record a movement "
                "for the difference instead"
            )
        new = {line.key: line.quantity for line in lines}
        changes: list[StockChange] = []
        if self.reserved:
            more = [OrderLine(*key, q - self.lines.get(key, Decimal(0))) for key, q in new.items()]
            less = [OrderLine(*key, q - new.get(key, Decimal(0))) for key, q in self.lines.items()]
            grow = [x for x in more if x.quantity > 0]
            shrink = [x for x in less if x.quantity > 0]
            if grow:
                self.trigger_event(Order.StockReserved, lines=_line_state(grow))
                changes += [_change(StockAction.RESERVE, x) for x in grow]
            if shrink:
                self.trigger_event(Order.StockReleased, lines=_line_state(shrink))
                changes += [_change(StockAction.RELEASE, x) for x in shrink]
        self.trigger_event(Order.LinesEdited, lines=_line_state(lines))
        return changes

    # -- internals ---------------------------------------------------------------------------

    def _current_lines(self) -> list[OrderLine]:
        return [OrderLine(sku, wh, q) for (sku, wh), q in self.lines.items()]

    def _reserve_all(self) -> list[StockChange]:
        lines = self._current_lines()
        self.trigger_event(Order.StockReserved, lines=_line_state(lines))
        return [_change(StockAction.RESERVE, x) for x in lines]

    def _take_stock(self) -> list[StockChange]:
        if self.stock_posted:
            return []
        lines = self._current_lines()
        changes = []
        for line in lines:
            reserved = self.reserved.get(line.key, Decimal(0))
            if reserved:
                changes.append(_change(StockAction.CONSUME, OrderLine(*line.key, reserved)))
            if line.quantity > reserved:
                rest = OrderLine(*line.key, line.quantity - reserved)
                changes.append(_change(StockAction.DEDUCT, rest))
        self.trigger_event(Order.StockPosted, lines=_line_state(lines))
        return changes

    def _end(self, verb: str, record: Callable[[], None]) -> list[StockChange]:
        if self.deleted or self.status is OrderStatus.CANCELLED:
            return []
        if self.status is OrderStatus.INVOICED or self.stock_posted:
            # Returns are a stock movement of their own, never an undone order.
            raise OrderConflict(
                f"cannot {verb} order {self.order_id}: its stock has left the warehouse; "
                "record the return as a stock movement"
            )
        changes: list[StockChange] = []
        if self.reserved:
            lines = [OrderLine(*key, q) for key, q in self.reserved.items()]
            self.trigger_event(Order.StockReleased, lines=_line_state(lines))
            changes = [_change(StockAction.RELEASE, x) for x in lines]
        record()
        return changes

    def _check_not_ended(self, verb: str) -> None:
        if self.deleted or self.status in (OrderStatus.CANCELLED, OrderStatus.INVOICED):
            raise OrderConflict(f"order {self.order_id} is {self._ended()}; cannot {verb} it")

    def _check_not_held(self) -> None:
        if self.blocked_reason is not None:
            raise OrderConflict(
                f"order {self.order_id} is held ({self.blocked_reason}); it moves no stock yet"
            )

    def _ended(self) -> str:
        return "deleted" if self.deleted else self.status.value


_TRACKING = ("tracking_code", "tracking_url")


def _same_but_tracking(recorded: dict[str, Any], invoice: dict[str, Any]) -> bool:
    """Whether ``invoice`` only adds or changes the tracking of the recorded one."""
    rest = set(recorded) | set(invoice)
    return any(invoice.get(k) for k in _TRACKING) and all(
        recorded.get(k) == invoice.get(k) for k in rest if k not in _TRACKING
    )


def _change(action: StockAction, line: OrderLine) -> StockChange:
    return StockChange(action, line.sku, line.warehouse, line.quantity)


def parse_invoice_value(value: object) -> Decimal:
    """An invoice's total: an amount of money, more than zero and in whole cents. Platforms
    take it in cents (VTEX: an integer, "must be greater than 0"), so a fraction of a cent
    could not reach them as written."""
    amount = parse_quantity(value, "value")
    if amount <= 0:
        raise InvalidInput("value must be greater than zero", field="value")
    if (amount * 100) % 1:
        raise InvalidInput(
            "value must be in whole cents (at most two decimal places)", field="value"
        )
    return amount
