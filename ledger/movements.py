"""A movement as asked for, and the record that makes its id an idempotency key.

Every accepted movement creates a ``MovementRecord`` whose id derives from the movement id. The
event store's unique (originator id, version) key then refuses a second record with the same
movement id inside the very transaction that writes the stock event: no check-then-write race.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from ledger import ids
from ledger.codes import check_code, check_text
from ledger.errors import InvalidInput
from ledger.quantities import parse_quantity, render
from ledger.stock import Levels, MovementKind

DEFAULT_WAREHOUSE = "main"


@dataclass(frozen=True)
class MovementRequest:
    movement_id: str
    sku: str
    warehouse: str
    kind: MovementKind
    quantity: Decimal
    reference: str | None = None
    note: str | None = None
    occurred_at: datetime | None = None
    # An inventory count's physical stock when it was counted (a count session's close); never
    # from a client's JSON.
    counted_against: Decimal | None = None

    @classmethod
    def parse(cls, data: Any) -> MovementRequest:
        """Validate one movement as a client sent it (already JSON-decoded, floats as Decimal)."""
        if not isinstance(data, dict):
            raise InvalidInput("a movement must be a JSON object")
        unknown = set(data) - {
            "movement_id",
            "sku",
            "warehouse",
            "kind",
            "quantity",
            "reference",
            "note",
            "occurred_at",
        }
        if unknown:
            raise InvalidInput(
                f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
            )
        kind_value = data.get("kind")
        try:
            kind = MovementKind(kind_value)
        except ValueError:
            allowed = ", ".join(k.value for k in MovementKind)
            raise InvalidInput(
                f"kind must be one of {allowed}; got {kind_value!r}", field="kind"
            ) from None
        if "quantity" not in data:
            raise InvalidInput("quantity is required", field="quantity")
        quantity = parse_quantity(data["quantity"])
        # The aggregate enforces these too; checking here refuses them before any lookup, so
        # bad input is a 422 whatever the ledger already holds.
        if kind is MovementKind.INVENTORY_COUNT and quantity < 0:
            raise InvalidInput("an inventory count cannot be negative", field="quantity")
        if kind is not MovementKind.INVENTORY_COUNT and quantity == 0:
            raise InvalidInput("quantity must not be zero for this kind", field="quantity")
        return cls(
            movement_id=check_code(data.get("movement_id"), "movement_id"),
            sku=check_code(data.get("sku"), "sku"),
            warehouse=check_code(data.get("warehouse", DEFAULT_WAREHOUSE), "warehouse"),
            kind=kind,
            quantity=quantity,
            reference=check_text(
                data.get("reference"), "reference", max_length=200, multiline=True
            ),
            note=check_text(data.get("note"), "note", max_length=1000, multiline=True),
            occurred_at=parse_moment(data.get("occurred_at"), "occurred_at"),
        )

    def fingerprint(self) -> str:
        """What makes two requests 'the same body' for the idempotency rule."""
        # Fields joined by a unit separator, which no checked field can contain (control
        # characters are refused), with NUL for an absent one: unambiguous, and several times
        # cheaper than canonical JSON, once per movement.
        canonical = "\x1f".join(
            (
                self.sku,
                self.warehouse,
                self.kind.value,
                render(self.quantity),
                "\x00" if self.reference is None else self.reference,
                "\x00" if self.note is None else self.note,
                "\x00" if self.occurred_at is None else self.occurred_at.isoformat(),
            )
        )
        if self.counted_against is not None:
            # Only then: every other movement keeps the fingerprint it was recorded with.
            canonical += "\x1f" + render(self.counted_against)
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_moment(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInput(f"{field} must be an ISO 8601 date-time", field=field)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{field} must be an ISO 8601 date-time, got {value!r}", field=field
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} must carry a time zone (e.g. Z or -03:00)", field=field)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{field} is out of range once in UTC: {value!r}", field=field) from None


@dataclass
class MovementResult:
    movement_id: str
    sku: str
    warehouse: str
    physical: Decimal
    reserved: Decimal
    position: int | None
    replayed: bool = False
    # The stock event behind this result, (stock id, version): it locates the position.
    event: tuple[UUID, int] | None = None

    @property
    def available(self) -> Decimal:
        return self.physical - self.reserved


class MovementRecord(Aggregate):
    """The idempotency key of one movement, with what it answered the first time."""

    @staticmethod
    def create_id(movement_id: str) -> UUID:
        return ids.movement_record_id(movement_id)

    class Recorded(Aggregate.Created):
        movement_id: str
        fingerprint: str
        sku: str
        warehouse: str
        physical_after: Decimal
        reserved_after: Decimal
        stock_version: int

    def __init__(
        self,
        movement_id: str,
        fingerprint: str,
        sku: str,
        warehouse: str,
        physical_after: Decimal,
        reserved_after: Decimal,
        stock_version: int,
    ) -> None:
        self.movement_id = movement_id
        self.fingerprint = fingerprint
        self.sku = sku
        self.warehouse = warehouse
        self.physical_after = physical_after
        self.reserved_after = reserved_after
        # The stock event's version: with the stock id, it finds the original position.
        self.stock_version = stock_version

    @classmethod
    def of(cls, request: MovementRequest, after: Levels, stock_version: int) -> MovementRecord:
        return cls(
            movement_id=request.movement_id,
            fingerprint=request.fingerprint(),
            sku=request.sku,
            warehouse=request.warehouse,
            physical_after=after.physical,
            reserved_after=after.reserved,
            stock_version=stock_version,
        )

    @classmethod
    def recorded(
        cls, request: MovementRequest, after: Levels, stock_version: int, timestamp: datetime
    ) -> MovementRecord.Recorded:
        """The creation event ``of`` would trigger, without building the aggregate.

        A write only needs the event to store; a 50,000-row batch saves about a fifth of its
        time by skipping the library's generic construction, whose argument inspection costs
        more than the event itself. ``tests/unit/test_movement_record.py`` holds the two equal.
        """
        return cls.Recorded(
            originator_id=ids.movement_record_id(request.movement_id),
            originator_version=cls.INITIAL_VERSION,
            timestamp=timestamp,
            originator_topic=_RECORD_TOPIC,
            movement_id=request.movement_id,
            fingerprint=request.fingerprint(),
            sku=request.sku,
            warehouse=request.warehouse,
            physical_after=after.physical,
            reserved_after=after.reserved,
            stock_version=stock_version,
        )


_RECORD_TOPIC = get_topic(MovementRecord)
