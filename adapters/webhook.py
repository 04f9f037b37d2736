"""The generic webhook platform: JSON POSTed both ways, signed with an HMAC-SHA256 of the body.

Out: desired stock (``{"event": "stock", ...}``) and order status (``{"event": "order", ...}``)
are POSTed to the platform's ``base_url`` with ``X-Ledger-Signature: sha256=<hex>``, the HMAC of
the exact body bytes under the platform's ``secret`` credential (from the credential store).
In: orders arrive at ``POST /platforms/{name}/hook`` as the body of ``POST /orders``, signed the
same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from adapters.delivery_errors import DeliveryError, check_response, transport_failure
from ledger.orders import Order
from ledger.platforms import Platform
from ledger.quantities import render

SIGNATURE_HEADER = "X-Ledger-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str | None, body: bytes, header: str | None) -> bool:
    """Constant-time check of a signature header; no secret configured means no match."""
    if not secret or not header:
        return False
    # Bytes: compare_digest refuses str with non-ASCII characters (a forged header's choice).
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def order_record(order: Order) -> dict[str, Any]:
    """What a webhook platform is told about an order: its status and invoice, never payment
    data or the lines (local edits of items stay in the ledger). Plain JSON values only (the
    issue moment in ISO 8601 with its offset, the value as a decimal string, as ``GET
    /orders`` shows them): the record is both the body sent and, stored, what the platform
    has, compared with the next one."""
    invoice = order.invoice
    if invoice is None:
        return {"status": order.status.value, "deleted": order.deleted, "invoice": None}
    issued_at, value = invoice.get("issued_at"), invoice.get("value")
    return {
        "status": order.status.value,
        "deleted": order.deleted,
        "invoice": {
            "number": invoice.get("number"),
            "key": invoice.get("key"),
            "issued_at": issued_at.isoformat() if isinstance(issued_at, datetime) else issued_at,
            "value": render(value) if isinstance(value, Decimal) else value,
            "tracking_code": invoice.get("tracking_code"),
            "tracking_url": invoice.get("tracking_url"),
        },
    }


class WebhookAdapter:
    def __init__(
        self,
        platform: Platform,
        credentials: Mapping[str, str],
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = platform.name
        self.url = platform.settings.get("base_url") or ""
        self.secret = credentials.get("secret", "")
        self.secrets = (self.secret,) if self.secret else ()  # never in an error
        self.http = httpx.Client(timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"WebhookAdapter({self.name!r}, {self.url!r})"

    def _post(self, message: dict[str, Any], what: str) -> None:
        if not self.url:
            raise DeliveryError(f"{what}: the platform has no base_url", retryable=False)
        body = json.dumps({**message, "platform": self.name, "sent_at": time.time()}).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body)}
        try:
            response = self.http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise transport_failure(error, what) from error
        check_response(response, what)

    def push_stock(self, payload: dict[str, Any]) -> None:
        self._post(
            {
                "event": "stock",
                "sku": payload["sku"],
                "warehouse": payload["platform_warehouse"],
                "quantity": payload["quantity"],
            },
            f"stock of {payload['sku']}",
        )

    def order_changed(self, order: Order, sent: dict[str, Any] | None) -> bool:
        return sent != order_record(order)

    def push_order(self, order: Order, sent: dict[str, Any] | None) -> dict[str, Any]:
        record = order_record(order)
        self._post(
            {"event": "order", "order_id": order.order_id, **record}, f"order {order.order_id}"
        )
        return record

    def close(self) -> None:
        self.http.close()
