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

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Composable, Composed, Identifier

from ledger.stock import EVENT_KINDS, Stock

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


class StockLevelsView(TrackingRecorder, ABC):
    @abstractmethod
    def open(self, stock_id: UUID, sku: str, warehouse: str, tracking: Tracking) -> None: ...

    @abstractmethod
    def add(self, stock_id: UUID, physical: Decimal, reserved: Decimal, tracking: Tracking) -> None:
        """Add changes to the row of the stock aggregate ``stock_id``."""

    @abstractmethod
    def levels_of(self, sku: str) -> list[LevelsRow]: ...

    @abstractmethod
    def page(self, *, warehouse: str | None, after_sku: str | None, limit: int) -> list[LevelsRow]:
        """Rows of up to ``limit`` SKUs with sku > after_sku, in SKU order."""


class StockLevelsProjection(Projection[StockLevelsView]):
    name = "stock_levels"
    topics = tuple(get_topic(cls) for cls in (Stock.Opened, *EVENT_KINDS))

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, domain_event: Stock.Opened, tracking: Tracking) -> None:
        self.view.open(
            domain_event.originator_id, domain_event.sku, domain_event.warehouse, tracking
        )

    @process_event.register
    def _(self, domain_event: Stock.Moved, tracking: Tracking) -> None:
        physical, reserved = physical_and_reserved_change(domain_event)
        self.view.add(domain_event.originator_id, physical, reserved, tracking)


def physical_and_reserved_change(event: Stock.Moved) -> tuple[Decimal, Decimal]:
    """How much one stock event moved physical and reserved stock (mirrors the aggregate)."""
    if isinstance(event, (Stock.Reserved, Stock.Released)):
        return Decimal(0), event.change
    if isinstance(event, Stock.Consumed):
        return event.change, event.change
    return event.change, Decimal(0)


class SQLiteStockLevelsView(SQLiteTrackingRecorder, StockLevelsView):
    def open(self, stock_id: UUID, sku: str, warehouse: str, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                "INSERT INTO stock_levels (stock_id, sku, warehouse, position) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (stock_id.hex, sku, warehouse, tracking.notification_id),
            )
            self._insert_tracking(c, tracking)

    def add(self, stock_id: UUID, physical: Decimal, reserved: Decimal, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                "UPDATE stock_levels SET physical_micros = physical_micros + ?, "
                "reserved_micros = reserved_micros + ?, position = ? WHERE stock_id = ?",
                (_micros(physical), _micros(reserved), tracking.notification_id, stock_id.hex),
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

    def open(self, stock_id: UUID, sku: str, warehouse: str, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "INSERT INTO {0} (stock_id, sku, warehouse, position) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING"
                ).format(self._table),
                (stock_id, sku, warehouse, tracking.notification_id),
            )
            self._insert_tracking(curs, tracking)

    def add(self, stock_id: UUID, physical: Decimal, reserved: Decimal, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "UPDATE {0} SET physical = physical + %s, reserved = reserved + %s, "
                    "position = %s WHERE stock_id = %s"
                ).format(self._table),
                (physical, reserved, tracking.notification_id, stock_id),
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
