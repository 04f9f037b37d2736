"""A scan (bipagem): a barcode read in a warehouse becomes a ``scan`` movement of its SKU."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from ledger.catalog import Catalog
from ledger.codes import check_code, check_object
from ledger.errors import InvalidInput
from ledger.movements import DEFAULT_WAREHOUSE, MovementRequest
from ledger.stock import MovementKind

MAX_COUNT = 100_000


def scan_movement_id(scan_id: str) -> str:
    """The movement a scan id names: the scan id is the idempotency key."""
    return f"scan-{hashlib.sha256(scan_id.encode()).hexdigest()[:40]}"


def scan_request(body: object, catalog: Catalog) -> MovementRequest:
    """The movement a scan records; ``UnknownBarcode`` (404) for a barcode no SKU has."""
    data = check_object(body, {"scan_id", "barcode", "warehouse", "direction", "count"})
    scan_id = check_code(data.get("scan_id"), "scan_id")
    direction = data.get("direction", "in")
    if direction not in ("in", "out"):
        raise InvalidInput('direction must be "in" or "out"', field="direction")
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise InvalidInput(f"count must be a whole number from 1 to {MAX_COUNT}", field="count")
    warehouse = check_code(data.get("warehouse", DEFAULT_WAREHOUSE), "warehouse")
    if "barcode" not in data:
        raise InvalidInput("barcode is required", field="barcode")
    entry = catalog.barcode(data["barcode"])
    units = Decimal(entry.units * count)
    return MovementRequest(
        movement_id=scan_movement_id(scan_id),
        sku=entry.sku,
        warehouse=warehouse,
        kind=MovementKind.SCAN,
        quantity=units if direction == "in" else -units,
        reference=f"scan {scan_id}",
        note=f"barcode {data['barcode']}" + (f" x{count}" if count != 1 else ""),
    )
