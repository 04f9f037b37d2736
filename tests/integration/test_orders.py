"""The order desk against real SQLite and PostgreSQL: orders and their stock in one save."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest

from api.wiring import Container
from ledger.errors import NotFound
from ledger.movements import MovementRequest
from ledger.ordering import OrderDesk, reserves_by_default
from ledger.orders import OrderConflict, OrderLine, OrderStatus

ALWAYS = reserves_by_default("webhook")
VTEX = reserves_by_default("vtex")


def receive(container: Container, sku: str, quantity: str, movement_id: str) -> None:
    container.app.record_movements(
        [
            MovementRequest.parse(
                {"movement_id": movement_id, "sku": sku, "kind": "invoice", "quantity": quantity}
            )
        ],
        recorded_by="t",
    )


def levels(container: Container, sku: str = "SKU-1") -> tuple[Decimal, Decimal, Decimal]:
    stock = container.app.stock_levels(sku, "main")
    assert stock is not None
    return stock.physical, stock.reserved, stock.available


def lines(**quantities: str) -> list[OrderLine]:
    return [OrderLine(sku, "main", Decimal(q)) for sku, q in quantities.items()]


def test_the_seeds_worked_example(container: Container) -> None:
    desk = OrderDesk(container.app)
    receive(container, "SKU-1", "10", "nf-1")
    desk.import_order(
        "shop", "1", OrderStatus.PAYMENT_CONFIRMED, "PAC", lines(**{"SKU-1": "5"}), ALWAYS, "t"
    )
    assert levels(container) == (10, 5, 5)
    desk.invoice("shop", "1", {"number": "123"}, "t")
    assert levels(container) == (5, 0, 5)


@pytest.mark.parametrize("end", ["cancel", "delete"])
def test_an_order_cancelled_or_deleted_gives_its_stock_back(container: Container, end: str) -> None:
    desk = OrderDesk(container.app)
    receive(container, "SKU-1", "10", "nf-1")
    desk.import_order(
        "shop", "1", OrderStatus.AWAITING_PAYMENT, None, lines(**{"SKU-1": "5"}), ALWAYS, "t"
    )
    assert levels(container) == (10, 5, 5)
    getattr(desk, end)("shop", "1", "t")
    assert levels(container) == (10, 0, 10)


def test_vtex_reserves_at_payment_and_consumes_at_invoice(container: Container) -> None:
    desk = OrderDesk(container.app)
    receive(container, "SKU-1", "10", "nf-1")
    desk.import_order(
        "vtex", "9-01", OrderStatus.AWAITING_PAYMENT, None, lines(**{"SKU-1": "2"}), VTEX, "t"
    )
    assert levels(container) == (10, 0, 10)
    desk.advance("vtex", "9-01", OrderStatus.PAYMENT_CONFIRMED, VTEX, "t")
    assert levels(container) == (10, 2, 8)
    desk.advance("vtex", "9-01", OrderStatus.INVOICED, VTEX, "t")
    assert levels(container) == (8, 0, 8)


def test_overselling_is_recorded_and_visible(container: Container) -> None:
    desk = OrderDesk(container.app)
    receive(container, "SKU-1", "3", "nf-1")
    for n in ("1", "2"):
        desk.import_order(
            "shop", n, OrderStatus.PAYMENT_CONFIRMED, None, lines(**{"SKU-1": "2"}), ALWAYS, "t"
        )
    assert levels(container) == (3, 4, -1)


def test_post_stock_then_invoice_deducts_once_and_edits_move_the_difference(
    container: Container,
) -> None:
    desk = OrderDesk(container.app)
    receive(container, "SKU-1", "10", "nf-1")
    desk.import_order(
        "shop", "1", OrderStatus.PAYMENT_CONFIRMED, None, lines(**{"SKU-1": "5"}), ALWAYS, "t"
    )
    desk.edit("shop", "1", lines(**{"SKU-1": "3"}), "t")
    assert levels(container) == (10, 3, 7)
    desk.post_stock("shop", "1", "t")
    assert levels(container) == (7, 0, 7)
    desk.invoice("shop", "1", {"number": "1"}, "t")
    assert levels(container) == (7, 0, 7)
    with pytest.raises(OrderConflict):
        desk.cancel("shop", "1", "t")
    with pytest.raises(NotFound):
        desk.cancel("shop", "nope", "t")


def test_twenty_copies_of_one_order_from_several_processes_reserve_once(
    make_container: Callable[..., Container],
) -> None:
    containers = [make_container() for _ in range(4)]
    receive(containers[0], "SKU-1", "10", "nf-1")
    barrier = threading.Barrier(20)
    created: list[bool] = []

    def send(n: int) -> None:
        desk = OrderDesk(containers[n % 4].app)
        barrier.wait()
        outcome = desk.import_order(
            "shop", "dup", OrderStatus.PAYMENT_CONFIRMED, None, lines(**{"SKU-1": "5"}), ALWAYS, "t"
        )
        created.append(outcome.created)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(created) == [False] * 19 + [True]
    assert levels(containers[0]) == (10, 5, 5)


def test_fifty_orders_at_once_over_five_skus_reserve_the_exact_sum(
    make_container: Callable[..., Container],
) -> None:
    containers = [make_container() for _ in range(2)]
    for n in range(5):
        receive(containers[0], f"S{n}", "100", f"nf-{n}")
    barrier = threading.Barrier(50)

    def send(n: int) -> None:
        desk = OrderDesk(containers[n % 2].app)
        barrier.wait()
        desk.import_order(
            "shop",
            f"o{n}",
            OrderStatus.PAYMENT_CONFIRMED,
            None,
            lines(**{f"S{n % 5}": "1.5"}),
            ALWAYS,
            "t",
        )

    threads = [threading.Thread(target=send, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(5):
        assert levels(containers[0], f"S{n}") == (100, 15, 85)
