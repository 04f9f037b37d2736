"""The movement report behind ``GET /movements``: every stock change with the balances after it.

One row per stock event, keyed by its position in the event store, so the report reads newest
first by position and a cursor is just the last position shown. The balances after each change
come from the view's own running balance per stock (``movement_report_stocks``, which also
remembers each stock's SKU and warehouse: stock events carry only the stock's id).

Each row also carries, for ``GET /stock/{sku}?at=`` (``projections/history.py``), the latest
``occurred_at`` of its stock's rows up to and including it (``latest_occurred_at``, a running
maximum in position order, kept beside the running balance) and whether it is dated before an
earlier row of its stock (``backdated``). These two are not part of the report's items.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.stock import EVENT_KINDS, Stock
from projections.base import Page, PostgresView, SQLiteView, View, ViewProjection

COLUMNS = (
    "position",
    "movement_id",
    "sku",
    "warehouse",
    "kind",
    "quantity_change",
    "reserved_change",
    "physical_after",
    "reserved_after",
    "counted",
    "reference",
    "note",
    "recorded_by",
    "occurred_at",
    "recorded_at",
)
HISTORY_COLUMNS = ("latest_occurred_at", "backdated")
"""Stored with each row for reads at a moment (``projections/history.py``), not reported."""
STORED = (*COLUMNS, *HISTORY_COLUMNS)
QUANTITIES = ("quantity_change", "reserved_change", "physical_after", "reserved_after", "counted")
MOMENTS = ("occurred_at", "recorded_at", "latest_occurred_at")


@dataclass
class Balance:
    sku: str
    warehouse: str
    physical: Decimal
    reserved: Decimal
    new: bool = False
    latest: datetime | None = None
    """The latest occurred_at of the stock's rows so far (None before its first)."""


def running_latest(latest: datetime | None, occurred_at: datetime) -> tuple[datetime, bool]:
    """A stock's latest occurred_at once a row dated ``occurred_at`` follows rows whose latest
    was ``latest``, and whether that row is backdated (dated before an earlier row)."""
    if latest is not None and occurred_at < latest:
        return latest, True
    return occurred_at, False


@dataclass(frozen=True)
class StockAt:
    """What one stock's report rows, up to the stock's last row when read, say about a moment:
    the summed changes of the rows dated by then, and whether there were any."""

    through: int
    """Position of the stock's last row read; 0 when the view has no row of the stock."""
    physical: Decimal
    reserved: Decimal
    moved: bool


@dataclass(frozen=True)
class ReportFilter:
    sku: str | None = None
    warehouse: str | None = None
    kind: str | None = None
    reference: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def by_date(self) -> bool:
        """Read in occurred_at order: a date window with nothing narrower to go by."""
        return (self.since is not None or self.until is not None) and self.sku is None


@dataclass(frozen=True)
class ReportCursor:
    """Where a page ended: its last row's position (and occurred_at, in date order)."""

    position: int
    occurred_at: datetime | None = None

    @classmethod
    def after(cls, row: dict[str, Any]) -> ReportCursor:
        return cls(row["position"], row["occurred_at"])


class MovementReportView(View):
    tables = ("movement_report", "movement_report_stocks")
    topics = tuple(get_topic(cls) for cls in (Stock.Opened, *EVENT_KINDS))
    key_columns = ("position",)

    # The running balances of the previous pages spare a rebuild one lookup per stock per page.
    remembers = True

    def write(self, c: Any, events: Page) -> None:
        cache: dict[UUID, Balance] = self.remembered()
        wanted = {
            e.originator_id
            for e, _ in events
            if not isinstance(e, Stock.Opened) and e.originator_id not in cache
        }
        balances = self._balances(c, wanted)
        # A failed page must not leave its changes in the cache: work on copies.
        for stock_id in {e.originator_id for e, _ in events} - wanted:
            if stock_id in cache:
                balances[stock_id] = replace(cache[stock_id])
        rows: list[tuple[Any, ...]] = []
        touched: set[UUID] = set()
        for event, position in events:
            stock_id = event.originator_id
            if isinstance(event, Stock.Opened):
                balances.setdefault(
                    stock_id, Balance(event.sku, event.warehouse, Decimal(0), Decimal(0), True)
                )
                touched.add(stock_id)
                continue
            balance = balances[stock_id]
            physical, reserved = event.physical_change, event.reserved_change
            balance.physical += physical
            balance.reserved += reserved
            latest, backdated = running_latest(balance.latest, event.occurred_at)
            balance.latest = latest
            touched.add(stock_id)
            rows.append(
                (
                    position,
                    event.movement_id,
                    balance.sku,
                    balance.warehouse,
                    EVENT_KINDS[type(event)],
                    self.qty(physical),
                    self.qty(reserved),
                    self.qty(balance.physical),
                    self.qty(balance.reserved),
                    self.qty(event.counted) if isinstance(event, Stock.InventoryCounted) else None,
                    event.reference,
                    event.note,
                    event.recorded_by,
                    self.moment(event.occurred_at),
                    self.moment(event.timestamp),
                    self.moment(latest),
                    self.flag(backdated),
                )
            )
        self._insert_rows(c, rows)
        changed = {sid: balances[sid] for sid in touched}
        self._save_balances(c, changed)
        # Written, not yet committed: ``apply`` clears ``continuing`` for the next page if
        # this transaction fails, and the cache is then dropped before it is read.
        cache.update(changed)

    def _balances(self, c: Any, stock_ids: set[UUID]) -> dict[UUID, Balance]:
        return {
            self.from_uid(r["stock_id"]): Balance(
                r["sku"],
                r["warehouse"],
                self.from_qty(r["physical"]),
                self.from_qty(r["reserved"]),
                latest=None
                if r["latest_occurred_at"] is None
                else self.from_moment(r["latest_occurred_at"]),
            )
            for r in self.rows_with(c, "movement_report_stocks", "stock_id", stock_ids)
        }

    @abstractmethod
    def flag(self, value: bool) -> Any: ...

    @abstractmethod
    def _insert_rows(self, c: Any, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _save_balances(self, c: Any, balances: dict[UUID, Balance]) -> None: ...

    # -- reading -----------------------------------------------------------------------------

    def report(
        self, where: ReportFilter, *, before: ReportCursor | None, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` rows matching ``where`` after ``before``, newest first: by position
        (recording order, in which the balances after each change add up), or, when the filter
        is a date range (and no SKU), by occurred_at, so that any window reads as fast as the
        newest one."""
        clauses, params = [], []
        for column in ("sku", "warehouse", "kind", "reference"):
            value = getattr(where, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.since is not None:
            clauses.append("occurred_at >= ?")
            params.append(self.moment(where.since))
        if where.until is not None:
            clauses.append("occurred_at < ?")
            params.append(self.moment(where.until))
        by_date = where.by_date
        if before is not None:
            if by_date and before.occurred_at is not None:
                clauses.append("(occurred_at, position) < (?, ?)")
                params += [self.moment(before.occurred_at), before.position]
            else:
                clauses.append("position < ?")
                params.append(before.position)
        sql = "SELECT * FROM {t}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        order = "occurred_at DESC, position DESC" if by_date else "position DESC"
        with self.reading() as c:
            c.execute(self.q(f"{sql} ORDER BY {order} LIMIT ?"), [*params, limit])
            return [self._item(r) for r in c.fetchall()]

    def holdings(self, sku: str, limit: int = 100) -> list[dict[str, Any]]:
        """What each order still holds reserved of ``sku``, per warehouse: its reservations,
        releases and consumptions summed (the console's "open orders holding stock")."""
        sql = (
            "SELECT reference, warehouse, SUM(reserved_change) AS held, "
            "MAX(occurred_at) AS occurred_at FROM {t} WHERE sku = ? "
            "AND kind IN ('reservation', 'release', 'consumption') "
            "GROUP BY reference, warehouse HAVING SUM(reserved_change) <> 0 "
            "ORDER BY MAX(position) DESC LIMIT ?"
        )
        with self.reading() as c:
            c.execute(self.q(sql), (sku, limit))
            return [
                {
                    "reference": r["reference"],
                    "warehouse": r["warehouse"],
                    "held": self.from_qty(r["held"]),
                    "occurred_at": self.from_moment(r["occurred_at"]),
                }
                for r in c.fetchall()
            ]

    def stocks_at(self, sku: str, warehouses: list[str], at: datetime) -> dict[str, StockAt]:
        """For each warehouse, the rows of ``sku`` there dated not after ``at``, summed, in a
        few index lookups however long the stock's history (``projections/history.py`` says
        why this is exact)."""
        found = {}
        moment = self.moment(at)
        with self.reading() as c:
            for warehouse in warehouses:
                # The last row of the stock: the running maximum never decreases with position.
                c.execute(
                    self.q(
                        "SELECT position FROM {t} WHERE sku = ? AND warehouse = ? "
                        "ORDER BY latest_occurred_at DESC, position DESC LIMIT 1"
                    ),
                    (sku, warehouse),
                )
                last = c.fetchone()
                if last is None:
                    found[warehouse] = StockAt(0, Decimal(0), Decimal(0), moved=False)
                    continue
                through = last["position"]
                # Rows written after ``through`` (the view moves on meanwhile) are left out
                # here: the caller reads the stock's events after it from the store.
                c.execute(
                    self.q(
                        "SELECT position, physical_after, reserved_after FROM {t} "
                        "WHERE sku = ? AND warehouse = ? AND latest_occurred_at <= ? "
                        "AND position <= ? "
                        "ORDER BY latest_occurred_at DESC, position DESC LIMIT 1"
                    ),
                    (sku, warehouse, moment, through),
                )
                base = c.fetchone()
                c.execute(
                    self.q(
                        "SELECT count(*) AS n, coalesce(sum(quantity_change), 0) AS physical, "
                        "coalesce(sum(reserved_change), 0) AS reserved FROM {t} "
                        "WHERE sku = ? AND warehouse = ? AND backdated AND position > ? "
                        "AND position <= ? AND occurred_at <= ?"
                    ),
                    (sku, warehouse, 0 if base is None else base["position"], through, moment),
                )
                late = c.fetchone()
                physical = self.from_qty(late["physical"])
                reserved = self.from_qty(late["reserved"])
                if base is not None:
                    physical += self.from_qty(base["physical_after"])
                    reserved += self.from_qty(base["reserved_after"])
                found[warehouse] = StockAt(
                    through, physical, reserved, moved=base is not None or late["n"] > 0
                )
        return found

    def stream(
        self, where: ReportFilter, *, before: ReportCursor | None, page: int = 2_000
    ) -> Iterator[dict[str, Any]]:
        """Every matching row, newest first, a page at a time: memory stays flat however long
        the report, and no transaction stays open while a slow client reads."""
        while True:
            rows = self.report(where, before=before, limit=page)
            yield from rows
            if len(rows) < page:
                return
            before = ReportCursor.after(rows[-1])

    def _item(self, row: Any) -> dict[str, Any]:
        """A report item: the row without the columns kept for reads at a moment."""
        out = self.normalise(dict(row))
        for name in HISTORY_COLUMNS:
            del out[name]
        return out

    def normalise(self, row: dict[str, Any]) -> dict[str, Any]:
        """Every stored column as a comparable Python value (what ``verify`` checks)."""
        out = {name: row[name] for name in STORED}
        for name in QUANTITIES:
            if out[name] is not None:
                out[name] = self.from_qty(out[name]).normalize()
        for name in MOMENTS:
            out[name] = self.from_moment(out[name])
        out["backdated"] = bool(out["backdated"])
        return out


class MovementReportProjection(ViewProjection):
    name = "movement_report"
    topics = MovementReportView.topics


class SQLiteMovementReportView(SQLiteView, MovementReportView):
    def flag(self, value: bool) -> int:
        return int(value)

    def _insert_rows(self, c: Any, rows: list[tuple[Any, ...]]) -> None:
        c.executemany(
            self.q(
                f"INSERT INTO {{t}} ({', '.join(STORED)}) VALUES ({', '.join('?' * len(STORED))})"
            ),
            rows,
        )

    def _save_balances(self, c: Any, balances: dict[UUID, Balance]) -> None:
        c.executemany(
            self.q(
                "INSERT INTO {movement_report_stocks} (stock_id, sku, warehouse, physical, "
                "reserved, latest_occurred_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (stock_id) DO UPDATE SET physical = excluded.physical, "
                "reserved = excluded.reserved, latest_occurred_at = excluded.latest_occurred_at"
            ),
            [
                (
                    i.hex,
                    b.sku,
                    b.warehouse,
                    self.qty(b.physical),
                    self.qty(b.reserved),
                    None if b.latest is None else self.moment(b.latest),
                )
                for i, b in balances.items()
            ],
        )


class PostgresMovementReportView(PostgresView, MovementReportView):
    def flag(self, value: bool) -> bool:
        return value

    def _insert_rows(self, c: Any, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        # COPY: a rebuild writes a million rows through here.
        with c.copy(self.q(f"COPY {{t}} ({', '.join(STORED)}) FROM STDIN")) as copy:
            for row in rows:
                copy.write_row(row)

    def _save_balances(self, c: Any, balances: dict[UUID, Balance]) -> None:
        if not balances:
            return
        c.execute(
            self.q(
                "INSERT INTO {movement_report_stocks} (stock_id, sku, warehouse, physical, "
                "reserved, latest_occurred_at) SELECT * FROM unnest(%b::uuid[], %b::text[], "
                "%b::text[], %b::numeric[], %b::numeric[], %b::timestamptz[]) "
                "ON CONFLICT (stock_id) DO UPDATE SET physical = excluded.physical, "
                "reserved = excluded.reserved, latest_occurred_at = excluded.latest_occurred_at"
            ),
            (
                list(balances),
                [b.sku for b in balances.values()],
                [b.warehouse for b in balances.values()],
                [b.physical for b in balances.values()],
                [b.reserved for b in balances.values()],
                [b.latest for b in balances.values()],
            ),
        )
