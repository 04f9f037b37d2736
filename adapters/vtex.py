"""The VTEX REST API, as the ledger uses it: stock out, orders in, invoices and tracking out.

One ``VtexClient`` holds one keep-alive ``httpx.Client``, shared by the dispatcher's threads.
Every failed request raises ``DeliveryError`` (see ``adapters.delivery_errors``) and nothing
else; the app token never appears in ``repr()`` or in an error message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from adapters.delivery_errors import DeliveryError, check_response, transport_failure
from adapters.scrubbing import scrub

# The dispatcher runs about eight requests at once; a little headroom avoids queueing on the
# pool while a slow answer is still open.
_LIMITS = httpx.Limits(
    max_connections=16, max_keepalive_connections=16
)  # the dispatcher sends 16 at once
MAX_FEED_LOT = 10
# "" would drop a level of the path, and "." or ".." would be collapsed by URL normalisation
# (httpx does it) into another resource: no encoding makes them one segment.
_NOT_SEGMENTS = frozenset({"", ".", ".."})


def _segment(value: object, what: str) -> str:
    """An id as exactly one path segment: a '/', '?', '#' or '%' in it is encoded, so it can
    never change which resource is addressed. Ids that cannot be one segment are refused
    for good (the codes behind them are refused at every entry point; this is defence in
    depth)."""
    text = str(value)
    if text in _NOT_SEGMENTS:
        raise DeliveryError(f"{what}: {text!r} cannot be a segment of a VTEX URL", retryable=False)
    return quote(text, safe="")


class VtexClient:
    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._secrets = tuple(s for s in (app_token, app_key) if s)
        self._http = httpx.Client(
            base_url=self._base_url,
            headers={
                "X-VTEX-API-AppKey": app_key,
                "X-VTEX-API-AppToken": app_token,
                "Accept": "application/json",
                # VTEX's specs mark Content-Type required on every operation, GETs included.
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(timeout),
            limits=_LIMITS,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"VtexClient(base_url={self._base_url!r})"

    def __enter__(self) -> VtexClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- stock ---------------------------------------------------------------------------------

    def set_quantity(self, sku_id: str, warehouse_id: str, quantity: int) -> None:
        """Set the absolute quantity of a SKU in a warehouse (never unlimited), and nothing
        else: VTEX's ``PATCH .../quantity`` leaves the lead time the seller set, where the PUT
        would overwrite it. VTEX documents 423 (colliding updates) on the PUT only; the
        dispatcher retries a 423 from either, like any 423."""
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValueError(f"a VTEX quantity is a whole number >= 0, got {quantity!r}")
        what = f"stock of SKU {sku_id} in {warehouse_id}"
        path = (
            f"/api/logistics/pvt/inventory/skus/{_segment(sku_id, what)}"
            f"/warehouses/{_segment(warehouse_id, what)}/quantity"
        )
        body = {"quantity": quantity, "unlimitedQuantity": False}
        self._request("PATCH", path, what, json=body)

    def read_stock(self, sku_id: str) -> dict[str, int]:
        """Warehouse id → total quantity VTEX holds for a SKU."""
        what = f"reading stock of SKU {sku_id}"
        path = f"/api/logistics/pvt/inventory/skus/{_segment(sku_id, what)}"
        data = self._json("GET", path, what)
        balance = data.get("balance") if isinstance(data, dict) else None
        return {
            str(row["warehouseId"]): int(row.get("totalQuantity") or 0)
            for row in balance or []
            if isinstance(row, dict) and row.get("warehouseId") is not None
        }

    # -- orders --------------------------------------------------------------------------------

    def feed(self, maxlot: int = MAX_FEED_LOT) -> list[dict[str, Any]]:
        """Up to ``maxlot`` order events from feed v3; they come back until committed."""
        if not 1 <= maxlot <= MAX_FEED_LOT:
            raise ValueError(f"maxlot must be between 1 and {MAX_FEED_LOT}, got {maxlot}")
        params = {"maxlot": maxlot}
        data = self._json("GET", "/api/orders/feed", "reading the order feed", params=params)
        if not isinstance(data, list):
            return []
        return [event for event in data if isinstance(event, dict)]

    def commit(self, handles: list[str]) -> None:
        """Remove handled events from the feed."""
        if not handles:
            return
        body = {"handles": list(handles)}
        self._request("POST", "/api/orders/feed", "committing feed handles", json=body)

    def get_order(self, order_id: str) -> dict[str, Any]:
        what = f"reading order {order_id}"
        path = f"/api/oms/pvt/orders/{_segment(order_id, what)}"
        data = self._json("GET", path, what)
        if not isinstance(data, dict):
            raise DeliveryError(f"reading order {order_id}: not a JSON object", retryable=True)
        return data

    def send_invoice(self, order_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Notify an invoice; VTEX answers with a receipt. Re-sending the same invoice number
        only yields a new receipt, so a retry is safe."""
        what = f"invoicing order {order_id}"
        path = f"/api/oms/pvt/orders/{_segment(order_id, what)}/invoice"
        data = self._json("POST", path, what, json=payload)
        return data if isinstance(data, dict) else {}

    def update_tracking(self, order_id: str, invoice_number: str, payload: dict[str, Any]) -> None:
        what = f"tracking of order {order_id} invoice {invoice_number}"
        path = (
            f"/api/oms/pvt/orders/{_segment(order_id, what)}"
            f"/invoice/{_segment(invoice_number, what)}"
        )
        self._request("PATCH", path, what, json=payload)

    # -- plumbing ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        # The error is raised outside the except blocks: an implicit __context__ would keep an
        # unscrubbed message alive in every traceback.
        cause: httpx.HTTPError | None = None
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            cause = error
            failure = transport_failure(error, what)
        else:
            try:
                return check_response(response, what)
            except DeliveryError as error:
                failure = error
        clean = self._scrubbed(failure)
        # httpx's own traceback helps debugging, unless its message held a secret.
        raise clean from (cause if clean is failure else None)

    def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = self._request(method, path, what, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            # A 2xx with a body we cannot read: most likely a proxy page; worth another try.
            raise DeliveryError(
                f"{what}: HTTP {response.status_code} with an unreadable body",
                retryable=True,
                status=response.status_code,
            ) from None

    def _scrubbed(self, error: DeliveryError) -> DeliveryError:
        """The same error with any credential blanked out, in any form a message may hold it
        (``adapters/scrubbing.py``): an echoing proxy, a URL or a header in an exception
        message must not carry the token into logs or a delivery's last error."""
        message = scrub(str(error), self._secrets)
        if message == str(error):
            return error
        return DeliveryError(
            message, retryable=error.retryable, retry_after=error.retry_after, status=error.status
        )
