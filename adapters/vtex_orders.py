"""VTEX orders in the ledger's terms, and the ledger's invoices in VTEX's: pure mapping, no I/O.

VTEX order states (workflow ``status``, also the feed's ``state``) → ``OrderStatus``;
``None`` means "says nothing new: keep the order as it is".

=================================================  ===================  ==========================
VTEX state                                         ours                 why
=================================================  ===================  ==========================
order-created, order-completed,                    awaiting_payment     placed, not paid yet
on-order-completed, on-order-completed-ffm
waiting-for-sellers-confirmation,                  awaiting_payment     held before payment
waiting-for-order-authorization,
waiting-for-authorization,
waiting-for-manual-authorization
payment-pending                                    awaiting_payment
approve-payment                                    payment_in_analysis  payment being evaluated
payment-approved                                   payment_confirmed
waiting-ffmt-authorization, authorize-fulfillment, payment_confirmed    paid; the marketplace
waiting-for-mkt-authorization                                           releases it to the seller
window-to-cancel, window-to-change-seller,         payment_confirmed    paid, not yet handled
waiting-seller-handling
ready-for-handling, start-handling, handling,      payment_confirmed    paid, being prepared
waiting-for-fulfillment
invoiced                                           invoiced
canceled                                           cancelled
replaced                                           cancelled            an order change replaced
                                                                        it; the new order comes
                                                                        on its own
invoice, invoice-after-cancellation-deny           None                 invoicing in progress;
                                                                        ``invoiced`` follows
request-cancel, cancellation-requested,            None                 may still be denied;
waiting-for-seller-decision, cancel, canceling                          ``canceled`` follows
order-accepted                                     None                 says nothing of payment
order-create-error, order-creation-error           None                 no usable order yet
anything else                                      None                 a state VTEX adds later
                                                                        never breaks the import
=================================================  ===================  ==========================

Sources: the feed filter's state list and the order search filter in VTEX's orders-api.json,
and VTEX's "Order flow and status" guide. Reports that arrive late or out of order are harmless:
``Order.advance`` never moves an order backwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ledger.orders import OrderStatus
from ledger.quantities import render

_AWAITING = OrderStatus.AWAITING_PAYMENT
_ANALYSIS = OrderStatus.PAYMENT_IN_ANALYSIS
_CONFIRMED = OrderStatus.PAYMENT_CONFIRMED

_STATUSES: dict[str, OrderStatus] = {
    "order-created": _AWAITING,
    "order-completed": _AWAITING,
    "on-order-completed": _AWAITING,
    "on-order-completed-ffm": _AWAITING,
    "waiting-for-sellers-confirmation": _AWAITING,
    "waiting-for-order-authorization": _AWAITING,
    "waiting-for-authorization": _AWAITING,
    "waiting-for-manual-authorization": _AWAITING,
    "payment-pending": _AWAITING,
    "approve-payment": _ANALYSIS,
    "payment-approved": _CONFIRMED,
    "waiting-ffmt-authorization": _CONFIRMED,
    "authorize-fulfillment": _CONFIRMED,
    "waiting-for-mkt-authorization": _CONFIRMED,
    "window-to-cancel": _CONFIRMED,
    "window-to-change-seller": _CONFIRMED,
    "waiting-seller-handling": _CONFIRMED,
    "ready-for-handling": _CONFIRMED,
    "start-handling": _CONFIRMED,
    "handling": _CONFIRMED,
    "waiting-for-fulfillment": _CONFIRMED,
    "invoiced": OrderStatus.INVOICED,
    "canceled": OrderStatus.CANCELLED,
    "replaced": OrderStatus.CANCELLED,
}

# States that deliberately change nothing (see the table); any other unknown state is ignored
# too, but these were read and decided.
IGNORED_STATES = frozenset(
    {
        "invoice",
        "invoice-after-cancellation-deny",
        "request-cancel",
        "cancellation-requested",
        "waiting-for-seller-decision",
        "cancel",
        "canceling",
        "order-accepted",
        "order-create-error",
        "order-creation-error",
    }
)

# VTEX stores quantities as int32; anything above would be refused outright.
_MAX_VTEX_QUANTITY = 2**31 - 1
_DEFAULT_WAREHOUSE = "main"
_CENT = Decimal("0.01")


def ledger_status(vtex_state: str) -> OrderStatus | None:
    """Our status for a VTEX order state, or None when the state changes nothing for us."""
    return _STATUSES.get(vtex_state.strip().lower())


@dataclass(frozen=True)
class VtexOrder:
    order_id: str
    status: OrderStatus | None
    vtex_state: str
    carrier: str | None
    items: list[dict[str, str]]


def order_from_vtex(order: dict[str, Any], settings: dict[str, Any]) -> VtexOrder:
    """A VTEX order (GET /api/oms/pvt/orders/{orderId}) as the ledger imports it."""
    state = str(order.get("status") or "")
    return VtexOrder(
        order_id=str(order["orderId"]),
        status=ledger_status(state),
        vtex_state=state,
        carrier=_carrier(_logistics(order)),
        items=_ledger_items(order, settings),
    )


def _logistics(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    shipping = order.get("shippingData") or {}
    return [x for x in shipping.get("logisticsInfo") or [] if isinstance(x, dict)]


def _carrier(logistics: list[dict[str, Any]]) -> str | None:
    """The carrier the seller maps: VTEX's carrier name, else the shipping option's."""
    return _first(logistics, "deliveryCompany") or _first(logistics, "selectedSla")


def _first(logistics: list[dict[str, Any]], field: str) -> str | None:
    for info in logistics:
        name = info.get(field)
        if isinstance(name, str) and name.strip():
            return name.strip()
    return None


def _reverse(mapping: Mapping[str, Any]) -> dict[str, str]:
    """VTEX id → ledger code; if two codes share an id, the first one configured wins."""
    reverse: dict[str, str] = {}
    for ours, theirs in mapping.items():
        reverse.setdefault(str(theirs), ours)
    return reverse


def _ledger_items(order: Mapping[str, Any], settings: Mapping[str, Any]) -> list[dict[str, str]]:
    warehouses = settings.get("warehouses") or {}
    skus = _reverse(settings.get("skus") or {})
    to_warehouse = _reverse(warehouses)
    fallback = next(iter(warehouses)) if len(warehouses) == 1 else _DEFAULT_WAREHOUSE
    by_index = {info.get("itemIndex"): info for info in _logistics(order)}

    totals: dict[tuple[str, str], Decimal] = {}
    for index, item in enumerate(order.get("items") or []):
        vtex_sku = str(item["id"])
        # An unmapped SKU keeps VTEX's id: most stores use the same code on both sides.
        sku = skus.get(vtex_sku, vtex_sku)
        shares = _warehouse_shares(by_index.get(index), int(item.get("quantity") or 0))
        for vtex_warehouse, quantity in shares:
            warehouse = to_warehouse.get(vtex_warehouse or "", fallback)
            key = (sku, warehouse)
            totals[key] = totals.get(key, Decimal(0)) + quantity
    # A line of nothing moves no stock, and parse_lines refuses it.
    return [
        {"sku": sku, "warehouse": warehouse, "quantity": render(quantity)}
        for (sku, warehouse), quantity in totals.items()
        if quantity > 0
    ]


def _warehouse_shares(
    info: Mapping[str, Any] | None, quantity: int
) -> list[tuple[str | None, Decimal]]:
    """Where an item's units leave from. VTEX may split one item across several warehouses
    (one deliveryId each, with its quantity); when those quantities do not add up to the
    item's, the first warehouse takes it all rather than guessing."""
    deliveries = [d for d in (info or {}).get("deliveryIds") or [] if isinstance(d, dict)]
    if not deliveries:
        return [(None, Decimal(quantity))]
    split = [(d.get("warehouseId"), d.get("quantity")) for d in deliveries]
    counts = [q for _, q in split]
    whole = all(isinstance(q, int) and q > 0 for q in counts) and sum(counts) == quantity
    if len(split) > 1 and whole:
        return [(_text(w), Decimal(q)) for w, q in split]
    return [(_text(split[0][0]), Decimal(quantity))]


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def invoice_payload(invoice: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    """The body of POST /api/oms/pvt/orders/{orderId}/invoice for one of our invoices.

    Items and prices are the VTEX order's own: local edits stay in the ledger, and nothing
    about payment is ever sent. Keys we have no value for are left out rather than sent as
    null. Every value is rendered as VTEX's schema types it (strings, integer cents), whatever
    type the ledger keeps it in (the order keeps ``issued_at`` as a datetime, ``value`` as a
    Decimal).
    """
    value = invoice.get("value")
    body: dict[str, Any] = {
        "type": "Output",
        "invoiceNumber": str(invoice["number"]),
        "issuanceDate": _moment(invoice.get("issued_at")) or _now(),
        "invoiceValue": _cents(value) if value not in (None, "") else str(int(order["value"])),
        "items": [_invoice_item(item) for item in order.get("items") or []],
    }
    optional = {
        "invoiceKey": invoice.get("key"),
        "trackingNumber": invoice.get("tracking_code"),
        "trackingUrl": invoice.get("tracking_url"),
    }
    if optional["trackingNumber"] not in (None, ""):
        # A tracking number means little without its carrier: the order's own, unless ours
        # names one. (A shipping option's name is no carrier, so no selectedSla here.)
        optional["courier"] = invoice.get("courier") or _first(_logistics(order), "deliveryCompany")
    body.update({k: str(v) for k, v in optional.items() if v not in (None, "")})
    return body


def _invoice_item(item: Mapping[str, Any]) -> dict[str, Any]:
    # sellingPrice is the unit price after discounts, what the customer actually pays; VTEX
    # multiplies it by the quantity, so the items add up to the invoiced value.
    price = item.get("sellingPrice")
    if price is None:
        price = item["price"]
    return {"id": str(item["id"]), "quantity": int(item["quantity"]), "price": int(price)}


def tracking_payload(invoice: dict[str, Any]) -> dict[str, Any]:
    """The body of PATCH /api/oms/pvt/orders/{orderId}/invoice/{invoiceNumber}.

    The schema requires all four keys. Only trackingNumber may not be null; VTEX's own word for
    "no tracking" is an empty string, so a tracking code removed here clears it there too.
    """
    return {
        "trackingNumber": _text(invoice.get("tracking_code")) or "",
        "trackingUrl": _text(invoice.get("tracking_url")),
        "courier": _text(invoice.get("courier")),
        "dispatchedDate": _moment(invoice.get("dispatched_at")),
    }


def _cents(value: object) -> str:
    """'99.90' → '9990': VTEX wants invoice values as a string of integer cents."""
    amount = Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)
    return str(int(amount * 100))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _moment(value: object) -> str | None:
    """A moment as VTEX writes them, ISO 8601 with an offset: '2024-01-31T21:25:43+00:00'.
    The ledger keeps moments as datetimes in UTC; one without a zone is taken as UTC, and
    text is read as ISO 8601 (and passed on as it is if it does not read, for VTEX to judge:
    a refusal shows on the delivery, where a crash would leave it pending)."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def vtex_quantity(available: Decimal) -> int:
    """What a store may show: whole units only, never more than is there, never negative."""
    if not available.is_finite() or available <= 0:
        return 0
    return min(math.floor(available), _MAX_VTEX_QUANTITY)
