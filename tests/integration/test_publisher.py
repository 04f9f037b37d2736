"""The publisher view: what each platform should show, against real SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from api.wiring import Container
from ledger.movements import MovementRequest
from ledger.orders import OrderLine, OrderStatus
from projections.catalog import VIEWS
from projections.publisher import PublisherView
from projections.rebuild import rebuild
from projections.verify import verify


def platform(container: Container, name: str, warehouses: dict[str, str]) -> None:
    container.orders.configure(
        name,
        {
            "type": "webhook",
            "import_from": "awaiting_payment",
            "carriers": {"PAC": "pac"},
            "warehouses": warehouses,
        },
    )


def move(container: Container, movement_id: str, quantity: str, **extra: str) -> int:
    [result] = container.app.record_movements(
        [
            MovementRequest.parse(
                {
                    "movement_id": movement_id,
                    "sku": "SKU-1",
                    "kind": "invoice",
                    "quantity": quantity,
                    **extra,
                }
            )
        ],
        recorded_by="t",
    )
    return result.position or 0


def shown(container: Container, name: str) -> dict[tuple[str, str], tuple[str, Decimal]]:
    container.catch_up()
    view: PublisherView = container.views["publisher"]  # type: ignore[assignment]
    return {
        (r["sku"], r["warehouse"]): (r["platform_warehouse"], r["quantity"])
        for r in view.desired(name)
    }


def rows(container: Container) -> list[dict[str, Any]]:
    view = container.views["publisher"]
    with view.reading() as c:
        return list(view.rows(c))


def test_available_never_below_zero_and_only_changes_are_rewritten(container: Container) -> None:
    platform(container, "shop", {"main": "1_1"})
    received = move(container, "nf-1", "10")
    assert shown(container, "shop") == {("SKU-1", "main"): ("1_1", 10)}
    [row] = container.views["publisher"].desired("shop")  # type: ignore[attr-defined]
    assert row["position"] == received
    line = [OrderLine("SKU-1", "main", Decimal(12))]
    container.orders.import_order("shop", "o1", OrderStatus.PAYMENT_CONFIRMED, "PAC", line, "t")
    assert shown(container, "shop") == {("SKU-1", "main"): ("1_1", 0)}  # available is -2
    [oversold] = container.views["publisher"].desired("shop")  # type: ignore[attr-defined]
    move(container, "scan-1", "-1", kind="scan")  # -3: the platform still shows 0
    [still] = container.views["publisher"].desired("shop")  # type: ignore[attr-defined]
    assert still["position"] == oversold["position"]
    container.orders.cancel("shop", "o1", "t")
    assert shown(container, "shop") == {("SKU-1", "main"): ("1_1", 9)}


def test_mapping_a_warehouse_later_publishes_what_it_holds_and_unmapping_drops_it(
    container: Container,
) -> None:
    move(container, "a", "4")
    move(container, "b", "7", warehouse="north")
    move(container, "c", "2", sku="SKU-2", warehouse="north")
    platform(container, "shop", {"main": "w-main"})
    platform(container, "other", {"north": "n"})
    assert shown(container, "shop") == {("SKU-1", "main"): ("w-main", 4)}
    assert shown(container, "other") == {("SKU-1", "north"): ("n", 7), ("SKU-2", "north"): ("n", 2)}
    platform(container, "shop", {"north": "w-north"})
    assert shown(container, "shop") == {
        ("SKU-1", "north"): ("w-north", 7),
        ("SKU-2", "north"): ("w-north", 2),
    }
    platform(container, "shop", {"north": "renamed"})
    assert {v[0] for v in shown(container, "shop").values()} == {"renamed"}
    move(container, "d", "1", warehouse="north")
    assert shown(container, "shop")[("SKU-1", "north")] == ("renamed", 8)
    assert shown(container, "other")[("SKU-1", "north")] == ("n", 8)
    for view in (container.views["publisher"],):
        assert verify(container.app, view, lambda d: None).count == 0
    live = rows(container)
    rebuild(container.app, [VIEWS["publisher"]])
    assert rows(container) == live


def test_a_new_sku_in_a_mapped_warehouse_is_shown_as_zero_until_it_has_stock(
    container: Container,
) -> None:
    platform(container, "shop", {"main": "1_1"})
    line = [OrderLine("NEW", "main", Decimal(1))]
    container.orders.import_order("shop", "o1", OrderStatus.PAYMENT_CONFIRMED, "PAC", line, "t")
    assert shown(container, "shop") == {("NEW", "main"): ("1_1", 0)}
    assert verify(container.app, container.views["publisher"], lambda d: None).count == 0


def test_desired_rows_page_through_many_written_at_one_position(container: Container) -> None:
    for n in range(5):
        move(container, f"m{n}", "1", sku=f"S{n}")
    platform(container, "shop", {"main": "1_1"})  # five rows, one position
    container.catch_up()
    view: PublisherView = container.views["publisher"]  # type: ignore[assignment]
    seen, after = [], None
    while page := view.desired("shop", after=after, limit=2):
        seen += [r["sku"] for r in page]
        last = page[-1]
        after = (last["position"], last["sku"], last["warehouse"])
    assert seen == ["S0", "S1", "S2", "S3", "S4"]


def test_a_mapping_entry_no_table_can_store_does_not_stop_the_view(
    container: Container,
) -> None:
    # PUT /platforms refuses these now; an older event may still hold one. The entry is left
    # out, and every other platform (and the rest of the same mapping) keeps its stock.
    from ledger.platforms import Platform

    legacy = Platform(
        name="old",
        settings={
            "type": "webhook",
            "import_from": "awaiting_payment",
            "warehouses": {"main": "w\x00", "..": "w2", "north": "n1"},
        },
    )
    container.app.store_events(list(legacy.collect_events()))
    platform(container, "shop", {"main": "m1"})
    move(container, "a", "5")
    move(container, "b", "2", warehouse="north")
    assert shown(container, "shop") == {("SKU-1", "main"): ("m1", Decimal(5))}
    assert shown(container, "old") == {("SKU-1", "north"): ("n1", Decimal(2))}
    assert all(not runner.health().failing for runner in container.runners)
    assert verify(container.app, container.views["publisher"], lambda _: None).count == 0
