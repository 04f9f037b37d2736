"""Validation of movements as clients send them: every refusal is InvalidInput, never a crash."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ledger.errors import InvalidInput
from ledger.movements import MovementRequest
from ledger.quantities import normalize, parse_quantity, render

VALID = {"movement_id": "m-1", "sku": "SKU-1", "kind": "invoice", "quantity": "10"}


def with_(**changes: Any) -> dict[str, Any]:
    body = {**VALID, **changes}
    return {k: v for k, v in body.items() if v is not ...}


def test_a_valid_movement_parses_with_defaults() -> None:
    request = MovementRequest.parse(VALID)
    assert (request.warehouse, request.quantity, request.occurred_at) == ("main", Decimal(10), None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (with_(kind="gift"), "kind"),
        (with_(sku=...), "sku"),
        (with_(sku=""), "sku"),
        (with_(warehouse=""), "warehouse"),
        (with_(movement_id=...), "movement_id"),
        (with_(movement_id=""), "movement_id"),
        (with_(sku="x" * 65), "sku"),
        (with_(warehouse="w" * 65), "warehouse"),
        (with_(movement_id="m" * 65), "movement_id"),
        (with_(sku="A\x00B"), "sku"),
        (with_(sku="A\nB"), "sku"),
        (with_(sku=" A"), "sku"),
        (with_(quantity=...), "quantity"),
        (with_(quantity="ten"), "quantity"),
        (with_(quantity="NaN"), "quantity"),
        (with_(quantity="Infinity"), "quantity"),
        (with_(quantity="-inf"), "quantity"),
        (with_(quantity="1.0000001"), "quantity"),
        (with_(quantity="1e30"), "quantity"),
        (with_(quantity="0"), "quantity"),
        (with_(quantity="-0.000"), "quantity"),
        (with_(kind="inventory_count", quantity="-1"), "quantity"),
        (with_(quantity=10**13), "quantity"),
        # Beyond the decimal context: arithmetic on these raised instead of answering.
        (with_(quantity="99999999999999999999999.9999999"), "quantity"),
        (with_(quantity="1e999999999"), "quantity"),
        (with_(quantity="-1e999999999"), "quantity"),
        (with_(quantity="1e-999999999"), "quantity"),
        (with_(quantity=Decimal("9" * 60)), "quantity"),
        (with_(sku="."), "sku"),
        (with_(sku=".."), "sku"),
        (with_(warehouse=".."), "warehouse"),
        (with_(movement_id="."), "movement_id"),
        (with_(reference="a\x00b"), "reference"),
        (with_(note="a\x1bb"), "note"),
        (with_(quantity=True), "quantity"),
        (with_(quantity=None), "quantity"),
        (with_(quantity=[1]), "quantity"),
        (with_(occurred_at="yesterday"), "occurred_at"),
        (with_(occurred_at="2026-11-28T10:00:00"), "occurred_at"),
        (with_(reference="r" * 201), "reference"),
        (with_(surprise=1), "surprise"),
    ],
)
def test_bad_input_is_refused_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        MovementRequest.parse(body)
    assert caught.value.context["field"] == field


def test_only_notes_and_references_keep_line_feeds_and_tabs() -> None:
    request = MovementRequest.parse(with_(reference="NF 1\n2", note="line one\n\tline two"))
    assert (request.reference, request.note) == ("NF 1\n2", "line one\n\tline two")
    with pytest.raises(InvalidInput):
        MovementRequest.parse(with_(sku="A\tB"))


def test_dots_inside_a_code_are_fine() -> None:
    assert MovementRequest.parse(with_(sku="...", warehouse="a.b")).sku == "..."


def test_quantities_keep_up_to_six_decimal_places_exactly() -> None:
    assert parse_quantity("123456789012.123456") == Decimal("123456789012.123456")
    assert parse_quantity(Decimal("0.1")) == Decimal("0.1")
    assert parse_quantity("1.500000000") == Decimal("1.5")
    assert parse_quantity("0E+99999") == Decimal(0)
    assert parse_quantity("999999999999.999999") == Decimal("999999999999.999999")


def test_equal_quantities_have_one_canonical_form() -> None:
    assert render(normalize(Decimal("1E+1"))) == "10"
    assert render(parse_quantity("10.000")) == "10"
    assert render(parse_quantity("-0")) == "0"


def test_the_fingerprint_ignores_how_a_number_was_written() -> None:
    a = MovementRequest.parse(with_(quantity="10"))
    b = MovementRequest.parse(with_(quantity=Decimal("10.00")))
    c = MovementRequest.parse(with_(quantity="11"))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_the_fingerprint_tells_every_field_apart() -> None:
    bodies = [
        with_(),
        with_(reference="a"),
        with_(note="a"),
        with_(reference="a", note="b"),
        with_(reference="b", note="a"),
        with_(sku="SKU-2"),
        with_(warehouse="north"),
        with_(kind="manual"),
        with_(occurred_at="2026-11-28T10:00:00Z"),
    ]
    prints = {MovementRequest.parse(body).fingerprint() for body in bodies}
    assert len(prints) == len(bodies)


def test_occurred_at_is_kept_in_utc() -> None:
    request = MovementRequest.parse(with_(occurred_at="2026-11-28T07:00:00-03:00"))
    assert request.occurred_at is not None
    assert request.occurred_at.isoformat() == "2026-11-28T10:00:00+00:00"
