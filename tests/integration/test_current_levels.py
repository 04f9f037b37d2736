"""A SKU's levels as the ledger holds them now, whatever the stock-levels view has read: the
view's rows only spare the replay of what it already applied."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from api.wiring import Container
from ledger import ids
from ledger.movements import MovementRequest
from ledger.orders import OrderLine, OrderStatus
from projections.current import current_levels, warehouses_of
from projections.stock_levels import LevelsRow

SHOP = {"type": "webhook", "import_from": "awaiting_payment", "carriers": {"PAC": "pac"}}


def record(container: Container, *rows: dict[str, Any]) -> None:
    container.app.record_movements(
        [MovementRequest.parse({"kind": "invoice", "sku": "SKU-1", **row}) for row in rows],
        recorded_by="t",
    )


def levels(rows: list[LevelsRow]) -> dict[str, tuple[Decimal, Decimal]]:
    return {r.warehouse: (r.physical, r.reserved) for r in rows}


def replayed(container: Container, warehouse: str) -> tuple[Decimal, Decimal]:
    stock = container.app.repository.get(ids.stock_id("SKU-1", warehouse))
    return stock.physical, stock.reserved


def test_writes_the_view_has_not_read_are_included(container: Container) -> None:
    record(container, {"movement_id": "a", "quantity": "10"})
    record(container, {"movement_id": "b", "quantity": "4", "warehouse": "north"})
    container.catch_up()  # the view has read these two, and nothing after them
    record(container, {"movement_id": "c", "quantity": "-3"})
    record(container, {"movement_id": "d", "quantity": "2", "warehouse": "south"})  # new warehouse
    container.orders.configure("shop", SHOP)
    container.orders.import_order(
        "shop",
        "o1",
        OrderStatus.PAYMENT_CONFIRMED,
        "PAC",
        [OrderLine("SKU-1", "north", Decimal(1))],
        "t",
    )

    view = levels(container.stock_levels.levels_of("SKU-1"))
    assert view == {"main": (10, 0), "north": (4, 0)}  # lagging, as views may
    now = levels(current_levels(container.app, container.stock_levels, "SKU-1"))
    assert now == {"main": (7, 0), "north": (4, 1), "south": (2, 0)}
    assert now == {w: replayed(container, w) for w in now}
    assert warehouses_of(container.app, container.stock_levels, "SKU-1") == [
        "main",
        "north",
        "south",
    ]


def test_a_view_that_has_read_everything_gives_the_same_answer(container: Container) -> None:
    for n in range(30):
        record(container, {"movement_id": f"m{n}", "quantity": str(n + 1), "warehouse": "main"})
    container.catch_up()
    now = levels(current_levels(container.app, container.stock_levels, "SKU-1"))
    assert now == {"main": (Decimal(sum(range(1, 31))), 0)}
    assert now == levels(container.stock_levels.levels_of("SKU-1"))


def test_a_sku_that_never_moved_has_no_levels(container: Container) -> None:
    record(container, {"movement_id": "a", "quantity": "1"})
    assert current_levels(container.app, container.stock_levels, "OTHER") == []
    assert warehouses_of(container.app, container.stock_levels, "OTHER") == []
