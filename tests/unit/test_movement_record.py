"""The idempotency record's creation event, built directly, is the one the aggregate makes."""

from __future__ import annotations

from decimal import Decimal

from eventsourcing.application import Application

from ledger.movements import MovementRecord, MovementRequest
from ledger.stock import Levels


def test_the_direct_event_equals_the_aggregates_creation_event() -> None:
    request = MovementRequest.parse(
        {"movement_id": "nf-1", "sku": "SKU-1", "kind": "invoice", "quantity": "-2.5"}
    )
    levels = Levels(Decimal("7.5"), Decimal(1))
    [made] = MovementRecord.of(request, levels, 3).collect_events()
    direct = MovementRecord.recorded(request, levels, 3, made.timestamp)
    mapper = Application().mapper
    assert mapper.to_stored_event(direct) == mapper.to_stored_event(made)
    record = direct.mutate(None)
    assert isinstance(record, MovementRecord)
    assert (record.id, record.version, record.fingerprint) == (
        made.originator_id,
        1,
        request.fingerprint(),
    )
    assert (record.physical_after, record.reserved_after, record.stock_version) == (
        Decimal("7.5"),
        Decimal(1),
        3,
    )
