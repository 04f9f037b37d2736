"""Stock levels per (SKU, warehouse): the view behind ``GET /stock`` and ``GET /stock/{sku}``.

The aggregates stay the authority for writes and their rules; this view answers reads without
loading aggregates, and says up to which event position it is current.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.stock import EVENT_KINDS, Stock
from projections.base import Page, PostgresView, SQLiteView, View, ViewProjection


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
class SkuTotals:
    sku: str
    physical: Decimal
    reserved: Decimal
    oversold: bool

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


class StockLevelsView(View):
    tables = ("stock_levels",)
    topics = tuple(get_topic(cls) for cls in (Stock.Opened, *EVENT_KINDS))
    key_columns = ("sku", "warehouse")

    def write(self, c: Any, events: Page) -> None:
        openings: list[Opening] = []
        changes: dict[UUID, Change] = {}
        for event, position in events:
            if isinstance(event, Stock.Opened):
                openings.append(Opening(event.originator_id, event.sku, event.warehouse, position))
            elif isinstance(event, Stock.Moved):
                physical, reserved = event.physical_change, event.reserved_change
                change = changes.get(event.originator_id)
                if change is None:
                    changes[event.originator_id] = Change(physical, reserved, position)
                else:
                    change.physical += physical
                    change.reserved += reserved
                    change.position = position
        self._write(c, openings, changes)

    @abstractmethod
    def _write(self, c: Any, openings: list[Opening], changes: dict[UUID, Change]) -> None: ...

    def levels_of(self, sku: str) -> list[LevelsRow]:
        with self.reading() as c:
            c.execute(self.q("SELECT * FROM {t} WHERE sku = ? ORDER BY warehouse"), (sku,))
            return [self._row(r) for r in c.fetchall()]

    def oversold_count(self) -> int:
        """Stocks whose available quantity is below zero (a partial index keeps this cheap)."""
        with self.reading() as c:
            c.execute(self.q(f"SELECT count(*) AS n FROM {{t}} WHERE {self._oversold}"))
            return int(c.fetchone()["n"])

    _oversold = "physical < reserved"

    def page(self, *, warehouse: str | None, after_sku: str | None, limit: int) -> list[LevelsRow]:
        """Rows of up to ``limit`` SKUs with sku > after_sku, in SKU order."""
        where, params = ["1=1"], []
        if warehouse is not None:
            where.append("warehouse = ?")
            params.append(warehouse)
        if after_sku is not None:
            where.append("sku > ?")
            params.append(after_sku)
        query = (
            "SELECT * FROM {t} WHERE sku IN (SELECT DISTINCT sku FROM {t} "
            f"WHERE {' AND '.join(where)} ORDER BY sku LIMIT ?)"
        )
        params.append(limit)
        if warehouse is not None:
            query += " AND warehouse = ?"
            params.append(warehouse)
        with self.reading() as c:
            c.execute(self.q(query + " ORDER BY sku, warehouse"), params)
            return [self._row(r) for r in c.fetchall()]

    def listing(
        self,
        *,
        prefix: str | None,
        skus: list[str] | None = None,
        warehouse: str | None,
        sort: str,
        limit: int,
        offset: int,
    ) -> list[SkuTotals]:
        """SKUs summed over their warehouses (or in one), for the console's stock list: those
        whose SKU starts with ``prefix`` or is one of ``skus`` (a product search's), sorted by
        ``sku``, ``available_asc`` or ``available_desc``."""
        where, params = [], []
        if warehouse is not None:
            where.append("warehouse = ?")
            params.append(warehouse)
        matches = []
        if prefix is not None:
            # substr, not LIKE: exact and case-sensitive on both backends, no wildcards.
            matches.append("substr(sku, 1, ?) = ?")
            params += [len(prefix), prefix]
        if skus:
            matches.append(f"sku IN ({', '.join('?' for _ in skus)})")
            params += skus
        if prefix is not None or skus is not None:
            where.append("(" + (" OR ".join(matches) or "1=0") + ")")
        physical, reserved = f"SUM({self._physical})", f"SUM({self._reserved})"
        order = {
            "available_asc": f"{physical} - {reserved} ASC, sku",
            "available_desc": f"{physical} - {reserved} DESC, sku",
        }.get(sort, "sku")
        sql = (
            f"SELECT sku, {physical} AS physical, {reserved} AS reserved, "
            f"MAX(CASE WHEN {self._oversold} THEN 1 ELSE 0 END) AS oversold FROM {{t}}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" GROUP BY sku ORDER BY {order} LIMIT ? OFFSET ?"
        )
        with self.reading() as c:
            c.execute(self.q(sql), [*params, limit, offset])
            return [
                SkuTotals(
                    r["sku"],
                    self.from_qty(r["physical"]),
                    self.from_qty(r["reserved"]),
                    bool(r["oversold"]),
                )
                for r in c.fetchall()
            ]

    def _row(self, r: Any) -> LevelsRow:
        return LevelsRow(
            sku=r["sku"],
            warehouse=r["warehouse"],
            physical=self.from_qty(r[self._physical]),
            reserved=self.from_qty(r[self._reserved]),
            position=r["position"],
        )

    _physical = "physical"
    _reserved = "reserved"

    def normalise(self, row: dict[str, Any]) -> dict[str, Any]:
        levels = self._row(row)
        return {
            "sku": levels.sku,
            "warehouse": levels.warehouse,
            "physical": levels.physical.normalize(),
            "reserved": levels.reserved.normalize(),
            "position": levels.position,
        }


class StockLevelsProjection(ViewProjection):
    name = "stock_levels"
    topics = StockLevelsView.topics


class SQLiteStockLevelsView(SQLiteView, StockLevelsView):
    _physical = "physical_micros"
    _reserved = "reserved_micros"
    _oversold = "physical_micros < reserved_micros"

    def _write(self, c: Any, openings: list[Opening], changes: dict[UUID, Change]) -> None:
        c.executemany(
            self.q(
                "INSERT INTO {t} (stock_id, sku, warehouse, position) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING"
            ),
            [(o.stock_id.hex, o.sku, o.warehouse, o.position) for o in openings],
        )
        c.executemany(
            self.q(
                "UPDATE {t} SET physical_micros = physical_micros + ?, "
                "reserved_micros = reserved_micros + ?, position = ? WHERE stock_id = ?"
            ),
            [
                (self.qty(ch.physical), self.qty(ch.reserved), ch.position, stock_id.hex)
                for stock_id, ch in changes.items()
            ],
        )


class PostgresStockLevelsView(PostgresView, StockLevelsView):
    def _write(self, c: Any, openings: list[Opening], changes: dict[UUID, Change]) -> None:
        if openings:
            c.execute(
                self.q(
                    "INSERT INTO {t} (stock_id, sku, warehouse, position) "
                    "SELECT * FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::bigint[]) "
                    "ON CONFLICT DO NOTHING"
                ),
                (
                    [o.stock_id for o in openings],
                    [o.sku for o in openings],
                    [o.warehouse for o in openings],
                    [o.position for o in openings],
                ),
            )
        if changes:
            c.execute(
                self.q(
                    "UPDATE {t} AS t SET physical = t.physical + d.physical, "
                    "reserved = t.reserved + d.reserved, position = d.position "
                    "FROM unnest(%b::uuid[], %b::numeric[], %b::numeric[], %b::bigint[]) "
                    "AS d(stock_id, physical, reserved, position) "
                    "WHERE t.stock_id = d.stock_id"
                ),
                (
                    list(changes),
                    [ch.physical for ch in changes.values()],
                    [ch.reserved for ch in changes.values()],
                    [ch.position for ch in changes.values()],
                ),
            )
