"""What each platform should show: the publisher view.

For every configured platform and every warehouse it maps, one row per SKU with the quantity
the platform should show (available stock, never below zero) and the position of the event that
produced it. The dispatcher (``adapters/dispatcher.py``) copies changed rows into what it owes
each platform; this view only says what is wanted, exactly once per event like every view.

The rules are one pure fold (``PublisherFold``) shared by the view and by ``ledger verify``'s
replay: a stock event changes a SKU's available quantity, and the desired row of every platform
that maps its warehouse when the shown quantity changes; configuring a platform adds rows for
every stock of a newly mapped warehouse and drops those of an unmapped one.
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.codes import check_code
from ledger.errors import InvalidInput
from ledger.platforms import Platform
from ledger.stock import EVENT_KINDS, Stock
from projections.base import Page, PostgresView, SQLiteView, View, ViewProjection

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # platform, sku, warehouse


@dataclass
class StockState:
    sku: str
    warehouse: str
    available: Decimal
    changed: bool = False


@dataclass
class Desired:
    platform_warehouse: str
    quantity: Decimal
    position: int


def shown(available: Decimal) -> Decimal:
    """Platforms never show less than zero: an oversold SKU is simply out of stock there."""
    return max(available, Decimal(0))


def usable_mapping(platform: str, warehouses: Any) -> dict[str, str]:
    """The warehouse mapping of a platform event, without entries that no platform could use
    and no table can store (a NUL, a control character, ``..``: PUT /platforms refuses them
    now, older events may hold them). One platform's bad entry must not stop the view, and with
    it every platform's stock; the entry is left out and said so in the log."""
    if not isinstance(warehouses, dict):
        if warehouses:
            log.warning("platform %s: its warehouse mapping is not a mapping; ignored", platform)
        return {}
    usable = {}
    for ours, theirs in warehouses.items():
        try:
            usable[check_code(ours, "warehouse")] = check_code(theirs, "platform warehouse")
        except InvalidInput as refused:
            log.warning(
                "platform %s: warehouse mapping entry left out: %s", platform, refused.detail
            )
    return usable


@dataclass
class PublisherFold:
    """The view's rules over whatever part of its state a page needs."""

    stocks: dict[UUID, StockState]
    platforms: dict[str, dict[str, str]]
    stocks_in: Any  # (warehouse) -> Iterable[tuple[UUID, StockState]]: every stock there
    upserts: dict[Key, Desired] = field(default_factory=dict)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (platform, warehouse)
    changed_platforms: set[str] = field(default_factory=set)
    names: dict[UUID, str] = field(default_factory=dict)  # platform id -> name

    def apply(self, event: Any, position: int) -> None:
        if isinstance(event, Stock.Opened):
            self.stocks[event.originator_id] = StockState(
                event.sku, event.warehouse, Decimal(0), changed=True
            )
            # A new SKU is shown as 0 until it has stock: a platform may list it with a
            # quantity of its own, and the ledger is the truth.
            for name, warehouses in self.platforms.items():
                if event.warehouse in warehouses:
                    self.upserts[(name, event.sku, event.warehouse)] = Desired(
                        warehouses[event.warehouse], Decimal(0), position
                    )
        elif isinstance(event, Stock.Moved):
            stock = self.stocks[event.originator_id]
            physical, reserved = event.physical_change, event.reserved_change
            before = shown(stock.available)
            stock.available += physical - reserved
            stock.changed = True
            if shown(stock.available) != before:
                for name, warehouses in self.platforms.items():
                    if stock.warehouse in warehouses:
                        self.upserts[(name, stock.sku, stock.warehouse)] = Desired(
                            warehouses[stock.warehouse], shown(stock.available), position
                        )
        elif isinstance(event, (Platform.Configured, Platform.Reconfigured)):
            name = event.name if isinstance(event, Platform.Configured) else self._name(event)
            self._map(name, usable_mapping(name, event.settings.get("warehouses")), position)

    def _name(self, event: Any) -> str:
        return self.names[event.originator_id]

    def _map(self, name: str, warehouses: dict[str, str], position: int) -> None:
        old = self.platforms.get(name, {})
        self.platforms[name] = warehouses
        self.changed_platforms.add(name)
        for warehouse in old:
            if old[warehouse] != warehouses.get(warehouse):
                self.dropped.append((name, warehouse))
                for key in [k for k in self.upserts if k[0] == name and k[2] == warehouse]:
                    del self.upserts[key]
        for warehouse, platform_warehouse in warehouses.items():
            if old.get(warehouse) == platform_warehouse:
                continue
            for _stock_id, stock in self.stocks_in(warehouse):
                self.upserts[(name, stock.sku, warehouse)] = Desired(
                    platform_warehouse, shown(stock.available), position
                )


class PublisherView(View):
    tables = ("publisher_desired", "publisher_stocks", "publisher_platforms")
    topics = tuple(
        get_topic(cls)
        for cls in (Stock.Opened, *EVENT_KINDS, Platform.Configured, Platform.Reconfigured)
    )
    key_columns = ("platform", "sku", "warehouse")

    # The stock states of the previous pages spare a rebuild one lookup per stock per page.
    remembers = True

    def write(self, c: Any, events: Page) -> None:
        cache: dict[UUID, StockState] = self.remembered()
        stock_ids = {e.originator_id for e, _ in events if isinstance(e, Stock.Moved)} - {
            e.originator_id for e, _ in events if isinstance(e, Stock.Opened)
        }
        stocks = self._stocks(c, {i for i in stock_ids if i not in cache})
        stocks.update(
            (i, StockState(cache[i].sku, cache[i].warehouse, cache[i].available))
            for i in stock_ids
            if i in cache
        )
        platforms, names = self._platforms(c)

        def stocks_in(warehouse: str) -> Iterator[tuple[UUID, StockState]]:
            # Those the page already holds (with its changes), then the rest from the table.
            held = {i: s for i, s in stocks.items() if s.warehouse == warehouse}
            yield from held.items()
            for stock_id, stock in self._stocks_in(c, warehouse).items():
                if stock_id not in held:
                    stocks[stock_id] = stock
                    yield stock_id, stock

        fold = PublisherFold(stocks, platforms, stocks_in, names=names)
        for event, position in events:
            if isinstance(event, Platform.Configured):
                fold.names[event.originator_id] = event.name
            fold.apply(event, position)
        for name, warehouse in fold.dropped:
            c.execute(
                self.q("DELETE FROM {t} WHERE platform = ? AND warehouse = ?"), (name, warehouse)
            )
        changed = {i: s for i, s in stocks.items() if s.changed}
        self._save(c, fold, changed)
        cache.update(changed)  # a failed page clears ``continuing``, and with it the cache

    # -- storage -----------------------------------------------------------------------------

    def _stocks(self, c: Any, stock_ids: set[UUID]) -> dict[UUID, StockState]:
        rows = self.rows_with(c, "publisher_stocks", "stock_id", stock_ids)
        return {self.from_uid(r["stock_id"]): self._stock(r) for r in rows}

    def _stocks_in(self, c: Any, warehouse: str) -> dict[UUID, StockState]:
        c.execute(self.q("SELECT * FROM {publisher_stocks} WHERE warehouse = ?"), (warehouse,))
        return {self.from_uid(r["stock_id"]): self._stock(r) for r in c.fetchall()}

    def _stock(self, r: Any) -> StockState:
        return StockState(r["sku"], r["warehouse"], self.from_qty(r["available"]))

    def _platforms(self, c: Any) -> tuple[dict[str, dict[str, str]], dict[UUID, str]]:
        c.execute(self.q("SELECT * FROM {publisher_platforms}"))
        rows = c.fetchall()
        return (
            {r["platform"]: json.loads(r["warehouses"]) for r in rows},
            {self.from_uid(r["platform_id"]): r["platform"] for r in rows},
        )

    def _save(self, c: Any, fold: PublisherFold, stocks: dict[UUID, StockState]) -> None:
        self._save_stocks(c, stocks)
        ids = {name: i for i, name in fold.names.items()}
        c.executemany(
            self.q(
                "INSERT INTO {publisher_platforms} (platform, platform_id, warehouses) "
                "VALUES (?, ?, ?) ON CONFLICT (platform) DO UPDATE SET "
                "warehouses = excluded.warehouses"
            ),
            [
                (name, self.uid(ids[name]), json.dumps(fold.platforms[name], sort_keys=True))
                for name in sorted(fold.changed_platforms)
            ],
        )
        c.executemany(
            self.q(
                "INSERT INTO {t} (platform, sku, warehouse, platform_warehouse, quantity, "
                "position) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, sku, warehouse) "
                "DO UPDATE SET platform_warehouse = excluded.platform_warehouse, "
                "quantity = excluded.quantity, position = excluded.position"
            ),
            [
                (*key, d.platform_warehouse, self.qty(d.quantity), d.position)
                for key, d in fold.upserts.items()
            ],
        )

    @abstractmethod
    def _save_stocks(self, c: Any, stocks: dict[UUID, StockState]) -> None: ...

    def normalise(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "platform": row["platform"],
            "sku": row["sku"],
            "warehouse": row["warehouse"],
            "platform_warehouse": row["platform_warehouse"],
            "quantity": self.from_qty(row["quantity"]).normalize(),
            "position": row["position"],
        }

    # -- reading -----------------------------------------------------------------------------

    def desired(
        self, platform: str, *, after: tuple[int, str, str] | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """A platform's desired rows changed after ``after`` (a previous row's position, SKU
        and warehouse: one mapping change writes many rows at one position), oldest first."""
        return self.platform_page(platform, ("position", "sku", "warehouse"), after, limit)

    def platform_names(self) -> list[str]:
        with self.reading() as c:
            c.execute(self.q("SELECT platform FROM {publisher_platforms} ORDER BY platform"))
            return [r["platform"] for r in c.fetchall()]


def replay(events: Iterable[tuple[Any, int]]) -> Iterator[dict[str, Any]]:
    """The rows the view should hold after ``events`` (for ``ledger verify``)."""
    stocks: dict[UUID, StockState] = {}
    desired: dict[Key, Desired] = {}

    def stocks_in(warehouse: str) -> Iterator[tuple[UUID, StockState]]:
        return ((i, s) for i, s in stocks.items() if s.warehouse == warehouse)

    fold = PublisherFold(stocks, {}, stocks_in)
    for event, position in events:
        if isinstance(event, Platform.Configured):
            fold.names[event.originator_id] = event.name
        fold.apply(event, position)
        for name, warehouse in fold.dropped:
            for key in [k for k in desired if k[0] == name and k[2] == warehouse]:
                del desired[key]
        desired.update(fold.upserts)
        fold.upserts, fold.dropped = {}, []
    for key in sorted(desired):
        d = desired[key]
        yield {
            "platform": key[0],
            "sku": key[1],
            "warehouse": key[2],
            "platform_warehouse": d.platform_warehouse,
            "quantity": d.quantity.normalize(),
            "position": d.position,
        }


class PublisherProjection(ViewProjection):
    name = "publisher"
    topics = PublisherView.topics


class SQLitePublisherView(SQLiteView, PublisherView):
    def _save_stocks(self, c: Any, stocks: dict[UUID, StockState]) -> None:
        c.executemany(
            self.q(
                "INSERT INTO {publisher_stocks} (stock_id, sku, warehouse, available) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (stock_id) DO UPDATE SET "
                "available = excluded.available"
            ),
            [(i.hex, s.sku, s.warehouse, self.qty(s.available)) for i, s in stocks.items()],
        )


class PostgresPublisherView(PostgresView, PublisherView):
    def _save_stocks(self, c: Any, stocks: dict[UUID, StockState]) -> None:
        if not stocks:
            return
        c.execute(
            self.q(
                "INSERT INTO {publisher_stocks} (stock_id, sku, warehouse, available) "
                "SELECT * FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::numeric[]) "
                "ON CONFLICT (stock_id) DO UPDATE SET available = excluded.available"
            ),
            (
                list(stocks),
                [s.sku for s in stocks.values()],
                [s.warehouse for s in stocks.values()],
                [s.available for s in stocks.values()],
            ),
        )
