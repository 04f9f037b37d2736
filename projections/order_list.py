"""Orders by platform, status and blocked reason: the view behind ``GET /orders``.

One row per order, folded from its events. Rows are listed newest import first, by the position
of the order's first event, which never changes: a cursor stays valid while orders move on.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.orders import Order
from projections.base import Page, PostgresView, SQLiteView, View, ViewProjection

COLUMNS = (
    "order_key",
    "platform",
    "order_id",
    "status",
    "carrier",
    "blocked_reason",
    "items",
    "reserved",
    "stock_posted",
    "invoice_number",
    "deleted",
    "imported_at",
    "updated_at",
    "first_position",
    "position",
)
ORDER_EVENTS = (
    Order.Imported,
    Order.StatusChanged,
    Order.StockReserved,
    Order.StockReleased,
    Order.StockPosted,
    Order.Invoiced,
    Order.LinesEdited,
    Order.Deleted,
    Order.Held,
    Order.Released,
    Order.TrackingUpdated,
)


@dataclass(frozen=True)
class OrderFilter:
    platform: str | None = None
    status: str | None = None
    blocked: bool | None = None
    order_id_prefix: str | None = None


def _units(lines: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(str(line["quantity"])) for line in lines), Decimal(0))


def fold(row: dict[str, Any] | None, event: Any, position: int) -> dict[str, Any]:
    """The row after one more event (mirrors ``Order``'s own ``apply`` methods)."""
    if isinstance(event, Order.Imported):
        row = {
            "platform": event.platform,
            "order_id": event.order_id,
            "status": event.status,
            "carrier": event.carrier,
            "blocked_reason": None,
            "items": len(event.lines),
            "reserved": Decimal(0),
            "stock_posted": False,
            "invoice_number": None,
            "deleted": False,
            "imported_at": event.timestamp,
            "first_position": position,
        }
    assert row is not None, f"order event {position} before its order was imported"
    row = dict(row)
    if isinstance(event, Order.StatusChanged):
        row["status"] = event.status
    elif isinstance(event, Order.StockReserved):
        row["reserved"] += _units(event.lines)
    elif isinstance(event, Order.StockReleased):
        row["reserved"] -= _units(event.lines)
    elif isinstance(event, Order.StockPosted):
        row["reserved"] = Decimal(0)
        row["stock_posted"] = True
    elif isinstance(event, Order.Invoiced):
        row["status"] = "invoiced"
        row["invoice_number"] = str(event.invoice.get("number") or "") or None
    elif isinstance(event, Order.LinesEdited):
        row["items"] = len(event.lines)
    elif isinstance(event, Order.Deleted):
        row["deleted"] = True
    elif isinstance(event, Order.Held):
        row["blocked_reason"] = event.reason
    elif isinstance(event, Order.Released):
        row["blocked_reason"] = None
    row["updated_at"] = event.timestamp
    row["position"] = position
    return row


class OrderListView(View):
    tables = ("order_list",)
    topics = tuple(get_topic(cls) for cls in ORDER_EVENTS)
    key_columns = ("order_key",)

    def write(self, c: Any, events: Page) -> None:
        keys = {e.originator_id for e, _ in events if not isinstance(e, Order.Imported)}
        rows = self._load(c, keys)
        for event, position in events:
            rows[event.originator_id] = fold(rows.get(event.originator_id), event, position)
        self._save(c, rows)

    def _load(self, c: Any, keys: set[UUID]) -> dict[UUID, dict[str, Any]]:
        found: dict[UUID, dict[str, Any]] = {}
        for r in self.rows_with(c, "order_list", "order_key", keys):
            row = self.normalise(dict(r))
            found[row.pop("order_key")] = row
        return found

    def _save(self, c: Any, rows: dict[UUID, dict[str, Any]]) -> None:
        names = COLUMNS[1:]
        c.executemany(
            self.q(
                f"INSERT INTO {{t}} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
                " ON CONFLICT (order_key) DO UPDATE SET "
                + ", ".join(f"{n} = excluded.{n}" for n in names)
            ),
            [
                (
                    self.uid(key),
                    *(self._stored(n, row[n]) for n in names),
                )
                for key, row in rows.items()
            ],
        )

    def _stored(self, name: str, value: Any) -> Any:
        if name == "reserved":
            return self.qty(value)
        if name in ("imported_at", "updated_at"):
            return self.moment(value)
        return value

    def normalise(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {name: row[name] for name in COLUMNS}
        out["order_key"] = self.from_uid(out["order_key"])
        out["reserved"] = self.from_qty(out["reserved"]).normalize()
        out["stock_posted"] = bool(out["stock_posted"])
        out["deleted"] = bool(out["deleted"])
        out["imported_at"] = self.from_moment(out["imported_at"])
        out["updated_at"] = self.from_moment(out["updated_at"])
        return out

    # -- reading -----------------------------------------------------------------------------

    def listing(
        self, where: OrderFilter, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if where.platform is not None:
            clauses.append("platform = ?")
            params.append(where.platform)
        if where.status is not None:
            clauses.append("status = ?")
            params.append(where.status)
        if where.blocked is not None:
            clauses.append(f"blocked_reason IS {'NOT ' if where.blocked else ''}NULL")
        if where.order_id_prefix:
            # Not LIKE: "_" and "%" are characters an order id may hold.
            clauses.append("substr(order_id, 1, ?) = ?")
            params += [len(where.order_id_prefix), where.order_id_prefix]
        if before is not None:
            clauses.append("first_position < ?")
            params.append(before)
        sql = "SELECT * FROM {t}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self.reading() as c:
            c.execute(self.q(sql + " ORDER BY first_position DESC LIMIT ?"), [*params, limit])
            return [self.normalise(dict(r)) for r in c.fetchall()]

    def held_counts(self) -> dict[str, int]:
        """How many orders each platform holds (not imported, not ended)."""
        with self.reading() as c:
            c.execute(
                self.q(
                    "SELECT platform, count(*) AS n FROM {t} WHERE blocked_reason IS NOT NULL "
                    "AND NOT deleted AND status <> 'cancelled' GROUP BY platform"
                )
            )
            return {r["platform"]: int(r["n"]) for r in c.fetchall()}

    def changed(
        self, platform: str, *, after: tuple[int, str] | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        """A platform's orders changed after ``after`` (a previous row's position and order
        id), oldest change first: what the dispatcher tells the platform."""
        return self.platform_page(platform, ("position", "order_id"), after, limit)

    def open_orders(self, platform: str, statuses: tuple[str, ...]) -> list[str]:
        """Ids of a platform's orders in ``statuses`` (not deleted), oldest first."""
        marks = ", ".join("?" for _ in statuses)
        with self.reading() as c:
            c.execute(
                self.q(
                    f"SELECT order_id FROM {{t}} WHERE platform = ? AND status IN ({marks}) "
                    "AND NOT deleted ORDER BY first_position"
                ),
                [platform, *statuses],
            )
            return [r["order_id"] for r in c.fetchall()]


class OrderListProjection(ViewProjection):
    name = "order_list"
    topics = OrderListView.topics


class SQLiteOrderListView(SQLiteView, OrderListView):
    pass


class PostgresOrderListView(PostgresView, OrderListView):
    pass
