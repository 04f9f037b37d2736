"""Inventory count sessions: open, count lines, look at what closing would change, close."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ledger import ids
from ledger.application import LedgerApplication
from ledger.catalog import Catalog
from ledger.codes import check_code, check_object
from ledger.counts import Count, CountedSku, CountStatus
from ledger.errors import Conflict, IdempotencyConflict, InvalidInput, NotFound
from ledger.movements import DEFAULT_WAREHOUSE, MovementRequest, MovementResult
from ledger.quantities import parse_quantity
from ledger.stock import MovementKind, Stock
from ledger.unit_of_work import Session


class CountNotOpen(Conflict):
    code = "count_not_open"


@dataclass(frozen=True)
class CountLine:
    line_id: str
    sku: str
    quantity: Decimal
    counted: Decimal  # the SKU's total in this count after the line
    physical_at_count: Decimal
    replayed: bool
    position: int | None


@dataclass(frozen=True)
class CountedRow:
    sku: str
    counted: Decimal
    physical_at_count: Decimal
    last_line: str
    counted_at: datetime
    physical_now: Decimal
    # Once closed, physical_now already holds the count's own movement.
    closed: bool = False

    @property
    def change(self) -> Decimal:
        """What closing records (or recorded): the count minus the stock when counted."""
        return self.counted - self.physical_at_count

    @property
    def moved_since(self) -> Decimal:
        """The physical change of every other movement recorded after the SKU's last line."""
        own = self.change if self.closed else Decimal(0)
        return self.physical_now - self.physical_at_count - own

    @property
    def physical_after(self) -> Decimal:
        """The stock once closed: what closing would make it, or, closed, what it is now."""
        return self.physical_now if self.closed else self.physical_now + self.change


@dataclass(frozen=True)
class CountSummary:
    count_id: str
    warehouse: str
    status: CountStatus
    opened_by: str
    opened_at: datetime
    closed_at: datetime | None
    zero_uncounted: bool
    lines: int
    rows: list[CountedRow]


def count_movement_id(count_key: str, sku: str) -> str:
    """One movement per SKU and count, whatever its length: codes are at most 64 characters."""
    digest = hashlib.sha256(f"{count_key}\x1f{sku}".encode()).hexdigest()[:40]
    return f"count-{digest}"


class CountDesk:
    def __init__(self, app: LedgerApplication, catalog: Catalog) -> None:
        self.app = app
        self.catalog = catalog

    def open(self, body: object, opened_by: str) -> tuple[CountSummary, bool]:
        data = check_object(body, {"count_id", "warehouse"})
        count_key = check_code(data.get("count_id"), "count_id")
        warehouse = check_code(data.get("warehouse", DEFAULT_WAREHOUSE), "warehouse")
        key = ids.count_id(count_key)

        def work(session: Session) -> bool:
            count: Count | None = session.load([key]).get(key)
            if count is not None:
                if count.warehouse != warehouse:
                    raise IdempotencyConflict(
                        f"count {count_key!r} was opened for warehouse {count.warehouse!r}",
                        field="count_id",
                    )
                return False
            count = Count(count_key, warehouse, opened_by, datetime.now(UTC))
            session.add(count)
            session.save(list(count.collect_events()))
            return True

        created = self.app.unit_of_work.run(work, busy="the count changed too often; try again")
        return self.summary(count_key), created

    def add_line(self, count_key: str, body: object, counted_by: str) -> CountLine:
        count_key = check_code(count_key, "count_id")
        data = check_object(body, {"line_id", "sku", "barcode", "quantity"})
        line_id = check_code(data.get("line_id"), "line_id")
        if (data.get("sku") is None) == (data.get("barcode") is None):
            raise InvalidInput("give either sku or barcode", field="sku")
        if "quantity" not in data:
            raise InvalidInput("quantity is required", field="quantity")
        quantity = parse_quantity(data["quantity"])
        if quantity < 0:
            raise InvalidInput("a counted quantity cannot be negative", field="quantity")
        if data.get("barcode") is not None:
            entry = self.catalog.barcode(data["barcode"])
            sku, quantity = entry.sku, quantity * entry.units
        else:
            sku = check_code(data["sku"], "sku")
        key = ids.count_id(count_key)

        def work(session: Session) -> CountLine:
            count: Count | None = session.load([key]).get(key)
            if count is None:
                raise NotFound(f"no count {count_key!r}", field="count_id")
            known = count.lines.get(line_id)
            if known is not None:
                if known != (sku, quantity):
                    raise IdempotencyConflict(
                        f"line {line_id!r} of count {count_key!r} was recorded with another "
                        "SKU or quantity",
                        field="line_id",
                    )
                counted = count.skus[sku]
                return CountLine(
                    line_id, sku, quantity, counted.counted, counted.physical_at_count, True, None
                )
            if count.status is not CountStatus.OPEN:
                raise CountNotOpen(
                    f"count {count_key!r} is {count.status.value}: it takes no more lines",
                    field="count_id",
                )
            stock_id = ids.stock_id(sku, count.warehouse)
            stock: Stock | None = session.load([stock_id]).get(stock_id)
            count.count_line(
                line_id,
                sku,
                quantity,
                stock.physical if stock is not None else Decimal(0),
                stock.version if stock is not None else 0,
                datetime.now(UTC),
                counted_by,
            )
            positions = session.save(list(count.collect_events()))
            counted = count.skus[sku]
            return CountLine(
                line_id,
                sku,
                quantity,
                counted.counted,
                counted.physical_at_count,
                False,
                max(positions.values(), default=None),
            )

        return self.app.unit_of_work.run(work, busy="the count changed too often; try again")

    def summary(self, count_key: str) -> CountSummary:
        count_key = check_code(count_key, "count_id")
        key = ids.count_id(count_key)

        def read_count(found: dict[Any, Any]) -> tuple[Any, ...] | None:
            count: Count | None = found.get(key)
            if count is None:
                return None
            return (
                count.warehouse,
                count.status,
                count.opened_by,
                count.opened_at,
                count.closed_at,
                count.zero_uncounted,
                len(count.lines),
                [CountedSku(**vars(c)) for c in count.skus.values()],
            )

        state = self.app.read_current([key], read_count)
        if state is None:
            raise NotFound(f"no count {count_key!r}", field="count_id")
        warehouse, status, opened_by, opened_at, closed_at, zero, lines, counted = state
        now = self._physical(warehouse, [c.sku for c in counted])
        rows = [
            CountedRow(
                c.sku,
                c.counted,
                c.physical_at_count,
                c.last_line,
                c.counted_at,
                now[c.sku],
                closed=status is CountStatus.CLOSED,
            )
            for c in sorted(counted, key=lambda c: c.sku)
        ]
        return CountSummary(
            count_key, warehouse, status, opened_by, opened_at, closed_at, zero, lines, rows
        )

    def close(
        self,
        count_key: str,
        body: object,
        closed_by: str,
        skus_in_warehouse: Callable[[str], Sequence[str]],
    ) -> tuple[CountSummary, list[MovementResult]]:
        """Close the session and record one ``inventory_count`` per counted SKU (and, when
        asked, one setting every other SKU of the warehouse to zero), all in one transaction.
        Closing a closed count again records nothing twice and completes a close that was
        interrupted between its two steps."""
        count_key = check_code(count_key, "count_id")
        data = check_object(body if body is not None else {}, {"zero_uncounted"})
        zero = data.get("zero_uncounted", False)
        if not isinstance(zero, bool):
            raise InvalidInput("zero_uncounted must be true or false", field="zero_uncounted")
        key = ids.count_id(count_key)

        def work(session: Session) -> tuple[str, bool, list[CountedSku]]:
            count: Count | None = session.load([key]).get(key)
            if count is None:
                raise NotFound(f"no count {count_key!r}", field="count_id")
            if count.status is CountStatus.ABANDONED:
                raise CountNotOpen(f"count {count_key!r} was abandoned", field="count_id")
            if count.status is CountStatus.OPEN:
                count.close(zero, closed_by, datetime.now(UTC))
                session.save(list(count.collect_events()))
            return (
                count.warehouse,
                count.zero_uncounted,
                [CountedSku(**vars(c)) for c in count.skus.values()],
            )

        warehouse, zero, counted = self.app.unit_of_work.run(
            work, busy="the count changed too often; try again"
        )
        reference = f"count {count_key}"
        requests = [
            MovementRequest(
                movement_id=count_movement_id(count_key, c.sku),
                sku=c.sku,
                warehouse=warehouse,
                kind=MovementKind.INVENTORY_COUNT,
                quantity=c.counted,
                reference=reference,
                note=f"line {c.last_line}",
                counted_against=c.physical_at_count,
            )
            for c in counted
        ]
        if zero:
            counted_skus = {c.sku for c in counted}
            requests += [
                MovementRequest(
                    movement_id=count_movement_id(count_key, sku),
                    sku=sku,
                    warehouse=warehouse,
                    kind=MovementKind.INVENTORY_COUNT,
                    quantity=Decimal(0),
                    reference=reference,
                    note="not counted: set to zero",
                )
                for sku in skus_in_warehouse(warehouse)
                if sku not in counted_skus
            ]
        results = self.app.record_movements(requests, closed_by) if requests else []
        return self.summary(count_key), results

    def abandon(self, count_key: str, by: str) -> CountSummary:
        count_key = check_code(count_key, "count_id")
        key = ids.count_id(count_key)

        def work(session: Session) -> None:
            count: Count | None = session.load([key]).get(key)
            if count is None:
                raise NotFound(f"no count {count_key!r}", field="count_id")
            if count.status is CountStatus.CLOSED:
                raise CountNotOpen(
                    f"count {count_key!r} is closed: its movements stand", field="count_id"
                )
            if count.status is CountStatus.OPEN:
                count.abandon(by, datetime.now(UTC))
                session.save(list(count.collect_events()))

        self.app.unit_of_work.run(work, busy="the count changed too often; try again")
        return self.summary(count_key)

    def _physical(self, warehouse: str, skus: list[str]) -> dict[str, Decimal]:
        keys = {sku: ids.stock_id(sku, warehouse) for sku in skus}

        def read(found: dict[Any, Any]) -> dict[str, Decimal]:
            return {sku: found[k].physical if k in found else Decimal(0) for sku, k in keys.items()}

        return self.app.read_current(list(keys.values()), read) if keys else {}
