"""Request and response bodies as the OpenAPI document shows them.

Shapes and documentation live here; the rules (lengths, control characters, decimal places,
bounds) are the domain's, checked again in ``ledger.movements`` with the same messages for
HTTP, CLI and tests.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, SkipValidation

from ledger.quantities import render
from ledger.stock import MovementKind
from ledger.tokens import Permission

# What ``ledger/codes.py`` checks, as JSON Schema patterns (ECMA 262 and Python ``re`` alike:
# ``(?![\s\S])`` is "end of text", since ``$`` also matches before a final line feed in Python).
# Lone surrogates are refused too, but a surrogate range makes the patterns unusable to common
# validators, so the documents leave them out.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_END = r"(?![\s\S])"
CODE_PATTERN = rf"^(?!\.\.?{_END})[^\s{_CONTROL}](?:[^{_CONTROL}]*[^\s{_CONTROL}])?{_END}"
LINE_PATTERN = rf"^[^{_CONTROL}]*{_END}"
TEXT_PATTERN = rf"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*{_END}"


def code(description: str, default: Any = ..., **kwargs: Any) -> Any:
    """A code (SKU, warehouse, id, number, name): 1-64 characters, no control characters, no
    white space at either end, never ``.`` or ``..``. Documented here, checked by the domain."""
    return Field(
        default,
        min_length=1,
        max_length=64,
        description=description,
        json_schema_extra={"pattern": CODE_PATTERN},
        **kwargs,
    )


def line(description: str, max_length: int, default: Any = None) -> Any:
    """One line of text: no control characters."""
    return Field(
        default,
        max_length=max_length,
        description=description,
        json_schema_extra={"pattern": LINE_PATTERN},
    )


def text(description: str, max_length: int, default: Any = None) -> Any:
    """Free text that may hold line feeds and tabs (notes, references)."""
    return Field(
        default,
        max_length=max_length,
        description=description,
        json_schema_extra={"pattern": TEXT_PATTERN},
    )


def moment(description: str, default: Any = None) -> Any:
    return Field(
        default, max_length=64, description=description, json_schema_extra={"format": "date-time"}
    )


Quantity = Annotated[
    Decimal,
    PlainSerializer(render, return_type=str, when_used="json"),
    Field(description='An exact decimal, rendered as a string (e.g. "10.5").'),
]


class MovementIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "movement_id": "nf-1234-item-1",
                    "sku": "SKU-1",
                    "warehouse": "main",
                    "kind": "invoice",
                    "quantity": "10",
                    "reference": "NF 1234",
                    "occurred_at": "2026-11-28T10:00:00Z",
                }
            ]
        },
    )

    movement_id: str = code(
        "Idempotency key, unique across the ledger (1-64 characters, no control "
        "characters). Sending it again with the same body answers 200 and records nothing."
    )
    sku: str = code("The SKU (1-64 characters, no control characters).")
    warehouse: str = code("The warehouse (1-64 characters).", "main")
    kind: MovementKind = Field(description="Which of the seven kinds of movement this is.")
    quantity: Decimal | str = Field(
        description="Signed change of physical stock (non-zero), or for `inventory_count` the "
        "counted quantity (>= 0). A JSON number or decimal string; at most 6 decimal places "
        "and 12 integer digits."
    )
    reference: str | None = text("Document reference (at most 200 characters).", 200)
    note: str | None = text("Free note (at most 1000 characters).", 1000)
    occurred_at: str | None = moment("Business time, ISO 8601 with a time zone. Defaults to now.")


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "movements": [
                        {
                            "movement_id": "po-88-1",
                            "sku": "SKU-1",
                            "kind": "purchase_order",
                            "quantity": "24",
                            "reference": "PO 88",
                        },
                        {
                            "movement_id": "po-88-2",
                            "sku": "SKU-2",
                            "warehouse": "north",
                            "kind": "purchase_order",
                            "quantity": "6.5",
                            "reference": "PO 88",
                        },
                    ]
                }
            ]
        },
    )

    # Rows are documented as MovementIn but checked once, by the domain's parser, with the
    # row number in every message: validating 50,000 models twice was a third of a batch's time.
    movements: list[SkipValidation[MovementIn]] = Field(
        description="Recorded all or nothing, in order (see LEDGER_MAX_BATCH for the limit)."
    )


class MovementOut(BaseModel):
    movement_id: str
    sku: str
    warehouse: str
    physical: Quantity = Field(description="Physical stock of (sku, warehouse) after it.")
    reserved: Quantity
    available: Quantity = Field(description="physical - reserved.")
    position: int | None = Field(
        description="Event store position of the write; pass as ?after= to read your write."
    )


class BatchOut(BaseModel):
    results: list[MovementOut]


class WarehouseLevels(BaseModel):
    warehouse: str
    physical: Quantity
    reserved: Quantity
    available: Quantity


class BarcodeOut(BaseModel):
    code: str = Field(description="The code as printed (a GTIN without padding zeros).")
    units: int


class SkuLevels(BaseModel):
    sku: str
    physical: Quantity
    reserved: Quantity
    available: Quantity
    oversold: bool = Field(description="True when available stock is below zero.")
    warehouses: list[WarehouseLevels]
    at: datetime | None = Field(
        default=None, description="The moment asked for with ?at=, when it was asked."
    )
    name: str | None = Field(default=None, description="The product's name, if it has one.")
    barcodes: list[BarcodeOut] = Field(
        default_factory=list, description="The barcodes that stand for this SKU."
    )


class BarcodeIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    units: int = Field(default=1, ge=1, le=1_000_000, description="Units the barcode stands for.")


class BarcodeEntryOut(BaseModel):
    code: str
    key: str = Field(description="What the code is compared as: a GTIN as GTIN-14.")
    sku: str
    units: int
    position: int | None = None


class ProductIn(BaseModel):
    name: str | None = Field(max_length=200, description="null removes the name.")


class ProductOut(BaseModel):
    sku: str
    name: str | None
    barcodes: list[BarcodeOut]


class NamedProductOut(ProductOut):
    position: int | None = Field(
        description="The write's position for `?after=`; null when the name was already that "
        "and nothing was recorded."
    )


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


class ScanIn(BaseModel):
    scan_id: str = Field(min_length=1, max_length=64, description="The idempotency key.")
    barcode: str = Field(min_length=1, max_length=64)
    warehouse: str = Field(default="main", min_length=1, max_length=64)
    direction: Literal["in", "out"] = "in"
    count: int = Field(default=1, ge=1, le=100_000, description="How many times it was read.")


class CountIn(BaseModel):
    count_id: str = Field(min_length=1, max_length=64)
    warehouse: str = Field(default="main", min_length=1, max_length=64)


class CountLineIn(BaseModel):
    line_id: str = Field(min_length=1, max_length=64, description="The idempotency key.")
    sku: str | None = Field(default=None, min_length=1, max_length=64)
    barcode: str | None = Field(default=None, min_length=1, max_length=64)
    quantity: Quantity


class CountLineOut(BaseModel):
    line_id: str
    sku: str
    quantity: Quantity
    counted: Quantity = Field(description="The SKU's total in this count after the line.")
    physical_at_count: Quantity
    position: int | None


class CountCloseIn(BaseModel):
    zero_uncounted: bool = False


class CountedSkuOut(BaseModel):
    sku: str
    counted: Quantity
    physical_at_count: Quantity = Field(description="Physical stock at the SKU's last line.")
    last_line: str
    counted_at: datetime
    physical_now: Quantity
    moved_since: Quantity = Field(description="Movements recorded after the last line.")
    change: Quantity = Field(description="What closing records (or recorded).")
    physical_after: Quantity = Field(description="Physical stock once closed.")


class CountOut(BaseModel):
    count_id: str
    warehouse: str
    status: Literal["open", "closed", "abandoned"]
    opened_by: str
    opened_at: datetime
    closed_at: datetime | None
    zero_uncounted: bool
    lines: int
    skus: list[CountedSkuOut]
    movements: list[MovementOut] | None = None


class StockPage(BaseModel):
    items: list[SkuLevels]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = code("Unique name; shown as recorded_by.")
    permissions: list[Permission] = Field(
        min_length=1, description="read, write (includes read) and/or admin (everything)."
    )


class TokenCreated(BaseModel):
    name: str
    permissions: list[str]
    token: str = Field(description="The secret. Shown once; only its hash is stored.")


class TokenOut(BaseModel):
    name: str
    permissions: list[str]
    issued_by: str
    issued_at: datetime
    revoked_at: datetime | None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = code("Unique name the person signs in with; shown as recorded_by.")
    password: str = Field(min_length=8, max_length=256, description="Kept only as an argon2 hash.")
    role: Permission = Field(description="read, write (includes read) or admin (everything).")


class UserOut(BaseModel):
    name: str
    role: str
    created_by: str
    created_at: datetime
    disabled_at: datetime | None


class Liveness(BaseModel):
    status: Literal["ok"]


class Problem(BaseModel):
    component: str = Field(description='"database", or "view <name>".')
    problem: str = Field(
        description="What is wrong, e.g. `cannot apply event 1234 (Platform.Reconfigured): "
        "DataError`; never the database's address or data."
    )


class Readiness(BaseModel):
    status: Literal["ready", "unready"]
    problems: list[Problem]


class ViewHealth(BaseModel):
    name: str
    position: int = Field(description="The last event position the view has read.")
    lag: int = Field(description="Events stored but not yet read by the view.")
    running: bool = Field(
        description="Whether the view's runner runs: in this process, or in a process that "
        "reported it within the last 15 s (the background process of `serve --workers N`, "
        "a `ledger worker`)."
    )
    failing: bool
    last_error: str | None
    problem: str | None = Field(description="While failing: the event it cannot apply.")
    heartbeat_age: float | None = Field(
        None,
        description="Seconds since a process running the view last reported it; null when "
        "this process runs it, or when none ever did.",
    )


class ViewsHealth(BaseModel):
    database: Literal["sqlite", "postgres"]
    event_store_position: int
    views: list[ViewHealth]


class ErrorOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "insufficient_stock",
                    "detail": "SKU-1 in main has physical stock 2; a change of -5 would make "
                    "it negative",
                    "sku": "SKU-1",
                    "warehouse": "main",
                },
                {
                    "error": "invalid_input",
                    "detail": "quantity must be a decimal number, got 'ten'",
                    "field": "quantity",
                },
            ]
        }
    )

    error: str = Field(description="Machine-readable code, e.g. insufficient_stock.")
    detail: str = Field(description="A human sentence.")


ERRORS = {
    401: {"model": ErrorOut, "description": "Missing or invalid bearer token."},
    403: {"model": ErrorOut, "description": "The token lacks the permission."},
    422: {"model": ErrorOut, "description": "Invalid input; `field` names the culprit."},
}


READ_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    503: {"model": ErrorOut, "description": "view_lagging: ?after= was not reached in time."},
}


class ReportItem(BaseModel):
    position: int = Field(description="The change's position in the event store.")
    movement_id: str
    sku: str
    warehouse: str
    kind: str = Field(description="A movement kind, or reservation, release, consumption.")
    quantity_change: Quantity = Field(description="Change of physical stock.")
    reserved_change: Quantity
    physical_after: Quantity
    reserved_after: Quantity
    available_after: Quantity
    counted: Quantity | None = Field(description="What an inventory count found.")
    reference: str | None
    note: str | None
    recorded_by: str
    occurred_at: datetime
    recorded_at: datetime


class ReportPage(BaseModel):
    items: list[ReportItem]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page.")
