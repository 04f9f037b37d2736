"""The rules of the products view without a database: how names are folded for search, what a
SKU prefix spans, and what a page of product events leaves."""

from __future__ import annotations

from eventsourcing.utils import get_topic

from ledger.products import Product
from projections.products import (
    Dropped,
    Held,
    ProductFold,
    ProductsView,
    barcode_key,
    fold,
    prefix_end,
    replay,
)


def test_names_fold_to_lower_case_without_accents() -> None:
    assert fold("Café Torrado 500g") == "cafe torrado 500g"
    assert fold("CAFÉ") == fold("cafe") == fold("Cafe\u0301") == "cafe"
    assert fold("Pão de Queijo") == "pao de queijo"
    assert fold("Straße") == "strasse"
    assert fold("İzmir") == "izmir"
    assert fold("20 ℃") == "20 °c"  # a decomposition with a capital is folded too
    assert fold("ﬁno") == "fino"


def test_a_prefix_spans_exactly_the_strings_that_start_with_it() -> None:
    assert prefix_end("CAF") == "CAG"
    assert prefix_end("A\U0010ffff") == "B"
    assert prefix_end("\U0010ffff") is None
    assert prefix_end("\ud7ff") == "\ue000"  # surrogates are never stored: skipped
    candidates = ["CA", "CAF", "CAF-1", "CAF\U0010ffff", "CAFE", "CAG", "CAf", "caf", "CAE~"]
    end = prefix_end("CAF")
    assert end is not None
    assert [s for s in candidates if "CAF" <= s < end] == [
        s for s in candidates if s.startswith("CAF")
    ]


def test_a_query_is_a_barcode_only_when_it_could_be_one() -> None:
    assert barcode_key("4006381333931") == "04006381333931"
    assert barcode_key("04006381333931") == "04006381333931"
    assert barcode_key("4006381333932") is None  # wrong check digit
    assert barcode_key("BOX-7") == "BOX-7"  # an internal code
    assert barcode_key("..") is None


def test_the_view_follows_only_product_events() -> None:
    assert set(ProductsView.topics) == {
        get_topic(cls)
        for cls in (Product.Created, Product.Named, Product.BarcodeAdded, Product.BarcodeRemoved)
    }


def test_a_page_folds_to_the_last_state_of_each_product_and_barcode() -> None:
    a = Product("A", "first")
    a.add_barcode("K1", 1)
    a.rename("Açúcar")
    a.remove_barcode("K1")
    a.add_barcode("K2", 6)
    b = Product("B")
    b.add_barcode("K1", 2)
    folded = ProductFold()
    for position, event in enumerate([*a.collect_events(), *b.collect_events()], start=1):
        folded.apply(event, position)
    assert (folded.products[a.id].sku, folded.products[a.id].name) == ("A", "Açúcar")
    assert folded.products[a.id].position == 5
    assert folded.products[b.id].position == 7
    assert folded.barcodes == {"K1": Held(b.id, 2), "K2": Held(a.id, 6)}


def test_a_removal_whose_holder_the_page_does_not_know_drops_the_barcode_only_from_it() -> None:
    a = Product("A")
    a.add_barcode("K1", 1)
    a.remove_barcode("K1")
    _, added, removed = a.collect_events()
    alone = ProductFold()
    alone.apply(removed, 3)
    assert alone.barcodes == {"K1": Dropped(frozenset({a.id}))}
    both = ProductFold()
    both.apply(added, 2)
    both.apply(removed, 3)
    assert both.barcodes == {"K1": Dropped(None)}
    # A removal by a product that does not hold it changes nothing.
    b = Product("B")
    b.remove_barcode("K2")
    c = Product("C")
    c.add_barcode("K2", 1)
    other = ProductFold()
    [*_, c_added] = c.collect_events()
    [*_, b_removed] = b.collect_events()
    other.apply(c_added, 4)
    other.apply(b_removed, 5)
    assert other.barcodes == {"K2": Held(c.id, 1)}


def test_replay_gives_each_product_with_its_barcodes_by_sku() -> None:
    b = Product("B-SKU", "Bolo")
    b.add_barcode("K2", 1)
    b.add_barcode("K1", 3)
    b.rename(None)
    a = Product("A-SKU")
    a.rename("Chá")
    events = [*b.collect_events(), *a.collect_events()]
    rows = list(replay((e, n) for n, e in enumerate(events, start=1)))
    assert [(r["sku"], r["name"], r["name_key"], r["barcodes"], r["position"]) for r in rows] == [
        ("A-SKU", "Chá", "cha", [], 6),
        ("B-SKU", None, None, [("K1", 3), ("K2", 1)], 4),
    ]
