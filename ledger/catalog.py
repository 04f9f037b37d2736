"""The catalog: products' names and barcodes, and what a scanned barcode stands for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import ids
from ledger.application import LedgerApplication
from ledger.barcodes import normalize_barcode
from ledger.codes import check_code, check_object, check_text
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.products import BarcodeClaim, Product
from ledger.unit_of_work import Session

MAX_UNITS = 1_000_000
MAX_NAME_LENGTH = 200


class BarcodeTaken(Conflict):
    code = "barcode_taken"


class UnknownBarcode(NotFound):
    code = "unknown_barcode"


@dataclass(frozen=True)
class BarcodeEntry:
    key: str
    sku: str
    units: int


@dataclass(frozen=True)
class ProductInfo:
    """A copy of a product's state: the aggregate itself goes back to the shared cache."""

    sku: str
    name: str | None
    barcodes: dict[str, int]

    @classmethod
    def of(cls, product: Product) -> ProductInfo:
        return cls(product.sku, product.name, dict(product.barcodes))


def parse_units(value: object, field: str = "units") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_UNITS:
        raise InvalidInput(f"{field} must be a whole number from 1 to {MAX_UNITS}", field=field)
    return value


class Catalog:
    def __init__(self, app: LedgerApplication) -> None:
        self.app = app

    # -- barcodes ----------------------------------------------------------------------------

    def put_barcode(self, code: str, body: object) -> tuple[BarcodeEntry, bool, int | None]:
        """Give ``code`` to a SKU (or change the units it stands for); the entry, whether it
        changed anything, and the write's position."""
        key = normalize_barcode(code, "code")
        data = check_object(body, {"sku", "units"})
        sku = check_code(data.get("sku"), "sku")
        units = parse_units(data.get("units", 1))

        def work(session: Session) -> tuple[bool, dict[tuple[Any, int], int]]:
            claim_id, product_id = ids.barcode_id(key), ids.product_id(sku)
            found = session.load([claim_id, product_id])
            claim: BarcodeClaim | None = found.get(claim_id)
            product: Product | None = found.get(product_id)
            if claim is not None and claim.is_held and claim.sku != sku:
                raise BarcodeTaken(
                    f"barcode {code!r} already stands for SKU {claim.sku!r}: delete it there first",
                    field="code",
                    sku=claim.sku,
                )
            if claim is not None and claim.sku == sku and claim.units == units:
                return False, {}
            if claim is None:
                claim = BarcodeClaim(key, sku, units)
                session.add(claim)
            else:
                claim.assign(sku, units)
            if product is None:
                product = Product(sku)
                session.add(product)
            product.add_barcode(key, units)
            events = [*claim.collect_events(), *product.collect_events()]
            return True, session.save(events)

        changed, positions = self.app.unit_of_work.run(
            work, busy="the barcode changed concurrently too often; try again"
        )
        return BarcodeEntry(key, sku, units), changed, max(positions.values(), default=None)

    def barcode(self, code: str) -> BarcodeEntry:
        key = normalize_barcode(code, "code")
        claim_id = ids.barcode_id(key)

        def read(found: dict[Any, Any]) -> BarcodeEntry | None:
            claim: BarcodeClaim | None = found.get(claim_id)
            if claim is None or claim.sku is None:
                return None
            return BarcodeEntry(key, claim.sku, claim.units)

        entry = self.app.read_current([claim_id], read)
        if entry is None:
            raise UnknownBarcode(f"no SKU has barcode {code!r}", field="barcode", barcode=code)
        return entry

    def delete_barcode(self, code: str) -> int | None:
        key = normalize_barcode(code, "code")

        def work(session: Session) -> dict[tuple[Any, int], int]:
            claim_id = ids.barcode_id(key)
            claim: BarcodeClaim | None = session.load([claim_id]).get(claim_id)
            if claim is None or not claim.is_held:
                raise UnknownBarcode(f"no SKU has barcode {code!r}", field="code", barcode=code)
            product_id = ids.product_id(claim.sku)  # type: ignore[arg-type]
            product: Product | None = session.load([product_id]).get(product_id)
            claim.release()
            events = list(claim.collect_events())
            if product is not None:
                product.remove_barcode(key)
                events += product.collect_events()
            return session.save(events)

        positions = self.app.unit_of_work.run(
            work, busy="the barcode changed concurrently too often; try again"
        )
        return max(positions.values(), default=None)

    # -- products ----------------------------------------------------------------------------

    def name_product(self, sku: str, body: object) -> tuple[ProductInfo, int | None]:
        """The product as named, and the write's position (None when the name was already
        that: nothing was recorded)."""
        sku = check_code(sku, "sku")
        data = check_object(body, {"name"})
        if "name" not in data:
            raise InvalidInput("name is required (null removes it)", field="name")
        name = check_text(data["name"], "name", max_length=MAX_NAME_LENGTH)
        if name is not None and not name.strip():
            raise InvalidInput("name must not be blank", field="name")
        products, position = self.name_products({sku: name})
        return products[sku], position

    def name_products(
        self, names: dict[str, str | None]
    ) -> tuple[dict[str, ProductInfo], int | None]:
        """Set several products' names in one transaction (a spreadsheet's name column);
        returns them with the write's position (None when every name was already that)."""

        def work(session: Session) -> tuple[dict[str, ProductInfo], int | None]:
            keys = {sku: ids.product_id(sku) for sku in names}
            found = session.load(list(keys.values()))
            events = []
            products = {}
            for sku, name in names.items():
                product: Product | None = found.get(keys[sku])
                if product is None:
                    product = Product(sku, name)
                    session.add(product)
                elif product.name != name:
                    product.rename(name)
                events += product.collect_events()
                products[sku] = ProductInfo.of(product)
            positions = session.save(events)
            return products, max(positions.values(), default=None)

        return self.app.unit_of_work.run(
            work, busy="the product changed concurrently too often; try again"
        )

    def product(self, sku: str) -> ProductInfo | None:
        product_id = ids.product_id(sku)

        def read(found: dict[Any, Any]) -> ProductInfo | None:
            product = found.get(product_id)
            return None if product is None else ProductInfo.of(product)

        return self.app.read_current([product_id], read)
