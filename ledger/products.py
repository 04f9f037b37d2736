"""Products (a SKU's name and barcodes) and the claim that makes a barcode one SKU's alone.

A barcode's aggregate id derives from its key (a GTIN as GTIN-14, or an internal code), so the
event store's unique key refuses a second claim of the same code in the very transaction that
records it: two SKUs cannot take one barcode, whatever the timing.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger import ids


class Product(Aggregate):
    @staticmethod
    def create_id(sku: str) -> UUID:
        return ids.product_id(sku)

    @event("Created")
    def __init__(self, sku: str, name: str | None = None) -> None:
        # Named at creation when the name is known: one event, not two, per product of a
        # spreadsheet's name column.
        self.sku = sku
        self.name: str | None = name
        # barcode key -> units it stands for
        self.barcodes: dict[str, int] = {}

    @event("Named")
    def rename(self, name: str | None) -> None:
        self.name = name

    @event("BarcodeAdded")
    def add_barcode(self, key: str, units: int) -> None:
        self.barcodes[key] = units

    @event("BarcodeRemoved")
    def remove_barcode(self, key: str) -> None:
        self.barcodes.pop(key, None)


class BarcodeClaim(Aggregate):
    @staticmethod
    def create_id(key: str, **_: object) -> UUID:
        return ids.barcode_id(key)

    @event("Assigned")
    def __init__(self, key: str, sku: str, units: int) -> None:
        self.key = key
        self.sku: str | None = sku
        self.units = units

    @property
    def is_held(self) -> bool:
        return self.sku is not None

    @event("Reassigned")
    def assign(self, sku: str, units: int) -> None:
        self.sku = sku
        self.units = units

    @event("Released")
    def release(self) -> None:
        self.sku = None
