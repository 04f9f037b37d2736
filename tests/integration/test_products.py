"""The products view against real SQLite and PostgreSQL: found by name, SKU prefix or barcode,
a page at a time; rebuilt and verified like every view."""

from __future__ import annotations

import pytest

from api.wiring import Container
from ledger.movements import MovementRequest
from projections.catalog import VIEWS
from projections.products import ProductRow
from projections.rebuild import rebuild
from projections.verify import verify

GTIN_13 = "4006381333931"
GTIN_14 = "04006381333931"  # the same barcode with its padding zero
CASE_GTIN_14 = "10614141000415"


def name(container: Container, sku: str, product_name: str | None) -> None:
    container.catalog.name_product(sku, {"name": product_name})


def give(container: Container, code: str, sku: str, units: int = 1) -> int | None:
    _, _, position = container.catalog.put_barcode(code, {"sku": sku, "units": units})
    return position


def search(
    container: Container, q: str | None, *, limit: int = 100, after_sku: str | None = None
) -> list[str]:
    container.catch_up()
    rows = container.products.search_products(q, limit=limit, after_sku=after_sku)
    return [row.sku for row in rows]


def found(container: Container, q: str) -> list[ProductRow]:
    container.catch_up()
    return container.products.search_products(q, limit=100)


def test_a_product_is_found_by_its_name_its_sku_prefix_and_its_barcode(
    container: Container,
) -> None:
    name(container, "CAF-500", "Café Torrado 500g")
    name(container, "CAF-250", "Café em grãos 250g")
    name(container, "CHA-1", "Chá mate")
    give(container, GTIN_13, "CAF-500")
    last = give(container, CASE_GTIN_14, "CAF-500", units=12)

    assert search(container, "cafe") == ["CAF-250", "CAF-500"]  # accents and case ignored
    assert search(container, "TORRADO") == ["CAF-500"]
    assert search(container, "café torrado") == ["CAF-500"]  # every word, anywhere
    assert search(container, "torrado 250g") == []
    assert search(container, "CAF-") == ["CAF-250", "CAF-500"]
    assert search(container, "CAF-5") == ["CAF-500"]
    assert search(container, "caf-5") == []  # SKUs are codes: case counts
    assert search(container, GTIN_13) == ["CAF-500"]
    assert search(container, GTIN_14) == ["CAF-500"]
    assert search(container, "4006381333932") == []  # a wrong check digit is no barcode
    [row] = found(container, "torrado")
    assert (row.name, row.barcodes) == (
        "Café Torrado 500g",
        [(GTIN_14, 1), (CASE_GTIN_14, 12)],
    )
    assert row.position == last  # the product's last change


def test_a_rename_and_a_removed_barcode_change_what_finds_the_product(
    container: Container,
) -> None:
    name(container, "CAF-500", "Café Torrado 500g")
    give(container, GTIN_13, "CAF-500")
    assert search(container, "torrado") == ["CAF-500"]

    name(container, "CAF-500", "Café Extraforte 500g")
    assert search(container, "torrado") == []
    assert search(container, "extraforte") == ["CAF-500"]
    assert search(container, GTIN_13) == ["CAF-500"]

    container.catalog.delete_barcode(GTIN_13)
    assert search(container, GTIN_13) == []
    assert search(container, GTIN_14) == []
    [row] = found(container, "CAF-500")
    assert (row.name, row.barcodes) == ("Café Extraforte 500g", [])

    # The barcode freed, another SKU takes it.
    give(container, GTIN_14, "CHA-1")
    assert search(container, GTIN_13) == ["CHA-1"]
    name(container, "CAF-500", None)  # a name removed: found by SKU only
    assert search(container, "extraforte") == []
    [row] = found(container, "CAF-500")
    assert row.name is None


def test_a_product_without_a_name_is_found_by_its_barcode(container: Container) -> None:
    give(container, "BOX-7", "UNNAMED", units=6)  # an internal code makes the product
    assert search(container, "BOX-7") == ["UNNAMED"]
    assert search(container, "UNN") == ["UNNAMED"]
    [row] = found(container, "BOX-7")
    assert (row.name, row.barcodes) == (None, [("BOX-7", 6)])


def test_percent_and_underscore_in_the_query_are_no_wildcards(container: Container) -> None:
    name(container, "X_1", "Blend 100% arábica")
    name(container, "XA1", "Blend 100 gramas")
    name(container, "Y%2", "Café")
    assert search(container, "X_") == ["X_1"]
    assert search(container, "X%") == []
    assert search(container, "Y%") == ["Y%2"]
    assert search(container, "%") == ["X_1"]  # the one name that holds a "%"
    assert search(container, "_") == []
    assert search(container, "100%") == ["X_1"]
    assert search(container, "c_fe") == []
    assert search(container, "bl%nd") == []


def test_a_sku_prefix_is_a_prefix_in_code_point_order_on_both_databases(
    container: Container,
) -> None:
    skus = ["Ab", "a", "ab", "abc", "abd", "ab-1", "b", "ab\U0010ffff", "Ω-1", "Ω", "ΩZ"]
    for sku in skus:
        name(container, sku, "x")
    assert search(container, "ab") == ["ab", "ab-1", "abc", "abd", "ab\U0010ffff"]
    assert search(container, "Ω") == ["Ω", "Ω-1", "ΩZ"]
    assert search(container, None) == sorted(skus)  # code point order on either database
    assert search(container, "   ") == sorted(skus)


def test_pages_follow_sku_order_across_every_way_of_matching(container: Container) -> None:
    for n in range(7):
        name(container, f"P{n}", "Farinha" if n % 2 else "Açúcar")
    name(container, "FARINHA-X", "Outra coisa")  # found by its SKU prefix only
    give(container, "FARINHA", "P2")  # an internal code: found by the barcode only
    expected = ["FARINHA-X", "P1", "P2", "P3", "P5"]
    assert search(container, "farinha") == ["P1", "P3", "P5"]
    assert search(container, "FARINHA") == expected
    pages, after = [], None
    while True:
        page = search(container, "FARINHA", limit=2, after_sku=after)
        pages.append(page)
        if len(page) < 2:
            break
        after = page[-1]
    assert pages == [["FARINHA-X", "P1"], ["P2", "P3"], ["P5"]]
    assert search(container, None, limit=3, after_sku="P1") == ["P2", "P3", "P4"]


def test_the_view_reads_every_event_but_applies_only_product_events(
    container: Container,
) -> None:
    container.app.record_movements(
        [
            MovementRequest.parse(
                {"movement_id": "m1", "kind": "manual", "sku": "S1", "quantity": "1"}
            )
        ],
        recorded_by="t",
    )
    name(container, "S1", "Sal")
    container.app.record_movements(
        [
            MovementRequest.parse(
                {"movement_id": "m2", "kind": "manual", "sku": "S1", "quantity": "1"}
            )
        ],
        recorded_by="t",
    )
    container.catch_up()
    # Its position is the head (lag 0), though the last events are none of its business.
    assert container.products.position() == container.app.recorder.max_notification_id()
    assert search(container, "sal") == ["S1"]
    assert all(
        topic.startswith("ledger.products:Product.")
        for topic in VIEWS["products"].projection.topics
    )


def catalog_history(container: Container) -> None:
    for n in range(30):
        name(container, f"S{n}", f"Produto número {n}")
    for n in range(0, 30, 3):
        give(container, str(10_000 + n), f"S{n}", units=n + 1)
    for n in range(0, 30, 6):
        name(container, f"S{n}", f"Renomeado {n}")
        container.catalog.delete_barcode(str(10_000 + n))
    give(container, "10000", "S1")  # freed above, taken by another SKU


def test_a_rebuilt_products_view_equals_the_live_one_and_verify_agrees(
    container: Container,
) -> None:
    catalog_history(container)
    container.catch_up()
    view = container.products
    with view.reading() as c:
        live = list(view.rows(c))
    assert len(live) == 30
    assert verify(container.app, view, lambda d: None).count == 0
    [result] = rebuild(container.app, [VIEWS["products"]])
    assert result.position == container.app.recorder.max_notification_id()
    with view.reading() as c:
        assert list(view.rows(c)) == live
    verdict = verify(container.app, view, lambda d: None)
    assert (verdict.count, verdict.rows) == (0, 30)
    # The swapped-in tables serve searches and keep being followed.
    name(container, "S3", "Café novo")
    assert search(container, "cafe") == ["S3"]
    assert search(container, "10003") == ["S3"]


@pytest.mark.parametrize("table", ["products", "product_barcodes"])
def test_verify_catches_a_product_or_barcode_row_changed_behind_its_back(
    container: Container, table: str
) -> None:
    catalog_history(container)
    container.catch_up()
    view = container.products
    with view.writing() as c:
        if table == "products":
            c.execute(view.q("UPDATE {t} SET name_key = 'x' WHERE sku = ?"), ("S4",))
        else:
            c.execute(view.q("UPDATE {product_barcodes} SET units = 99 WHERE key = ?"), ("10003",))
    found_differences: list[str] = []
    verdict = verify(container.app, view, lambda d: found_differences.append(str(d)))
    assert verdict.count == 1
    assert ("S4" if table == "products" else "S3") in found_differences[0]
