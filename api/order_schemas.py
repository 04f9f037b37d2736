"""Order request and response bodies as the OpenAPI document shows them.

The rules (codes, positive quantities, one line per SKU and warehouse) are the domain's, in
``ledger.orders.parse_lines``; items are documented here and checked there, once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, StrictBool

from api.schemas import Quantity, code, line, moment
from ledger.orders import OrderStatus
from ledger.platforms import ImportFrom, PlatformType


class OrderItemIn(BaseModel):
    sku: str = code("The SKU (1-64 characters).")
    quantity: Quantity = Field(description="Positive quantity ordered.")
    warehouse: str = code("The ledger warehouse that serves the item.", "main")


class OrderIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "platform": "vtex",
                    "order_id": "1172452900788-01",
                    "status": "awaiting_payment",
                    "carrier": "Correios PAC",
                    "items": [{"sku": "SKU-1", "quantity": "5", "warehouse": "main"}],
                }
            ]
        },
    )

    platform: str = code("The platform the order comes from, e.g. vtex.")
    order_id: str = code("The platform's order id.")
    status: OrderStatus = Field(description="The order's status on the platform.")
    carrier: str | None = line("The platform's carrier name.", 200)
    items: list[SkipValidation[OrderItemIn]] = Field(
        min_length=1, description="At least one; one line per (SKU, warehouse)."
    )


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OrderStatus


class ItemsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[SkipValidation[OrderItemIn]] = Field(
        min_length=1, description="At least one; one line per (SKU, warehouse)."
    )


class InvoiceIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "number": "4821",
                    "key": "35261112345678000190550010000048211000048213",
                    "issued_at": "2026-11-28T14:30:00-03:00",
                    "value": "249.90",
                    "tracking_code": "BR123456789BR",
                    "tracking_url": "https://rastreamento.correios.com.br/?objeto=BR123456789BR",
                }
            ]
        },
    )

    number: str = code("Invoice number (required).")
    key: str | None = line("Access key of the electronic invoice.", 64)
    issued_at: str | None = moment("When the invoice was issued: ISO 8601 with a time zone.")
    value: Quantity | None = Field(None, description="Invoice total.")
    tracking_code: str | None = line("The carrier's tracking code.", 100)
    tracking_url: str | None = line("Where the customer follows the delivery.", 500)


class OrderItemOut(BaseModel):
    sku: str
    warehouse: str
    quantity: Quantity


class OrderOut(BaseModel):
    platform: str
    order_id: str
    status: OrderStatus
    carrier: str | None
    deleted: bool
    blocked_reason: str | None = Field(
        description="Why the order is held and not imported (e.g. an unmapped carrier)."
    )
    holds_reservation: bool = Field(description="Whether the order holds reserved stock now.")
    stock_posted: bool = Field(description="Whether the order's stock has left the warehouse.")
    items: list[OrderItemOut]
    invoice: dict[str, Any] | None


class OrderRow(BaseModel):
    platform: str
    order_id: str
    status: OrderStatus
    carrier: str | None
    blocked_reason: str | None
    items: int = Field(description="How many lines the order has.")
    reserved: Quantity = Field(description="Units the order holds reserved now, all lines.")
    holds_reservation: bool
    stock_posted: bool
    invoice_number: str | None
    deleted: bool
    imported_at: datetime
    updated_at: datetime
    position: int = Field(description="Position of the order's latest change.")


class OrderPage(BaseModel):
    items: list[OrderRow]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page.")


class PlatformIn(BaseModel):
    """Documents the body of PUT /platforms/{name}; the rules are the domain's
    (``ledger/platform_settings.py``), checked there once, for every entry point."""

    model_config = ConfigDict(extra="forbid")

    type: PlatformType
    base_url: str | None = Field(
        None,
        max_length=500,
        description="The platform's API root (vtex) or the URL stock and orders are POSTed to "
        "(webhook): https, printable ASCII, no user name, password or #fragment. Plain http "
        "only to localhost, 127.0.0.0/8 or ::1, unless allow_insecure_http.",
        examples=["https://acme.vtexcommercestable.com.br"],
    )
    allow_insecure_http: bool = Field(
        False,
        description="Allow a plain-http base_url to a host other than loopback. Warning: the "
        "credentials and every request then cross the network unencrypted, readable and "
        "changeable by anyone on the way. For a platform on a private, trusted network only.",
    )
    credentials: dict[str, str | None] = Field(
        default_factory=dict,
        description="Write-only, stored encrypted outside the event log (never shown in any "
        "response). Omitted: the stored credentials are kept. A name with a value sets or "
        "replaces it (printable ASCII without spaces); a name with null deletes it. vtex: "
        "app_key, app_token, hook_secret; webhook: secret.",
        examples=[{"app_key": "vtexappkey-acme-ABC", "app_token": "ABCDEF..."}],
    )
    import_from: ImportFrom = ImportFrom.AWAITING_PAYMENT
    reserve_while_pending: StrictBool | None = Field(
        None,
        description="Whether orders awaiting payment (or in analysis) reserve stock. Default: "
        "false for vtex (VTEX holds that reservation itself), true for every other type.",
    )
    warehouses: dict[str, str] = Field(
        default_factory=dict,
        description="Ledger warehouse → platform warehouse id, one to one; codes (no control "
        "characters, never . or ..).",
    )
    carriers: dict[str, str] = Field(
        default_factory=dict,
        description="Platform carrier name (one line of text) → ledger carrier (a code). Orders "
        "with an unmapped carrier are held, reserve nothing, and are imported once the mapping "
        "exists.",
    )
    skus: dict[str, str] = Field(
        default_factory=dict,
        description="Ledger SKU → the platform's SKU id, where they differ (identity "
        "otherwise), one to one; codes.",
    )
    rate_limit: float | None = Field(
        None, gt=0, le=10_000, description="Requests per second to the platform (default 50)."
    )
    feed_interval_seconds: float | None = Field(
        None, ge=1, le=86_400, description="VTEX: how often the order feed is read (default 10)."
    )
    payment_check_seconds: float | None = Field(
        None,
        ge=1,
        le=86_400,
        description="VTEX: how often orders awaiting payment are checked (default 60).",
    )
    drift_check_seconds: float | None = Field(
        None,
        ge=1,
        le=604_800,
        description="VTEX: how often the platform's stock is compared and repaired (default 600).",
    )


class PlatformOut(BaseModel):
    name: str
    type: PlatformType
    base_url: str | None
    allow_insecure_http: bool = False
    credentials: list[str] = Field(description="Names of the stored credentials, not values.")
    import_from: ImportFrom
    reserve_while_pending: bool | None
    warehouses: dict[str, str]
    carriers: dict[str, str]
    skus: dict[str, str] = Field(default_factory=dict)
    rate_limit: float | None = None
    feed_interval_seconds: float | None = None
    payment_check_seconds: float | None = None
    drift_check_seconds: float | None = None
    position: int | None = Field(
        None, description="Of this change (PUT only), for ?after= reads; null if nothing changed."
    )


class WaitingDelivery(BaseModel):
    kind: str = Field(description="stock or order.")
    subject: str = Field(description="The SKU, or the order id.")
    warehouse: str | None
    wanted: dict[str, Any] = Field(description="The newest value waiting to be delivered.")
    attempts: int = Field(description="Failed attempts so far.")
    first_failed_at: float | None = Field(
        description="Epoch seconds of the first of them (null for rows older than this field)."
    )
    last_error: str | None = Field(description="Why the last attempt failed (no secrets).")


class RetryingDelivery(WaitingDelivery):
    next_attempt_at: float | None = Field(
        description="Epoch seconds when it is due again; while the platform is failing, "
        "deliveries wait for its probes instead (see next_probe_at)."
    )


class FailedDelivery(WaitingDelivery):
    failed_at: float | None = Field(description="Epoch seconds of the refusal.")


class Deliveries(BaseModel):
    pending: int = Field(description="Waiting for their first attempt.")
    retrying: int = Field(
        description="Failed in a way that trying again may fix (network, timeout, 408, 423, "
        "425, 429, 5xx, an unexpected error): retried with backoff for as long as it takes."
    )
    failed: int = Field(
        description="Refused by the platform (another 4xx, or no base_url): sent again only "
        "by POST /platforms/{name}/retry (or a change of the platform's settings)."
    )
    delivered: int
    oldest_pending_seconds: float = Field(
        description="The publish lag: how long the oldest pending or retrying value has waited."
    )
    last_delivered_at: float | None = Field(description="Epoch seconds.")
    failing: bool = Field(
        description="Whether the platform is failing now: its last attempts, of more than one "
        "delivery, failed with no answer in between, or it cannot be served at all (halted)."
    )
    failing_since: float | None = Field(description="Epoch seconds; null unless failing.")
    last_error: str | None = Field(
        description="The platform's last failed attempt, or why it cannot be served (no secrets)."
    )
    last_error_at: float | None = Field(description="Epoch seconds.")
    halted: str | None = Field(
        description="Why no dispatcher can serve the platform now (e.g. its adapter cannot be "
        "built from its settings); its deliveries wait and the others carry on."
    )
    paused_until: float | None = Field(
        description="Epoch seconds: a 429 paused every sender of the platform until then."
    )
    next_probe_at: float | None = Field(
        description="While failing, one delivery at a time is tried, no sooner than this."
    )
    attempts: dict[str, int] = Field(
        description="Attempts so far by outcome: delivered, retryable_error, refused, "
        "unexpected_error.",
    )
    retrying_deliveries: list[RetryingDelivery] = Field(
        description="Up to 100, the longest failing first."
    )
    failed_deliveries: list[FailedDelivery] = Field(description="Up to 100, oldest first.")


class PlatformStatus(BaseModel):
    name: str
    configuration_problem: str | None = Field(
        None,
        description="Why the platform's stored settings or credentials cannot be used (a "
        "secret key that cannot decrypt them, a setting stored before settings were checked); "
        "null when they can. Such a platform sends nothing; the others carry on.",
    )
    blocked_orders: int
    blocked: list[OrderOut]
    deliveries: Deliveries
    jobs: dict[str, Any] = Field(
        description="The last run of each periodic job (feed, payments, drift) and its report."
    )


class RetryOut(BaseModel):
    retried: int = Field(description="Failed deliveries set to be sent again now.")
