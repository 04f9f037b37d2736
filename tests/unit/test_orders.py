"""The order aggregate's rules: what each command does to stock, with no I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eventsourcing.application import Application

from ledger.errors import InvalidInput
from ledger.orders import (
    Order,
    OrderConflict,
    OrderLine,
    OrderStatus,
    StockAction,
    StockChange,
    parse_invoice_value,
    parse_lines,
)

A = OrderStatus.AWAITING_PAYMENT
CONFIRMED = OrderStatus.PAYMENT_CONFIRMED


def always(_: OrderStatus) -> bool:
    return True


def vtex(status: OrderStatus) -> bool:
    # VTEX holds the reservation itself until payment is confirmed.
    return status not in (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_IN_ANALYSIS)


def change(action: StockAction, quantity: str, sku: str = "SKU-1") -> StockChange:
    return StockChange(action, sku, "main", Decimal(quantity))


def order(status: OrderStatus = A, reserves=always, **lines: str) -> tuple[Order, list]:
    items = [OrderLine(sku, "main", Decimal(q)) for sku, q in (lines or {"SKU-1": "5"}).items()]
    return Order.imported("shop", "1001", status, "Correios PAC", items, reserves)


def test_the_seeds_example_an_order_of_5_reserves_and_invoicing_consumes() -> None:
    placed, changes = order()
    assert changes == [change(StockAction.RESERVE, "5")]
    assert placed.holds_reservation
    assert placed.record_invoice({"number": "123"}) == [change(StockAction.CONSUME, "5")]
    assert placed.status is OrderStatus.INVOICED
    assert not placed.holds_reservation


def test_cancelling_or_deleting_releases_the_reservation() -> None:
    cancelled, _ = order()
    assert cancelled.cancel() == [change(StockAction.RELEASE, "5")]
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.cancel() == []
    deleted, _ = order()
    assert deleted.delete() == [change(StockAction.RELEASE, "5")]
    assert deleted.deleted


def test_vtex_reserves_only_once_payment_is_confirmed() -> None:
    placed, changes = order(A, vtex)
    assert changes == []
    assert placed.advance(OrderStatus.PAYMENT_IN_ANALYSIS, vtex) == []
    assert placed.advance(CONFIRMED, vtex) == [change(StockAction.RESERVE, "5")]
    assert placed.advance(OrderStatus.INVOICED, vtex) == [change(StockAction.CONSUME, "5")]


def test_late_or_out_of_order_statuses_never_move_an_order_back() -> None:
    placed, _ = order(CONFIRMED)
    version = placed.version
    assert placed.advance(A, always) == []
    assert placed.advance(CONFIRMED, always) == []
    assert placed.status is CONFIRMED
    assert placed.version == version


def test_statuses_after_cancellation_change_nothing() -> None:
    placed, _ = order()
    placed.cancel()
    assert placed.advance(CONFIRMED, always) == []
    assert placed.status is OrderStatus.CANCELLED
    assert not placed.holds_reservation


def test_posting_stock_then_invoicing_deducts_once() -> None:
    placed, _ = order()
    assert placed.post_stock() == [change(StockAction.CONSUME, "5")]
    assert placed.post_stock() == []
    assert placed.record_invoice({"number": "9"}) == []
    assert placed.status is OrderStatus.INVOICED


def test_invoicing_an_order_that_never_reserved_deducts_physical() -> None:
    placed, _ = order(A, vtex)
    assert placed.record_invoice({"number": "9"}) == [change(StockAction.DEDUCT, "5")]


def test_an_invoice_is_kept_once_and_another_number_is_refused() -> None:
    placed, _ = order()
    placed.record_invoice({"number": "9", "key": "k"})
    assert placed.record_invoice({"number": "9", "key": "k"}) == []
    with pytest.raises(OrderConflict):
        placed.record_invoice({"number": "10", "key": "k"})


def test_tracking_arriving_after_the_invoice_is_added_to_it_and_nothing_else() -> None:
    placed, _ = order()
    placed.record_invoice({"number": "9", "key": "k", "tracking_code": None})
    assert placed.record_invoice({"number": "9", "key": "k", "tracking_code": "BR1"}) == []
    assert placed.invoice == {
        "number": "9",
        "key": "k",
        "tracking_code": "BR1",
        "tracking_url": None,
    }
    assert isinstance(list(placed.collect_events())[-1], Order.TrackingUpdated)
    with pytest.raises(OrderConflict):  # tracking does not smuggle in another key
        placed.record_invoice({"number": "9", "key": "other", "tracking_code": "BR2"})


def test_an_order_whose_stock_left_cannot_be_cancelled_or_deleted() -> None:
    invoiced, _ = order()
    invoiced.record_invoice({"number": "9"})
    with pytest.raises(OrderConflict):
        invoiced.cancel()
    with pytest.raises(OrderConflict):
        invoiced.delete()
    posted, _ = order()
    posted.post_stock()
    with pytest.raises(OrderConflict):
        posted.cancel()


def test_editing_lines_moves_the_reservation_by_exactly_the_difference() -> None:
    placed, _ = order(**{"SKU-1": "5", "SKU-2": "2"})
    changes = placed.edit_lines(
        [OrderLine("SKU-1", "main", Decimal(3)), OrderLine("SKU-3", "main", Decimal(1))]
    )
    assert sorted(changes, key=lambda c: (c.action, c.sku)) == [
        change(StockAction.RELEASE, "2", "SKU-1"),
        change(StockAction.RELEASE, "2", "SKU-2"),
        change(StockAction.RESERVE, "1", "SKU-3"),
    ]
    assert placed.reserved == {("SKU-1", "main"): Decimal(3), ("SKU-3", "main"): Decimal(1)}
    assert placed.cancel() == [
        change(StockAction.RELEASE, "3", "SKU-1"),
        change(StockAction.RELEASE, "1", "SKU-3"),
    ]


def test_editing_an_unreserved_order_moves_no_stock() -> None:
    placed, _ = order(A, vtex)
    assert placed.edit_lines([OrderLine("SKU-1", "main", Decimal(7))]) == []
    assert placed.advance(CONFIRMED, vtex) == [change(StockAction.RESERVE, "7")]


def test_an_order_imported_as_invoiced_deducts_at_once() -> None:
    _, changes = order(OrderStatus.INVOICED)
    assert changes == [change(StockAction.DEDUCT, "5")]


@pytest.mark.parametrize(
    "items",
    [
        [],
        "SKU-1",
        [{"sku": "SKU-1"}],
        [{"sku": "SKU-1", "quantity": "0"}],
        [{"sku": "SKU-1", "quantity": "-1"}],
        [{"sku": "", "quantity": "1"}],
        [{"sku": "SKU-1", "quantity": "1"}, {"sku": "SKU-1", "quantity": "2"}],
    ],
)
def test_bad_items_are_refused(items: object) -> None:
    with pytest.raises(InvalidInput):
        parse_lines(items)


def test_lines_in_other_warehouses_are_separate() -> None:
    lines = parse_lines(
        [{"sku": "A", "quantity": 1}, {"sku": "A", "warehouse": "north", "quantity": "2.5"}]
    )
    assert [(x.sku, x.warehouse, x.quantity) for x in lines] == [
        ("A", "main", Decimal(1)),
        ("A", "north", Decimal("2.5")),
    ]


def test_an_orders_history_replays_to_the_same_state() -> None:
    placed, _ = order(**{"SKU-1": "5", "SKU-2": "1.5"})
    placed.edit_lines([OrderLine("SKU-1", "main", Decimal(4))])
    placed.post_stock()
    placed.record_invoice({"number": "9", "value": Decimal("10.50")})
    mapper = Application().mapper
    replayed = None
    for event in placed.collect_events():
        replayed = mapper.to_domain_event(mapper.to_stored_event(event)).mutate(replayed)
    assert replayed == placed


@pytest.mark.parametrize("value", ["0", "-10", "0.001", "99.995", "0.004"])
def test_an_invoice_value_is_more_than_zero_in_whole_cents(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_invoice_value(value)
    assert refused.value.context["field"] == "value"


@pytest.mark.parametrize(("value", "amount"), [("99.50", "99.50"), ("99.500", "99.5"), ("1", "1")])
def test_an_invoice_value_in_cents_is_taken_as_written(value: str, amount: str) -> None:
    assert parse_invoice_value(value) == Decimal(amount)
