"""The order desk against real SQLite and PostgreSQL: orders and their stock in one save."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest

from api.wiring import Container
from ledger.errors import InvalidInput, NotFound
from ledger.movements import MovementRequest
from ledger.ordering import OrderDesk
from ledger.orders import OrderConflict, OrderLine, OrderStatus


def desk_for(container: Container) -> OrderDesk:
    desk = OrderDesk(container.app)
    for name, kind in (("shop", "webhook"), ("vtex", "vtex")):
        desk.configure(
            name, {"type": kind, "import_from": "awaiting_payment", "carriers": {"PAC": "pac"}}
        )
    return desk


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
    desk = desk_for(container)
    receive(container, "SKU-1", "10", "nf-1")
    desk.import_order(
        "shop", "1", OrderStatus.PAYMENT_CONFIRMED, "PAC", lines(**{"SKU-1": "5"}), "t"
    )
    assert levels(container) == (10, 5, 5)
    desk.invoice("shop", "1", {"number": "123"}, "t")
    assert levels(container) == (5, 0, 5)


@pytest.mark.parametrize("end", ["cancel", "delete"])
def test_an_order_cancelled_or_deleted_gives_its_stock_back(container: Container, end: str) -> None:
    desk = desk_for(container)
    receive(container, "SKU-1", "10", "nf-1")
    desk.import_order(
        "shop", "1", OrderStatus.AWAITING_PAYMENT, "PAC", lines(**{"SKU-1": "5"}), "t"
    )
    assert levels(container) == (10, 5, 5)
    getattr(desk, end)("shop", "1", "t")
    assert levels(container) == (10, 0, 10)


def test_vtex_reserves_at_payment_and_consumes_at_invoice(container: Container) -> None:
    desk = desk_for(container)
    receive(container, "SKU-1", "10", "nf-1")
    desk.import_order(
        "vtex", "9-01", OrderStatus.AWAITING_PAYMENT, "PAC", lines(**{"SKU-1": "2"}), "t"
    )
    assert levels(container) == (10, 0, 10)
    desk.advance("vtex", "9-01", OrderStatus.PAYMENT_CONFIRMED, "t")
    assert levels(container) == (10, 2, 8)
    desk.advance("vtex", "9-01", OrderStatus.INVOICED, "t")
    assert levels(container) == (8, 0, 8)


def test_overselling_is_recorded_and_visible(container: Container) -> None:
    desk = desk_for(container)
    receive(container, "SKU-1", "3", "nf-1")
    for n in ("1", "2"):
        desk.import_order(
            "shop", n, OrderStatus.PAYMENT_CONFIRMED, "PAC", lines(**{"SKU-1": "2"}), "t"
        )
    assert levels(container) == (3, 4, -1)


def test_post_stock_then_invoice_deducts_once_and_edits_move_the_difference(
    container: Container,
) -> None:
    desk = desk_for(container)
    receive(container, "SKU-1", "10", "nf-1")
    desk.import_order(
        "shop", "1", OrderStatus.PAYMENT_CONFIRMED, "PAC", lines(**{"SKU-1": "5"}), "t"
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
    desk_for(containers[0])
    receive(containers[0], "SKU-1", "10", "nf-1")
    barrier = threading.Barrier(20)
    created: list[bool] = []

    def send(n: int) -> None:
        desk = OrderDesk(containers[n % 4].app)
        barrier.wait()
        outcome = desk.import_order(
            "shop", "dup", OrderStatus.PAYMENT_CONFIRMED, "PAC", lines(**{"SKU-1": "5"}), "t"
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
    desk_for(containers[0])
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
            "PAC",
            lines(**{f"S{n % 5}": "1.5"}),
            "t",
        )

    threads = [threading.Thread(target=send, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(5):
        assert levels(containers[0], f"S{n}") == (100, 15, 85)


def test_an_unmapped_carrier_holds_the_order_until_the_mapping_exists(
    container: Container,
) -> None:
    desk = desk_for(container)
    receive(container, "SKU-1", "10", "nf-1")
    outcome = desk.import_order(
        "shop", "h1", OrderStatus.PAYMENT_CONFIRMED, "Jadlog", lines(**{"SKU-1": "4"}), "t"
    )
    assert outcome.order is not None
    assert outcome.order.blocked_reason == "carrier 'Jadlog' has no mapping"
    assert levels(container) == (10, 0, 10)
    assert [o.order_id for o in desk.held("shop")] == ["h1"]
    desk.configure(
        "shop",
        {
            "type": "webhook",
            "import_from": "awaiting_payment",
            "carriers": {"PAC": "pac", "Jadlog": "jad"},
        },
    )
    assert levels(container) == (10, 4, 6)
    assert desk.held("shop") == []


def test_import_from_payment_confirmed_acknowledges_earlier_orders(container: Container) -> None:
    desk = desk_for(container)
    desk.configure(
        "late", {"type": "webhook", "import_from": "payment_confirmed", "carriers": {"PAC": "p"}}
    )
    receive(container, "SKU-1", "10", "nf-1")
    early = desk.import_order(
        "late", "1", OrderStatus.AWAITING_PAYMENT, "PAC", lines(**{"SKU-1": "2"}), "t"
    )
    assert early.order is None
    assert early.reason is not None
    assert levels(container) == (10, 0, 10)
    later = desk.import_order(
        "late", "1", OrderStatus.PAYMENT_CONFIRMED, "PAC", lines(**{"SKU-1": "2"}), "t"
    )
    assert later.created
    assert levels(container) == (10, 2, 8)


def test_an_unknown_platform_is_refused(container: Container) -> None:
    desk = OrderDesk(container.app)
    with pytest.raises(InvalidInput):
        desk.import_order(
            "nowhere", "1", OrderStatus.PAYMENT_CONFIRMED, "PAC", lines(**{"A": "1"}), "t"
        )


def test_a_mapping_that_lands_while_an_order_is_imported_still_releases_it(
    container: Container,
) -> None:
    """The import read the platform before the carrier was mapped; the configure that maps it
    scanned for held orders before the import stored its order. The order must not stay held."""
    desk = desk_for(container)
    receive(container, "SKU-1", "10", "nf-1")
    stale = desk.platform("shop")
    racing = {"type": "webhook", "import_from": "awaiting_payment", "carriers": {"Jadlog": "j"}}
    reads = iter([True])

    def platform_read_before_the_mapping(name: str) -> object:
        if next(reads, False):
            desk.configure(name, racing)  # lands now, with no held order to release yet
            return stale
        return OrderDesk.platform(desk, name)

    desk.platform = platform_read_before_the_mapping  # type: ignore[method-assign]
    outcome = desk.import_order(
        "shop", "r1", OrderStatus.PAYMENT_CONFIRMED, "Jadlog", lines(**{"SKU-1": "4"}), "t"
    )
    assert outcome.order is not None
    assert outcome.order.blocked_reason is None
    assert levels(container) == (10, 4, 6)
    assert desk.held("shop") == []


def test_a_cancelled_held_order_is_not_listed_as_held(container: Container) -> None:
    desk = desk_for(container)
    desk.import_order(
        "shop", "h2", OrderStatus.PAYMENT_CONFIRMED, "Jadlog", lines(**{"SKU-1": "1"}), "t"
    )
    assert [o.order_id for o in desk.held("shop")] == ["h2"]
    desk.cancel("shop", "h2", "t")
    assert desk.held("shop") == []
