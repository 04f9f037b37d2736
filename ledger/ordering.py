"""The order desk: order commands, each saved with its stock changes in one transaction.

Every command loads the order and the stocks it touches, lets the order decide, applies the
returned changes to the stocks, and stores all of their events together: an order is never
half-reserved. A write conflict (another writer got there first) reloads and decides again,
so twenty copies of one order arriving at once reserve once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import IntegrityError

from ledger import ids
from ledger.application import MAX_ATTEMPTS, LedgerApplication
from ledger.errors import Busy, NotFound
from ledger.orders import Order, OrderLine, OrderStatus, StockAction, StockChange
from ledger.stock import MovementKind, Stock


def reserves_by_default(platform_type: str) -> Callable[[OrderStatus], bool]:
    """VTEX holds the reservation itself while payment is pending; others reserve at once."""
    if platform_type == "vtex":
        return lambda status: (
            status
            not in (
                OrderStatus.AWAITING_PAYMENT,
                OrderStatus.PAYMENT_IN_ANALYSIS,
            )
        )
    return lambda status: True


@dataclass(frozen=True)
class OrderOutcome:
    order: Order
    created: bool
    changes: list[StockChange]


Decision = Callable[[Order | None], tuple[Order, list[StockChange]]]


class OrderDesk:
    def __init__(self, app: LedgerApplication) -> None:
        self.app = app

    def import_order(
        self,
        platform: str,
        order_id: str,
        status: OrderStatus,
        carrier: str | None,
        lines: list[OrderLine],
        reserves: Callable[[OrderStatus], bool],
        recorded_by: str,
    ) -> OrderOutcome:
        """Import an order once; importing it again only reports its status onward."""

        def decide(existing: Order | None) -> tuple[Order, list[StockChange]]:
            if existing is None:
                return Order.imported(platform, order_id, status, carrier, lines, reserves)
            return existing, existing.advance(status, reserves)

        return self._run(platform, order_id, decide, recorded_by, lines)

    def advance(
        self,
        platform: str,
        order_id: str,
        status: OrderStatus,
        reserves: Callable[[OrderStatus], bool],
        recorded_by: str,
    ) -> OrderOutcome:
        return self._command(platform, order_id, lambda o: o.advance(status, reserves), recorded_by)

    def post_stock(self, platform: str, order_id: str, recorded_by: str) -> OrderOutcome:
        return self._command(platform, order_id, Order.post_stock, recorded_by)

    def invoice(
        self, platform: str, order_id: str, invoice: dict[str, Any], recorded_by: str
    ) -> OrderOutcome:
        return self._command(platform, order_id, lambda o: o.record_invoice(invoice), recorded_by)

    def cancel(self, platform: str, order_id: str, recorded_by: str) -> OrderOutcome:
        return self._command(platform, order_id, Order.cancel, recorded_by)

    def delete(self, platform: str, order_id: str, recorded_by: str) -> OrderOutcome:
        return self._command(platform, order_id, Order.delete, recorded_by)

    def edit(
        self, platform: str, order_id: str, lines: list[OrderLine], recorded_by: str
    ) -> OrderOutcome:
        return self._command(platform, order_id, lambda o: o.edit_lines(lines), recorded_by, lines)

    def get(self, platform: str, order_id: str) -> Order:
        found = self.app.loader.load_many([ids.order_id(platform, order_id)])
        order = found.get(ids.order_id(platform, order_id))
        if order is None:
            raise NotFound(f"no {platform} order {order_id!r}", platform=platform)
        return order

    # -- internals ---------------------------------------------------------------------------

    def _command(
        self,
        platform: str,
        order_id: str,
        act: Callable[[Order], list[StockChange]],
        recorded_by: str,
        extra_lines: list[OrderLine] | None = None,
    ) -> OrderOutcome:
        def decide(existing: Order | None) -> tuple[Order, list[StockChange]]:
            if existing is None:
                raise NotFound(f"no {platform} order {order_id!r}", platform=platform)
            return existing, act(existing)

        return self._run(platform, order_id, decide, recorded_by, extra_lines or [])

    def _run(
        self,
        platform: str,
        order_id: str,
        decide: Decision,
        recorded_by: str,
        extra_lines: list[OrderLine],
    ) -> OrderOutcome:
        order_key = ids.order_id(platform, order_id)
        for attempt in range(MAX_ATTEMPTS):
            found = self.app.loader.load_many([order_key])
            existing = found.get(order_key)
            keys = {(sku, wh) for sku, wh in (existing.lines if existing else {})}
            keys |= {line.key for line in extra_lines}
            stock_ids = {ids.stock_id(sku, wh): (sku, wh) for sku, wh in keys}
            stocks: dict[Any, Stock] = self.app.loader.load_many(list(stock_ids))
            order, changes = decide(existing)
            opened = self._apply(order, changes, stocks, recorded_by)
            try:
                events = [*opened]
                for stock in stocks.values():
                    events += stock.collect_events()
                events += order.collect_events()
                self.app.store_events(events)
            except IntegrityError:
                time.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))
                continue
            # Stocks changed outside the movement path: drop any cached copy.
            self.app.stocks.lend(list(stocks))
            return OrderOutcome(order, existing is None, changes)
        raise Busy("the order or its stock changed concurrently too often; try again")

    def _apply(
        self,
        order: Order,
        changes: list[StockChange],
        stocks: dict[Any, Stock],
        recorded_by: str,
    ) -> list[Stock.Opened]:
        opened: list[Stock.Opened] = []
        now = datetime.now(UTC)
        for number, change in enumerate(changes):
            stock_id = ids.stock_id(change.sku, change.warehouse)
            stock = stocks.get(stock_id)
            if stock is None:
                stock, event = Stock.opened(change.sku, change.warehouse, now)
                stocks[stock_id] = stock
                opened.append(event)
            common: dict[str, Any] = {
                "movement_id": f"order/{order.platform}/{order.order_id}/{order.version}/{number}",
                "reference": f"{order.platform} order {order.order_id}",
                "note": None,
                "recorded_by": recorded_by,
                "occurred_at": now,
            }
            if change.action is StockAction.RESERVE:
                stock.reserve(change.quantity, **common)
            elif change.action is StockAction.RELEASE:
                stock.release(change.quantity, **common)
            elif change.action is StockAction.CONSUME:
                stock.consume(change.quantity, **common)
            else:
                # The sale happened on the platform: its deduction is never refused.
                stock.move(
                    MovementKind.SALES_ORDER, -change.quantity, allow_negative=True, **common
                )
        return opened
