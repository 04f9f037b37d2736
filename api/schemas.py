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

    movement_id: str = Field(
        description="Idempotency key, unique across the ledger (1-64 characters, no control "
        "characters). Sending it again with the same body answers 200 and records nothing."
    )
    sku: str = Field(description="The SKU (1-64 characters, no control characters).")
    warehouse: str = Field("main", description="The warehouse (1-64 characters).")
    kind: MovementKind = Field(description="Which of the seven kinds of movement this is.")
    quantity: Decimal | str = Field(
        description="Signed change of physical stock (non-zero), or for `inventory_count` the "
        "counted quantity (>= 0). A JSON number or decimal string; at most 6 decimal places "
        "and 12 integer digits."
    )
    reference: str | None = Field(None, description="Document reference (at most 200 chars).")
    note: str | None = Field(None, description="Free note (at most 1000 characters).")
    occurred_at: str | None = Field(
        None, description="Business time, ISO 8601 with a time zone. Defaults to now."
    )


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class StockPage(BaseModel):
    items: list[SkuLevels]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, description="Unique name; shown as recorded_by.")
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
    running: bool = Field(description="Whether this process runs the view's runner.")
    failing: bool
    last_error: str | None
    problem: str | None = Field(description="While failing: the event it cannot apply.")


class ViewsHealth(BaseModel):
    database: Literal["sqlite", "postgres"]
    event_store_position: int
    views: list[ViewHealth]


class ErrorOut(BaseModel):
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
