"""VTEX orders in the ledger's terms, and our invoices checked against what VTEX accepts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.vtex_emulator.official import OfficialSchemas
from adapters.vtex_orders import (
    IGNORED_STATES,
    VtexOrder,
    invoice_payload,
    ledger_status,
    order_from_vtex,
    tracking_payload,
    vtex_quantity,
)
from ledger.movements import parse_moment
from ledger.orders import OrderStatus, parse_lines
from tests.unit.test_vtex_client import vtex_request
from tests.vtex_contract import request_problems, require_official

AWAITING = OrderStatus.AWAITING_PAYMENT
ANALYSIS = OrderStatus.PAYMENT_IN_ANALYSIS
CONFIRMED = OrderStatus.PAYMENT_CONFIRMED
INVOICE_PATH = "/api/oms/pvt/orders/1172452900788-01/invoice"
TRACKING_PATH = "/api/oms/pvt/orders/1172452900788-01/invoice/NF-1"


@pytest.fixture(scope="module")
def schemas() -> OfficialSchemas:
    return require_official()


def spec_file(name: str) -> Path:
    return require_official().directory / name


def check_invoice(body: dict[str, Any], schemas: OfficialSchemas | None = None) -> None:
    """The body passes the own description (and VTEX's official schema, given ``schemas``);
    it must also be JSON as it stands, as httpx will encode it."""
    json.dumps(body)
    assert request_problems(vtex_request("POST", INVOICE_PATH, body), schemas) == []


def check_tracking(body: dict[str, Any], schemas: OfficialSchemas | None = None) -> None:
    json.dumps(body)
    assert request_problems(vtex_request("PATCH", TRACKING_PATH, body), schemas) == []


# -- states -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("order-created", AWAITING),
        ("order-completed", AWAITING),
        ("on-order-completed", AWAITING),
        ("waiting-for-sellers-confirmation", AWAITING),
        ("payment-pending", AWAITING),
        ("approve-payment", ANALYSIS),
        ("payment-approved", CONFIRMED),
        ("waiting-ffmt-authorization", CONFIRMED),
        ("authorize-fulfillment", CONFIRMED),
        ("window-to-cancel", CONFIRMED),
        ("ready-for-handling", CONFIRMED),
        ("start-handling", CONFIRMED),
        ("handling", CONFIRMED),
        ("invoiced", OrderStatus.INVOICED),
        ("canceled", OrderStatus.CANCELLED),
        ("replaced", OrderStatus.CANCELLED),
        ("invoice", None),
        ("cancellation-requested", None),
        ("request-cancel", None),
        ("canceling", None),
        ("a-state-vtex-invents-tomorrow", None),
        ("", None),
    ],
)
def test_vtex_states_map_to_ours(state: str, status: OrderStatus | None) -> None:
    assert ledger_status(state) is status


def test_states_are_read_whatever_their_case() -> None:
    assert ledger_status(" Payment-Approved ") is CONFIRMED


def test_every_state_vtex_documents_was_decided() -> None:
    """The feed's state list in the spec: each one is mapped or deliberately ignored, so a new
    spec with new states shows up here."""
    text = spec_file("orders-api.json").read_text(encoding="utf-8")
    listed = re.search(r"\*\*Status available to filter\*\*(.*?)canceled\.", text, re.S)
    assert listed is not None
    states = set(re.findall(r"- ([a-z]+(?:-[a-z]+)*)", listed.group(1))) | {"canceled"}
    assert len(states) > 25
    undecided = {s for s in states if ledger_status(s) is None and s not in IGNORED_STATES}
    assert undecided == set()


# -- orders in ----------------------------------------------------------------------------------


def vtex_order(items: list[dict[str, Any]], logistics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "orderId": "1172452900788-01",
        "status": "ready-for-handling",
        "value": 5980,
        "items": items,
        "shippingData": {"logisticsInfo": logistics},
        "paymentData": {"transactions": [{"transactionId": "T1", "payments": []}]},
    }


def item(sku: str, quantity: int, price: int = 990) -> dict[str, Any]:
    return {"id": sku, "quantity": quantity, "price": price + 10, "sellingPrice": price}


def shipped(index: int, *warehouses: str, company: str = "Correios") -> dict[str, Any]:
    return {
        "itemIndex": index,
        "selectedSla": "Normal",
        "deliveryCompany": company,
        "deliveryIds": [{"warehouseId": w, "courierName": company} for w in warehouses],
    }


SETTINGS = {
    "warehouses": {"main": "1fabf84", "cd-sp": "cd_sao_paulo"},
    "skus": {"SHIRT-M": "18", "CAP": "31"},
}


def test_skus_and_warehouses_are_ours() -> None:
    order = vtex_order(
        [item("18", 2), item("31", 1)],
        [shipped(0, "cd_sao_paulo"), shipped(1, "1fabf84")],
    )
    mapped = order_from_vtex(order, SETTINGS)
    assert mapped == VtexOrder(
        order_id="1172452900788-01",
        status=CONFIRMED,
        vtex_state="ready-for-handling",
        carrier="Correios",
        items=[
            {"sku": "SHIRT-M", "warehouse": "cd-sp", "quantity": "2"},
            {"sku": "CAP", "warehouse": "main", "quantity": "1"},
        ],
    )
    assert [line.quantity for line in parse_lines(mapped.items)] == [2, 1]


def test_logistics_are_matched_by_item_index_not_position() -> None:
    order = vtex_order(
        [item("18", 2), item("31", 1)],
        [shipped(1, "1fabf84"), shipped(0, "cd_sao_paulo")],
    )
    assert order_from_vtex(order, SETTINGS).items == [
        {"sku": "SHIRT-M", "warehouse": "cd-sp", "quantity": "2"},
        {"sku": "CAP", "warehouse": "main", "quantity": "1"},
    ]


def test_without_a_sku_map_vtex_ids_are_our_skus() -> None:
    settings = {"warehouses": {"main": "1fabf84"}}
    order = vtex_order([item("18", 1)], [shipped(0, "1fabf84")])
    assert order_from_vtex(order, settings).items == [
        {"sku": "18", "warehouse": "main", "quantity": "1"}
    ]
    unmapped = vtex_order([item("99", 1)], [shipped(0, "1fabf84")])
    assert order_from_vtex(unmapped, SETTINGS).items[0]["sku"] == "99"


@pytest.mark.parametrize(
    "logistics",
    [[], [shipped(0)], [shipped(0, "unknown_wh")]],
    ids=["no logistics", "no delivery ids", "unmapped warehouse"],
)
def test_a_single_mapped_warehouse_takes_what_vtex_does_not_say(
    logistics: list[dict[str, Any]],
) -> None:
    order = vtex_order([item("18", 1)], logistics)
    single = {"warehouses": {"cd-sp": "cd_sao_paulo"}}
    assert order_from_vtex(order, single).items[0]["warehouse"] == "cd-sp"
    assert order_from_vtex(order, SETTINGS).items[0]["warehouse"] == "main"
    several = {"warehouses": {"cd-sp": "a", "cd-rj": "b"}}
    assert order_from_vtex(order, several).items[0]["warehouse"] == "main"


def test_duplicate_lines_are_summed() -> None:
    # A gift and a paid unit of the same SKU come as two VTEX items.
    order = vtex_order(
        [item("18", 2), item("18", 1, price=0), item("31", 1)],
        [shipped(0, "1fabf84"), shipped(1, "1fabf84"), shipped(2, "1fabf84")],
    )
    items = order_from_vtex(order, SETTINGS).items
    assert items == [
        {"sku": "SHIRT-M", "warehouse": "main", "quantity": "3"},
        {"sku": "CAP", "warehouse": "main", "quantity": "1"},
    ]
    assert len(parse_lines(items)) == 2


def test_an_item_split_across_warehouses_is_split_here_too() -> None:
    info = shipped(0, "1fabf84", "cd_sao_paulo")
    info["deliveryIds"][0]["quantity"] = 2
    info["deliveryIds"][1]["quantity"] = 1
    order = vtex_order([item("18", 3)], [info])
    assert order_from_vtex(order, SETTINGS).items == [
        {"sku": "SHIRT-M", "warehouse": "main", "quantity": "2"},
        {"sku": "SHIRT-M", "warehouse": "cd-sp", "quantity": "1"},
    ]


def test_a_split_that_does_not_add_up_goes_to_the_first_warehouse() -> None:
    info = shipped(0, "cd_sao_paulo", "1fabf84")
    info["deliveryIds"][0]["quantity"] = 1
    info["deliveryIds"][1]["quantity"] = 1
    order = vtex_order([item("18", 3)], [info])
    assert order_from_vtex(order, SETTINGS).items == [
        {"sku": "SHIRT-M", "warehouse": "cd-sp", "quantity": "3"}
    ]


def test_the_carrier_is_the_delivery_company_else_the_shipping_option() -> None:
    def carrier(*logistics: dict[str, Any]) -> str | None:
        return order_from_vtex(vtex_order([item("18", 1)], list(logistics)), SETTINGS).carrier

    assert carrier(shipped(0, "1fabf84", company="")) == "Normal"
    assert carrier(shipped(0, company=""), shipped(0, company="Jadlog")) == "Jadlog"
    assert carrier({"itemIndex": 0}) is None
    assert carrier() is None


def test_a_state_that_says_nothing_maps_to_no_status() -> None:
    order = {**vtex_order([item("18", 1)], []), "status": "cancellation-requested"}
    mapped = order_from_vtex(order, SETTINGS)
    assert mapped.status is None
    assert mapped.vtex_state == "cancellation-requested"


# -- invoices out -------------------------------------------------------------------------------

# As the order keeps it (api/routes/orders.py): issued_at a datetime in UTC, value a Decimal.
INVOICE = {
    "number": "NF-1",
    "key": "35240112345678000199550010000000011000000019",
    "issued_at": datetime(2024, 1, 31, 21, 25, 43, tzinfo=UTC),
    "value": Decimal("59.80"),
    "tracking_code": None,
    "tracking_url": None,
}


def payment_keys(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        found = [f"{path}.{k}" for k in value if re.search(r"payment|transaction|card", k, re.I)]
        return found + [p for k, v in value.items() for p in payment_keys(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in payment_keys(v, f"{path}[{i}]")]
    return []


def test_the_invoice_body_follows_vtex_description() -> None:
    order = vtex_order([item("18", 2), item("31", 1, price=4000)], [shipped(0, "1fabf84")])
    body = invoice_payload(INVOICE, order)
    check_invoice(body)
    assert body == {
        "type": "Output",
        "invoiceNumber": "NF-1",
        "invoiceKey": INVOICE["key"],
        "issuanceDate": "2024-01-31T21:25:43+00:00",
        "invoiceValue": "5980",
        "items": [
            {"id": "18", "quantity": 2, "price": 990},
            {"id": "31", "quantity": 1, "price": 4000},
        ],
    }
    assert payment_keys(body) == []


def test_the_vtex_example_order_invoices_cleanly(schemas: OfficialSchemas) -> None:
    """VTEX's own example order, payment data and all: nothing of it leaks."""
    spec = json.loads(spec_file("orders-api.json").read_text(encoding="utf-8"))
    get_order = spec["paths"]["/api/oms/pvt/orders/{orderId}"]["get"]
    example = get_order["responses"]["200"]["content"]["application/json"]["example"]
    assert payment_keys(example)  # the test would prove nothing otherwise
    body = invoice_payload({"number": "NF-2"}, example)
    check_invoice(body, schemas)
    assert payment_keys(body) == []
    assert body["invoiceValue"] == str(example["value"])
    assert [x["id"] for x in body["items"]] == [x["id"] for x in example["items"]]
    assert all(type(x["price"]) is int and type(x["quantity"]) is int for x in body["items"])


@pytest.mark.parametrize(
    ("field", "wrong"),
    [("invoiceValue", 5980), ("items", [{"id": "18", "quantity": 1, "price": "9.90"}])],
)
def test_both_checks_refuse_money_in_the_wrong_shape(
    schemas: OfficialSchemas, field: str, wrong: Any
) -> None:
    """The contract checks here mean something: VTEX's schema, and ours, catch these."""
    body = invoice_payload(INVOICE, vtex_order([item("18", 1)], []))
    request = vtex_request("POST", INVOICE_PATH, {**body, field: wrong})
    assert {p["layer"] for p in request_problems(request, schemas)} == {"own", "official"}


@pytest.mark.parametrize(
    ("value", "cents"),
    [("99.90", "9990"), ("99.9", "9990"), ("100", "10000"), ("0.01", "1"), ("10.005", "1001")],
)
def test_the_invoice_value_is_a_string_of_cents(value: str, cents: str) -> None:
    body = invoice_payload({**INVOICE, "value": value}, vtex_order([item("18", 1)], []))
    assert body["invoiceValue"] == cents


def test_without_our_value_the_order_value_is_invoiced() -> None:
    body = invoice_payload({"number": "NF-1", "value": None}, vtex_order([item("18", 1)], []))
    assert body["invoiceValue"] == "5980"
    check_invoice(body)


def test_without_an_issue_date_now_is_sent_in_utc() -> None:
    body = invoice_payload({"number": "NF-1", "value": "1.00"}, vtex_order([item("18", 1)], []))
    issued = datetime.fromisoformat(body["issuanceDate"])
    assert issued.utcoffset() is not None
    assert issued.utcoffset().total_seconds() == 0
    check_invoice(body)


def test_unknown_values_are_left_out_not_sent_as_null() -> None:
    body = invoice_payload({"number": "NF-1", "key": None, "value": "1.00"}, vtex_order([], []))
    assert None not in body.values()
    assert not {"invoiceKey", "trackingNumber", "trackingUrl", "courier"} & body.keys()


def test_tracking_goes_with_the_invoice_when_known() -> None:
    invoice = {**INVOICE, "tracking_code": "BR123", "tracking_url": "https://track.example/BR123"}
    order = vtex_order([item("18", 1)], [shipped(0, "1fabf84", company="Jadlog")])
    body = invoice_payload(invoice, order)
    assert body["trackingNumber"] == "BR123"
    assert body["trackingUrl"] == "https://track.example/BR123"
    assert body["courier"] == "Jadlog"
    check_invoice(body)


def test_the_tracking_patch_follows_vtex_description() -> None:
    invoice = {**INVOICE, "tracking_code": "BR123", "tracking_url": "https://track.example/BR123"}
    body = tracking_payload(invoice)
    assert body == {
        "trackingNumber": "BR123",
        "trackingUrl": "https://track.example/BR123",
        "courier": None,
        "dispatchedDate": None,
    }
    check_tracking(body)


def test_a_removed_tracking_code_is_cleared() -> None:
    body = tracking_payload(INVOICE)
    assert body["trackingNumber"] == ""
    check_tracking(body)


# Every field of our contract's invoice, as a client sends it to POST .../invoice.
FULL = {
    "number": "NF-77",
    "key": "35240112345678000199550010000000011000000019",
    "value": "99.50",
    "tracking_code": "BR123456789",
    "tracking_url": "https://track.example/BR123456789",
}
OFFSETS = [
    ("2024-01-31T18:25:43Z", "2024-01-31T18:25:43+00:00"),
    ("2024-01-31T18:25:43-03:00", "2024-01-31T21:25:43+00:00"),
    ("2024-01-31T18:25:43+05:30", "2024-01-31T12:55:43+00:00"),
    ("2024-01-31T23:59:59.123456-03:00", "2024-02-01T02:59:59.123456+00:00"),
]


def stored(issued_at: str) -> dict[str, Any]:
    """The contract's full invoice as the order keeps it (the route's parsing)."""
    return {**FULL, "issued_at": parse_moment(issued_at, "issued_at"), "value": Decimal("99.50")}


@pytest.mark.parametrize(("issued_at", "sent"), OFFSETS)
def test_every_field_of_our_invoice_is_rendered_as_vtex_types_it(issued_at: str, sent: str) -> None:
    order = vtex_order([item("18", 2)], [shipped(0, "1fabf84", company="Jadlog")])
    invoice = stored(issued_at)

    body = invoice_payload(invoice, order)
    tracking = tracking_payload(invoice)

    check_invoice(body)
    check_tracking(tracking)
    assert body["issuanceDate"] == sent
    assert datetime.fromisoformat(body["issuanceDate"]) == datetime.fromisoformat(
        issued_at.replace("Z", "+00:00")
    )
    assert {k: body[k] for k in body if k != "items"} == {
        "type": "Output",
        "invoiceNumber": "NF-77",
        "invoiceKey": FULL["key"],
        "issuanceDate": sent,
        "invoiceValue": "9950",
        "trackingNumber": "BR123456789",
        "trackingUrl": "https://track.example/BR123456789",
        "courier": "Jadlog",
    }
    assert tracking == {
        "trackingNumber": "BR123456789",
        "trackingUrl": "https://track.example/BR123456789",
        "courier": None,
        "dispatchedDate": None,
    }


@pytest.mark.parametrize(("issued_at", "sent"), OFFSETS)
def test_every_field_of_our_invoice_passes_vtex_official_schema(
    schemas: OfficialSchemas, issued_at: str, sent: str
) -> None:
    order = vtex_order([item("18", 2)], [shipped(0, "1fabf84", company="Jadlog")])
    invoice = stored(issued_at)
    check_invoice(invoice_payload(invoice, order), schemas)
    check_tracking(tracking_payload(invoice), schemas)


@pytest.mark.parametrize(
    ("kept", "sent"),
    [
        (datetime(2024, 1, 31, 21, 25, 43), "2024-01-31T21:25:43+00:00"),  # no zone: UTC
        ("2024-01-31T18:25:43-03:00", "2024-01-31T21:25:43+00:00"),  # text, as older events
        ("yesterday", "yesterday"),  # unreadable: VTEX refuses it, visibly
    ],
)
def test_an_issue_date_kept_in_another_shape_is_still_sent_as_text(kept: object, sent: str) -> None:
    body = invoice_payload({**INVOICE, "issued_at": kept}, vtex_order([item("18", 1)], []))
    assert body["issuanceDate"] == sent
    json.dumps(body)


# -- quantities ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("available", "shown"),
    [
        ("5", 5),
        ("5.999", 5),
        ("0.5", 0),
        ("0", 0),
        ("-3", 0),
        ("-0.5", 0),
        ("999999999999.999999", 2**31 - 1),
    ],
)
def test_vtex_quantity_never_shows_more_than_is_there(available: str, shown: int) -> None:
    quantity = vtex_quantity(Decimal(available))
    assert quantity == shown
    assert type(quantity) is int
