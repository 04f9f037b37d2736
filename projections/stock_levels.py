"""Stock levels per (SKU, warehouse): the view behind ``GET /stock`` and ``GET /stock/{sku}``.

The aggregates stay the authority for writes and their rules; this view answers reads without
loading aggregates, and says up to which event position it is current.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Composable, Composed, Identifier

from ledger.stock import EVENT_KINDS, Stock
from projections.runner import StalePage

MICROS = Decimal(1_000_000)


@dataclass(frozen=True)
class LevelsRow:
    sku: str
    warehouse: str
    physical: Decimal
    reserved: Decimal
    position: int

    @property
    def available(self) -> Decimal:
        return self.physical - self.reserved


@dataclass(frozen=True)
class Opening:
    stock_id: UUID
    sku: str
    warehouse: str
    position: int


@dataclass
class Change:
    """The summed effect of a page's events on one stock row."""

    physical: Decimal
    reserved: Decimal
    position: int


class StockLevelsView(TrackingRecorder, ABC):
    @abstractmethod
    def apply(
        self,
        openings: list[Opening],
        changes: dict[UUID, Change],
        tracking: Tracking,
        *,
        after: int,
    ) -> None:
        """Insert the opened rows, then add the changes, and record ``tracking``: one
        transaction, made only if the view's position is still ``after`` (else StalePage)."""

    def _check_still_at(self, after: int, current: int | None) -> None:
        if (current or 0) != after:
            raise StalePage(f"view is at {current}, page was read after {after}")

    @abstractmethod
    def levels_of(self, sku: str) -> list[LevelsRow]: ...

    @abstractmethod
    def page(self, *, warehouse: str | None, after_sku: str | None, limit: int) -> list[LevelsRow]:
        """Rows of up to ``limit`` SKUs with sku > after_sku, in SKU order."""


class StockLevelsProjection(Projection[StockLevelsView]):
    name = "stock_levels"
    topics = tuple(get_topic(cls) for cls in (Stock.Opened, *EVENT_KINDS))

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        after = self.view.max_tracking_id(tracking.application_name) or 0
        self.process_page([(domain_event, tracking.notification_id)], tracking, after)

    def process_page(self, events: list[tuple[Any, int]], tracking: Tracking, after: int) -> None:
        openings: list[Opening] = []
        changes: dict[UUID, Change] = {}
        for event, position in events:
            if isinstance(event, Stock.Opened):
                openings.append(Opening(event.originator_id, event.sku, event.warehouse, position))
            elif isinstance(event, Stock.Moved):
                physical, reserved = physical_and_reserved_change(event)
                change = changes.get(event.originator_id)
                if change is None:
                    changes[event.originator_id] = Change(physical, reserved, position)
                else:
                    change.physical += physical
                    change.reserved += reserved
                    change.position = position
        self.view.apply(openings, changes, tracking, after=after)


def physical_and_reserved_change(event: Stock.Moved) -> tuple[Decimal, Decimal]:
    """How much one stock event moved physical and reserved stock (mirrors the aggregate)."""
    if isinstance(event, (Stock.Reserved, Stock.Released)):
        return Decimal(0), event.change
    if isinstance(event, Stock.Consumed):
        return event.change, event.change
    return event.change, Decimal(0)


class SQLiteStockLevelsView(SQLiteTrackingRecorder, StockLevelsView):
    def apply(
        self,
        openings: list[Opening],
        changes: dict[UUID, Change],
        tracking: Tracking,
        *,
        after: int,
    ) -> None:
        with self.datastore.transaction(commit=True) as c:
            # Write first: that takes SQLite's write lock (waiting for it) before anything is
            # read, so the check below reads current data. Reading first made a concurrent
            # writer's commit fail this transaction (SQLITE_BUSY_SNAPSHOT) and be retried.
            c.execute("UPDATE stock_levels SET position = position WHERE rowid = -1")
            self._check_still_at(after, self._max_tracking_id(tracking.application_name, c))
            c.executemany(
                "INSERT INTO stock_levels (stock_id, sku, warehouse, position) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(o.stock_id.hex, o.sku, o.warehouse, o.position) for o in openings],
            )
            c.executemany(
                "UPDATE stock_levels SET physical_micros = physical_micros + ?, "
                "reserved_micros = reserved_micros + ?, position = ? WHERE stock_id = ?",
                [
                    (_micros(ch.physical), _micros(ch.reserved), ch.position, stock_id.hex)
                    for stock_id, ch in changes.items()
                ],
            )
            self._insert_tracking(c, tracking)

    def levels_of(self, sku: str) -> list[LevelsRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT * FROM stock_levels WHERE sku = ? ORDER BY warehouse", (sku,))
            return [_sqlite_row(r) for r in c.fetchall()]

    def page(self, *, warehouse: str | None, after_sku: str | None, limit: int) -> list[LevelsRow]:
        where, params = ["1=1"], []
        if warehouse is not None:
            where.append("warehouse = ?")
            params.append(warehouse)
        if after_sku is not None:
            where.append("sku > ?")
            params.append(after_sku)
        query = (
            "SELECT * FROM stock_levels WHERE sku IN (SELECT DISTINCT sku FROM stock_levels "
            f"WHERE {' AND '.join(where)} ORDER BY sku LIMIT ?)"
        )
        params.append(limit)
        if warehouse is not None:
            query += " AND warehouse = ?"
            params.append(warehouse)
        with self.datastore.transaction(commit=False) as c:
            c.execute(query + " ORDER BY sku, warehouse", params)
            return [_sqlite_row(r) for r in c.fetchall()]


def _micros(value: Decimal) -> int:
    return int(value * MICROS)


def _sqlite_row(r: Any) -> LevelsRow:
    return LevelsRow(
        sku=r["sku"],
        warehouse=r["warehouse"],
        physical=Decimal(r["physical_micros"]) / MICROS,
        reserved=Decimal(r["reserved_micros"]) / MICROS,
        position=r["position"],
    )


class PostgresStockLevelsView(PostgresTrackingRecorder, StockLevelsView):
    @property
    def _table(self) -> SQL | Composed:
        return SQL("{0}.stock_levels").format(Identifier(self.datastore.schema))

    def apply(
        self,
        openings: list[Opening],
        changes: dict[UUID, Change],
        tracking: Tracking,
        *,
        after: int,
    ) -> None:
        with self.datastore.transaction(commit=True) as curs:
            # One applier at a time per view, whatever the process; then check the position.
            curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._table.as_string(),))
            self._check_still_at(after, self._max_tracking_id(tracking.application_name, curs))
            if openings:
                curs.execute(
                    SQL(
                        "INSERT INTO {0} (stock_id, sku, warehouse, position) "
                        "SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::bigint[]) "
                        "ON CONFLICT DO NOTHING"
                    ).format(self._table),
                    (
                        [o.stock_id for o in openings],
                        [o.sku for o in openings],
                        [o.warehouse for o in openings],
                        [o.position for o in openings],
                    ),
                )
            if changes:
                curs.execute(
                    SQL(
                        "UPDATE {0} AS t SET physical = t.physical + d.physical, "
                        "reserved = t.reserved + d.reserved, position = d.position "
                        "FROM unnest(%s::uuid[], %s::numeric[], %s::numeric[], %s::bigint[]) "
                        "AS d(stock_id, physical, reserved, position) "
                        "WHERE t.stock_id = d.stock_id"
                    ).format(self._table),
                    (
                        list(changes),
                        [ch.physical for ch in changes.values()],
                        [ch.reserved for ch in changes.values()],
                        [ch.position for ch in changes.values()],
                    ),
                )
            self._insert_tracking(curs, tracking)

    def levels_of(self, sku: str) -> list[LevelsRow]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT * FROM {0} WHERE sku = %s ORDER BY warehouse").format(self._table),
                (sku,),
            )
            return [_pg_row(r) for r in curs.fetchall()]

    def page(self, *, warehouse: str | None, after_sku: str | None, limit: int) -> list[LevelsRow]:
        where: list[Composable] = [SQL("TRUE")]
        params: list[Any] = []
        if warehouse is not None:
            where.append(SQL("warehouse = %s"))
            params.append(warehouse)
        if after_sku is not None:
            where.append(SQL("sku > %s"))
            params.append(after_sku)
        query = SQL(
            "SELECT * FROM {0} WHERE sku IN (SELECT DISTINCT sku FROM {0} "
            "WHERE {1} ORDER BY sku LIMIT %s)"
        ).format(self._table, SQL(" AND ").join(where))
        params.append(limit)
        if warehouse is not None:
            query += SQL(" AND warehouse = %s")
            params.append(warehouse)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(query + SQL(" ORDER BY sku, warehouse"), params)
            return [_pg_row(r) for r in curs.fetchall()]


def _pg_row(r: Any) -> LevelsRow:
    return LevelsRow(
        sku=r["sku"],
        warehouse=r["warehouse"],
        physical=r["physical"],
        reserved=r["reserved"],
        position=r["position"],
    )
