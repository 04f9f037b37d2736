"""The stock aggregate's rules, with no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ledger import ids
from ledger.errors import InsufficientStock, InvalidInput
from ledger.stock import EVENT_KINDS, MovementKind, Stock

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def move(
    stock: Stock,
    kind: MovementKind,
    quantity: str,
    *,
    allow_negative: bool = False,
    movement_id: str = "m",
) -> None:
    stock.move(
        kind,
        Decimal(quantity),
        movement_id=movement_id,
        reference="ref",
        note=None,
        recorded_by="tester",
        occurred_at=NOW,
        allow_negative=allow_negative,
    )


def common(movement_id: str = "o") -> dict[str, object]:
    return {
        "movement_id": movement_id,
        "reference": "order 1",
        "note": None,
        "recorded_by": "tester",
        "occurred_at": NOW,
    }


def test_a_stock_has_a_deterministic_id_per_sku_and_warehouse() -> None:
    assert Stock(sku="A", warehouse="main").id == ids.stock_id("A", "main")
    assert ids.stock_id("A", "main") != ids.stock_id("A", "other")
    assert ids.stock_id("A", "main") != ids.stock_id("Amain", "")


def test_a_new_stock_is_empty() -> None:
    stock = Stock(sku="A", warehouse="main")
    assert (stock.physical, stock.reserved, stock.available) == (0, 0, 0)


@pytest.mark.parametrize(
    ("kind", "event_class"),
    [
        (MovementKind.INVOICE, Stock.InvoicePosted),
        (MovementKind.SALES_ORDER, Stock.SalesOrderPosted),
        (MovementKind.PURCHASE_ORDER, Stock.PurchaseOrderReceived),
        (MovementKind.SCAN, Stock.ScanAdjusted),
        (MovementKind.SPREADSHEET, Stock.SpreadsheetImported),
        (MovementKind.MANUAL, Stock.ManualEntryRecorded),
    ],
)
def test_each_kind_records_its_own_event_carrying_the_movement(
    kind: MovementKind, event_class: type
) -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, kind, "7.25", movement_id="mv-1")
    event = stock.collect_events()[-1]
    assert type(event) is event_class
    assert EVENT_KINDS[event_class] == kind.value
    assert (
        event.movement_id,
        event.change,
        event.reference,
        event.recorded_by,
        event.occurred_at,
    ) == (
        "mv-1",
        Decimal("7.25"),
        "ref",
        "tester",
        NOW,
    )
    assert stock.physical == Decimal("7.25")


def test_an_inventory_count_sets_physical_and_records_the_difference() -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, MovementKind.PURCHASE_ORDER, "10")
    move(stock, MovementKind.INVENTORY_COUNT, "7")
    event = stock.collect_events()[-1]
    assert isinstance(event, Stock.InventoryCounted)
    assert (event.counted, event.change) == (Decimal(7), Decimal(-3))
    assert stock.physical == 7


def test_a_count_that_matches_is_recorded_with_no_difference() -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, MovementKind.PURCHASE_ORDER, "4")
    move(stock, MovementKind.INVENTORY_COUNT, "4")
    assert stock.collect_events()[-1].change == 0


def test_a_negative_count_is_refused() -> None:
    stock = Stock(sku="A", warehouse="main")
    with pytest.raises(InvalidInput):
        move(stock, MovementKind.INVENTORY_COUNT, "-1")


def test_a_zero_change_is_refused() -> None:
    with pytest.raises(InvalidInput):
        move(Stock(sku="A", warehouse="main"), MovementKind.MANUAL, "0")


def test_physical_stock_cannot_go_negative_by_default() -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, MovementKind.PURCHASE_ORDER, "3")
    with pytest.raises(InsufficientStock):
        move(stock, MovementKind.INVOICE, "-3.000001")
    assert stock.physical == 3
    move(stock, MovementKind.INVOICE, "-3")
    assert stock.physical == 0


def test_a_warehouse_that_allows_it_goes_negative() -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, MovementKind.INVOICE, "-2", allow_negative=True)
    assert stock.physical == -2


def test_available_is_physical_minus_reserved() -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, MovementKind.PURCHASE_ORDER, "10")
    stock.reserve(Decimal(5), **common())
    assert (stock.physical, stock.reserved, stock.available) == (10, 5, 5)


def test_reservations_never_fail_for_lack_of_stock_and_show_oversell() -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, MovementKind.PURCHASE_ORDER, "3")
    stock.reserve(Decimal(2), **common("o1"))
    stock.reserve(Decimal(2), **common("o2"))
    assert (stock.reserved, stock.available) == (4, -1)


def test_consuming_drops_physical_and_reserved_together() -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, MovementKind.PURCHASE_ORDER, "10")
    stock.reserve(Decimal(5), **common())
    stock.consume(Decimal(5), **common())
    assert (stock.physical, stock.reserved, stock.available) == (5, 0, 5)


def test_releasing_gives_the_reservation_back() -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, MovementKind.PURCHASE_ORDER, "10")
    stock.reserve(Decimal(5), **common())
    stock.release(Decimal(5), **common())
    assert (stock.physical, stock.reserved, stock.available) == (10, 0, 10)


def test_more_than_is_reserved_cannot_be_released_or_consumed() -> None:
    stock = Stock(sku="A", warehouse="main")
    stock.reserve(Decimal(1), **common())
    with pytest.raises(InvalidInput):
        stock.release(Decimal(2), **common())
    with pytest.raises(InvalidInput):
        stock.consume(Decimal(2), **common())
    assert stock.reserved == 1


def test_events_replay_to_the_same_state() -> None:
    stock = Stock(sku="A", warehouse="main")
    move(stock, MovementKind.PURCHASE_ORDER, "10", movement_id="a")
    stock.reserve(Decimal(4), **common())
    move(stock, MovementKind.INVENTORY_COUNT, "8", movement_id="b")
    replayed = None
    for event in stock.collect_events():
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert (replayed.physical, replayed.reserved) == (stock.physical, stock.reserved)


def test_a_stock_opened_directly_is_the_one_the_constructor_makes() -> None:
    from eventsourcing.application import Application

    made = Stock(sku="SKU-1", warehouse="main")
    [event] = made.collect_events()
    stock, direct = Stock.opened("SKU-1", "main", event.timestamp)
    mapper = Application().mapper
    assert mapper.to_stored_event(direct) == mapper.to_stored_event(event)
    assert stock == made
    assert stock.collect_events() == []


@pytest.mark.parametrize(
    ("event_class", "moves"),
    [
        *(
            (cls, (True, False))
            for cls in EVENT_KINDS
            if cls.__name__ not in {"Reserved", "Released", "Consumed"}
        ),
        (Stock.Reserved, (False, True)),
        (Stock.Released, (False, True)),
        (Stock.Consumed, (True, True)),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_each_stock_event_states_once_what_it_moves_and_the_aggregate_obeys(
    event_class: type[Stock.Moved], moves: tuple[bool, bool]
) -> None:
    """The statement every view reads (physical_change, reserved_change) is the one the
    aggregate applies: a view cannot disagree with the stock it shows."""
    stock = Stock("SKU", "main")
    stock.reserve(Decimal(50), **common("r"))
    before = stock.levels
    extra = {"counted": Decimal(0)} if event_class is Stock.InventoryCounted else {}
    stock.trigger_event(event_class, change=Decimal(-3), **extra, **common("e"))
    [*_, event] = stock.collect_events()
    expected = (Decimal(-3) if moves[0] else 0, Decimal(-3) if moves[1] else 0)
    assert (event.physical_change, event.reserved_change) == expected
    assert (
        stock.physical - before.physical,
        stock.reserved - before.reserved,
    ) == expected
