"""A platform's import and reservation policy."""

from __future__ import annotations

import pytest

from ledger.orders import OrderStatus
from ledger.platforms import Platform

PENDING = (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_IN_ANALYSIS)


def platform(**settings: object) -> Platform:
    return Platform(name="p", settings={"import_from": "awaiting_payment", **settings})


def test_vtex_reserves_only_once_payment_is_confirmed_by_default() -> None:
    reserves = platform(type="vtex").reserves()
    assert [reserves(s) for s in PENDING] == [False, False]
    assert reserves(OrderStatus.PAYMENT_CONFIRMED)


def test_other_platforms_reserve_at_import_by_default() -> None:
    reserves = platform(type="webhook").reserves()
    assert all(reserves(s) for s in PENDING)


@pytest.mark.parametrize(("kind", "choice"), [("vtex", True), ("webhook", False)])
def test_the_seller_can_choose_per_platform(kind: str, choice: bool) -> None:
    reserves = platform(type=kind, reserve_while_pending=choice).reserves()
    assert [reserves(s) for s in PENDING] == [choice, choice]
    assert reserves(OrderStatus.PAYMENT_CONFIRMED)


def test_import_from_payment_confirmed_skips_earlier_statuses() -> None:
    late = platform(type="webhook", import_from="payment_confirmed")
    assert not late.imports(OrderStatus.AWAITING_PAYMENT)
    assert not late.imports(OrderStatus.PAYMENT_IN_ANALYSIS)
    assert late.imports(OrderStatus.PAYMENT_CONFIRMED)
    assert platform(type="webhook").imports(OrderStatus.AWAITING_PAYMENT)


def test_orders_are_held_without_a_mapped_carrier_and_credentials_never_shown() -> None:
    p = platform(type="webhook", carriers={"PAC": "pac"}, credentials={"key": "s3cret"})
    assert p.hold_reason("PAC") is None
    assert p.hold_reason("Jadlog") == "carrier 'Jadlog' has no mapping"
    assert p.hold_reason(None) == "the order has no carrier"
    assert "s3cret" not in repr(p.public())
