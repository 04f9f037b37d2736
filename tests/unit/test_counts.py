"""A count session's arithmetic: pure domain, no I/O."""

from datetime import UTC, datetime
from decimal import Decimal

from ledger.counts import Count, CountStatus
from ledger.stock import MovementKind, Stock

NOW = datetime(2026, 12, 3, tzinfo=UTC)
COMMON = {"reference": None, "note": None, "recorded_by": "t", "occurred_at": NOW}


def stock_with(physical: str) -> Stock:
    stock, _ = Stock.opened("S", "main", NOW)
    stock.move(
        MovementKind.MANUAL, Decimal(physical), movement_id="seed", allow_negative=False, **COMMON
    )
    return stock


def test_lines_of_one_sku_add_up_and_stand_as_of_the_last_one():
    count = Count("c", "main", "t", NOW)
    count.count_line("1", "S", Decimal(4), Decimal(12), 1, NOW, "t")
    count.count_line("2", "S", Decimal(6), Decimal(11), 2, NOW, "t")
    counted = count.skus["S"]
    assert counted.counted == Decimal(10)
    assert counted.physical_at_count == Decimal(11)
    assert counted.last_line == "2"
    assert count.status is CountStatus.OPEN


def test_a_count_keeps_every_movement_recorded_after_it():
    # Counted 10 while the books said 12; then 3 sold. Closing must give 7, not 10.
    stock = stock_with("12")
    at_count = stock.physical
    stock.move(
        MovementKind.SALES_ORDER, Decimal(-3), movement_id="sale", allow_negative=False, **COMMON
    )
    stock.move(
        MovementKind.INVENTORY_COUNT,
        Decimal(10),
        movement_id="count",
        allow_negative=False,
        counted_against=at_count,
        **COMMON,
    )
    assert stock.physical == Decimal(7)


def test_a_count_of_a_sku_that_did_not_move_sets_it_exactly():
    stock = stock_with("12")
    stock.move(
        MovementKind.INVENTORY_COUNT,
        Decimal(10),
        movement_id="count",
        allow_negative=False,
        counted_against=stock.physical,
        **COMMON,
    )
    assert stock.physical == Decimal(10)


def test_a_plain_inventory_count_still_sets_the_level_now():
    stock = stock_with("12")
    stock.move(
        MovementKind.INVENTORY_COUNT, Decimal(5), movement_id="c", allow_negative=False, **COMMON
    )
    assert stock.physical == Decimal(5)
