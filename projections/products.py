"""Products by SKU, name and barcode: the view behind ``GET /products?q=`` (the console's search).

One row per product (``products``: its SKU, its name, the name folded for search and the
position that last changed it) and one per barcode a product holds (``product_barcodes``).
A product's events after the first carry only its id, so barcode rows name their product by id,
not by SKU: a page is written without reading the tables.

Names are searched folded (``fold``: case-folded, accents stripped), so "cafe" finds "Café";
SKUs by prefix, as codes (case counts). SKUs compare by code point on both backends
(PostgreSQL's column is ``COLLATE "C"``, SQLite's is ``BINARY``): a prefix is one range of the
SKU index, and pages come in the same order on either database.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.barcodes import InvalidBarcode, normalize_barcode
from ledger.products import Product
from projections.base import Page, PostgresView, SQLiteView, View, ViewProjection

EVENTS = (Product.Created, Product.Named, Product.BarcodeAdded, Product.BarcodeRemoved)


def fold(text: str) -> str:
    """``text`` as names are compared in a search: compatibility-decomposed (NFKD),
    case-folded and without combining marks ("Café" and "CAFE" both give "cafe"). Decomposed
    before folding too, since a decomposition may hold capitals ("℃" is "°C")."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_key(name: str | None) -> str | None:
    return None if name is None else fold(name)


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``, in code point order
    (None: no bound), so that ``prefix <= sku < prefix_end(prefix)`` is "starts with"."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            following = last + 1
            if 0xD800 <= following <= 0xDFFF:  # surrogates are never stored
                following = 0xE000
            return "".join(chars) + chr(following)
    return None


def barcode_key(q: str) -> str | None:
    """The key a barcode ``q`` is stored under (a GTIN as GTIN-14), or None if ``q`` cannot be
    a barcode (a GTIN with a wrong check digit, say)."""
    try:
        return normalize_barcode(q, "q")
    except InvalidBarcode:
        return None


# -- what a page of product events changes ---------------------------------------------------


@dataclass
class ProductChange:
    """The summed effect of a page's events on one product row."""

    position: int
    sku: str | None = None  # set when the page creates the product
    renamed: bool = False
    name: str | None = None


@dataclass(frozen=True)
class Held:
    """After the page, the barcode is held by ``product_id``."""

    product_id: UUID
    units: int


@dataclass(frozen=True)
class Dropped:
    """After the page, no product holds the barcode: all along (``holders`` None), or if it
    was held, before the page, by one of ``holders``."""

    holders: frozenset[UUID] | None


@dataclass
class ProductFold:
    """Folds product events, in order, into the rows they change: the view writes a page's
    fold, and ``replay`` reads the fold of every event."""

    products: dict[UUID, ProductChange] = field(default_factory=dict)
    barcodes: dict[str, Held | Dropped] = field(default_factory=dict)

    def apply(self, event: Any, position: int) -> None:
        product_id = event.originator_id
        change = self.products.get(product_id)
        if change is None:
            change = self.products[product_id] = ProductChange(position)
        change.position = position
        if isinstance(event, Product.Created):
            change.sku, change.name = event.sku, event.name
        elif isinstance(event, Product.Named):
            change.renamed, change.name = True, event.name
        elif isinstance(event, Product.BarcodeAdded):
            self.barcodes[event.key] = Held(product_id, event.units)
        elif isinstance(event, Product.BarcodeRemoved):
            before = self.barcodes.get(event.key)
            if before is None:
                self.barcodes[event.key] = Dropped(frozenset({product_id}))
            elif isinstance(before, Held):
                if before.product_id == product_id:
                    self.barcodes[event.key] = Dropped(None)
            elif before.holders is not None:
                self.barcodes[event.key] = Dropped(before.holders | {product_id})


def replay(events: Iterable[tuple[Any, int]]) -> Iterator[dict[str, Any]]:
    """The rows the view should hold after ``events`` (for ``ledger verify``), as ``rows``
    gives them: by SKU, each with its barcodes."""
    folded = ProductFold()
    for event, position in events:
        folded.apply(event, position)
    barcodes: dict[UUID, list[tuple[str, int]]] = {}
    for key, state in sorted(folded.barcodes.items()):
        if isinstance(state, Held):
            barcodes.setdefault(state.product_id, []).append((key, state.units))
    rows = [
        {
            "product_id": product_id,
            "sku": change.sku,
            "name": change.name,
            "name_key": name_key(change.name),
            "position": change.position,
            "barcodes": barcodes.get(product_id, []),
        }
        for product_id, change in folded.products.items()
        if change.sku is not None
    ]
    return iter(sorted(rows, key=lambda r: r["sku"]))


# -- the view --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRow:
    sku: str
    name: str | None
    barcodes: list[tuple[str, int]]
    """(key, units) of each barcode, by key; a GTIN's key is its GTIN-14."""
    position: int


class ProductsView(View):
    tables = ("products", "product_barcodes")
    topics = tuple(get_topic(cls) for cls in EVENTS)
    key_columns = ("sku",)

    _contains: str
    """SQL: whether ``name_key`` contains the parameter, as a plain substring."""

    def write(self, c: Any, events: Page) -> None:
        folded = ProductFold()
        for event, position in events:
            folded.apply(event, position)
        created, renamed, touched = [], [], []
        for product_id, change in folded.products.items():
            uid = self.uid(product_id)
            if change.sku is not None:
                key = name_key(change.name)
                created.append((uid, change.sku, change.name, key, change.position))
            elif change.renamed:
                renamed.append((change.name, name_key(change.name), change.position, uid))
            else:
                touched.append((change.position, uid))
        held, dropped, dropped_from = [], [], []
        for key, state in folded.barcodes.items():
            if isinstance(state, Held):
                held.append((key, self.uid(state.product_id), state.units))
            elif state.holders is None:
                dropped.append((key,))
            else:
                dropped_from += [(key, self.uid(holder)) for holder in state.holders]
        self._many(
            c,
            "INSERT INTO {t} (product_id, sku, name, name_key, position) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            created,
        )
        self._many(
            c, "UPDATE {t} SET name = ?, name_key = ?, position = ? WHERE product_id = ?", renamed
        )
        self._many(c, "UPDATE {t} SET position = ? WHERE product_id = ?", touched)
        self._many(c, "DELETE FROM {product_barcodes} WHERE key = ?", dropped)
        self._many(
            c, "DELETE FROM {product_barcodes} WHERE key = ? AND product_id = ?", dropped_from
        )
        self._many(
            c,
            "INSERT INTO {product_barcodes} (key, product_id, units) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET product_id = excluded.product_id, "
            "units = excluded.units",
            held,
        )

    def _many(self, c: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            c.executemany(self.q(sql), rows)

    # -- reading -----------------------------------------------------------------------------

    def search_products(
        self, q: str | None, *, limit: int, after_sku: str | None = None
    ) -> list[ProductRow]:
        """Up to ``limit`` products after ``after_sku``, in SKU order, whose SKU starts with
        ``q``, or who hold the barcode ``q``, or whose name holds every word of ``q`` (folded,
        anywhere in the name); every product when ``q`` is empty.

        Each way is its own query under the union, so the SKU prefix is a range of the SKU
        index and the barcode a lookup by key; the name, a substring, is read along the SKU
        index until ``limit`` products match."""
        q = (q or "").strip()
        after, after_params = ("", []) if after_sku is None else (" AND sku > ?", [after_sku])
        after_p = "" if after_sku is None else " AND p.sku > ?"  # the same, in the join
        if not q:
            sql = f"SELECT * FROM {{t}} WHERE 1 = 1{after} ORDER BY sku LIMIT ?"
            params: list[Any] = [*after_params, limit]
        else:
            end = prefix_end(q)
            upto = "" if end is None else " AND sku < ?"
            ways = [
                f"SELECT sku FROM (SELECT sku FROM {{t}} WHERE sku >= ?{upto}{after} "
                "ORDER BY sku LIMIT ?) AS by_sku"
            ]
            params = [q, *([] if end is None else [end]), *after_params, limit]
            key = barcode_key(q)
            if key is not None:
                ways.append(
                    "SELECT p.sku FROM {product_barcodes} AS b JOIN {t} AS p "
                    f"ON p.product_id = b.product_id WHERE b.key = ?{after_p}"
                )
                params += [key, *after_params]
            words = fold(q).split()
            if words:
                contains = " AND ".join([self._contains] * len(words))
                ways.append(
                    f"SELECT sku FROM (SELECT sku FROM {{t}} WHERE {contains}{after} "
                    "ORDER BY sku LIMIT ?) AS by_name"
                )
                params += [*words, *after_params, limit]
            sql = f"SELECT * FROM {{t}} WHERE sku IN ({' UNION '.join(ways)}) ORDER BY sku LIMIT ?"
            params.append(limit)
        with self.reading() as c:
            c.execute(self.q(sql), params)
            found = [self.normalise(dict(r)) for r in c.fetchall()]
            self._add_barcodes(c, found)
        return [ProductRow(r["sku"], r["name"], r["barcodes"], r["position"]) for r in found]

    def names_of(self, skus: list[str]) -> dict[str, str]:
        """The names of those of ``skus`` that have one (a page of the stock list)."""
        if not skus:
            return {}
        marks = ", ".join("?" for _ in skus)
        with self.reading() as c:
            c.execute(
                self.q(f"SELECT sku, name FROM {{t}} WHERE sku IN ({marks}) AND name IS NOT NULL"),
                skus,
            )
            return {r["sku"]: r["name"] for r in c.fetchall()}

    def _add_barcodes(self, c: Any, rows: list[dict[str, Any]]) -> None:
        held: dict[UUID, list[tuple[str, int]]] = {r["product_id"]: [] for r in rows}
        for b in self.rows_with(c, "product_barcodes", "product_id", held):
            held[self.from_uid(b["product_id"])].append((b["key"], b["units"]))
        for row in rows:
            row["barcodes"] = sorted(held[row["product_id"]])

    def rows(self, c: Any) -> Iterator[dict[str, Any]]:
        """Every product, by SKU, each with its barcodes (what ``replay`` computes)."""
        batch: list[dict[str, Any]] = []
        for row in super().rows(c):
            batch.append(row)
            if len(batch) == 1000:
                self._add_barcodes(c, batch)
                yield from batch
                batch = []
        self._add_barcodes(c, batch)
        yield from batch

    def normalise(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "product_id": self.from_uid(row["product_id"])}


class ProductsProjection(ViewProjection):
    name = "products"
    topics = ProductsView.topics


class SQLiteProductsView(SQLiteView, ProductsView):
    _contains = "instr(name_key, ?) > 0"


class PostgresProductsView(PostgresView, ProductsView):
    _contains = "strpos(name_key, ?) > 0"
