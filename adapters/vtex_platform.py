"""VTEX as the ledger sees it: stock and invoices out, orders in, drift found and repaired.

Credentials (``PUT /platforms/{name}``): ``app_key`` and ``app_token`` for VTEX's API, and
``hook_secret``, the value VTEX's hook configuration sends in ``X-Ledger-Hook-Secret``. They
come from the credential store (``adapters/credentials.py``), never from the platform's events.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from adapters.delivery_errors import DeliveryError
from adapters.vtex import VtexClient
from adapters.vtex_orders import (
    invoice_payload,
    order_from_vtex,
    tracking_payload,
    vtex_quantity,
)
from ledger.errors import LedgerError
from ledger.ordering import OrderDesk
from ledger.orders import Order, OrderStatus, parse_lines
from ledger.platforms import Platform

log = logging.getLogger(__name__)

MAX_LOTS_PER_RUN = 100  # a run reads at most 1,000 feed items; the next run reads on
HOOK_SECRET_HEADER = "X-Ledger-Hook-Secret"  # noqa: S105 (a header name)
RECORDED_BY = "vtex"


def _tracking(invoice: dict[str, Any]) -> list[str | None]:
    return [invoice.get("tracking_code"), invoice.get("tracking_url")]


class VtexPlatform:
    def __init__(
        self,
        platform: Platform,
        credentials: Mapping[str, str],
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        settings = platform.settings
        self.platform = platform
        self.name = platform.name
        self.skus: dict[str, str] = dict(settings.get("skus") or {})
        # Blanked out of every error the dispatcher records or logs.
        self.secrets = tuple(v for v in credentials.values() if isinstance(v, str) and v)
        self.client = VtexClient(
            settings.get("base_url") or "",
            credentials.get("app_key", ""),
            credentials.get("app_token", ""),
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"VtexPlatform({self.name!r})"

    def close(self) -> None:
        self.client.close()

    # -- stock out ---------------------------------------------------------------------------

    def vtex_sku(self, sku: str) -> str:
        return self.skus.get(sku, sku)

    def push_stock(self, payload: dict[str, Any]) -> None:
        self.client.set_quantity(
            self.vtex_sku(payload["sku"]),
            payload["platform_warehouse"],
            vtex_quantity(Decimal(payload["quantity"])),
        )

    # -- invoices out ------------------------------------------------------------------------

    def order_changed(self, order: Order, sent: dict[str, Any] | None) -> bool:
        # VTEX hears of our orders only through their invoice; statuses come from VTEX.
        if order.invoice is None:
            return False
        sent = sent or {}
        return sent.get("invoice") != order.invoice.get("number") or sent.get(
            "tracking"
        ) != _tracking(order.invoice)

    def push_order(self, order: Order, sent: dict[str, Any] | None) -> dict[str, Any]:
        invoice = order.invoice
        assert invoice is not None
        number = str(invoice["number"])
        record = dict(sent or {})
        if record.get("invoice") != number:
            # Items and prices as VTEX has them: local edits never leave the ledger.
            vtex_order = self.client.get_order(order.order_id)
            self.client.send_invoice(order.order_id, invoice_payload(invoice, vtex_order))
            return {"invoice": number, "tracking": _tracking(invoice)}
        self.client.update_tracking(order.order_id, number, tracking_payload(invoice))
        record["tracking"] = _tracking(invoice)
        return record

    # -- orders in ---------------------------------------------------------------------------

    def sync_order(self, orders: OrderDesk, order_id: str) -> str:
        """Import an order, or report its status onward, from what VTEX says now: the order
        itself is the truth, so a duplicated or late notification changes nothing."""
        return self._sync(orders, order_id)[1]

    def _sync(self, orders: OrderDesk, order_id: str) -> tuple[OrderStatus | None, str]:
        """The order's status here afterwards (None: not imported) and a sentence saying so."""
        vtex_order = self.client.get_order(order_id)
        mapped = order_from_vtex(vtex_order, self.platform.settings)
        if mapped.status is None:
            return None, f"{order_id}: {mapped.vtex_state} changes nothing here"
        outcome = orders.import_order(
            self.name,
            mapped.order_id,
            mapped.status,
            mapped.carrier,
            parse_lines(mapped.items),
            RECORDED_BY,
        )
        if outcome.order is None:
            return None, f"{order_id}: {outcome.reason}"
        return outcome.order.status, f"{order_id}: {outcome.order.status.value}"

    def read_feed(self, orders: OrderDesk, maxlot: int = 10) -> dict[str, Any]:
        """Drain the feed: import each order, then commit the handles it read. A handle whose
        order could not be read stays in the feed and is read again next time."""
        report: dict[str, Any] = {"read": 0, "committed": 0, "errors": []}
        stuck: set[str] = set()
        for _ in range(MAX_LOTS_PER_RUN):
            items = [i for i in self.client.feed(maxlot) if str(i.get("orderId")) not in stuck]
            if not items:
                break
            done = []
            for item in items:
                report["read"] += 1
                order_id = str(item.get("orderId"))
                try:
                    self.sync_order(orders, order_id)
                    done.append(item["handle"])
                except (DeliveryError, LedgerError) as error:
                    # VTEX refused, or the order breaks a rule of ours (an id or carrier name
                    # we cannot hold): reported, with no traceback, and read again next run.
                    self._stuck(report, stuck, order_id, error)
                except Exception as error:  # one malformed order must not stop the others
                    log.exception("vtex %s: order %s could not be imported", self.name, order_id)
                    self._stuck(report, stuck, order_id, error)
            if done:
                self.client.commit(done)
                report["committed"] += len(done)
        return report

    def _stuck(
        self, report: dict[str, Any], stuck: set[str], order_id: str, error: Exception
    ) -> None:
        # Left in the feed (not committed): read again next run, after what VTEX fixes.
        stuck.add(order_id)
        report["errors"].append(f"{order_id}: {error}")
        log.warning("vtex %s: order %s not imported: %s", self.name, order_id, error)

    def follow_payments(self, orders: OrderDesk, order_ids: list[str]) -> dict[str, Any]:
        """Orders still awaiting payment, checked against VTEX: they move on by themselves."""
        report: dict[str, Any] = {"checked": 0, "moved": [], "errors": []}
        for order_id in order_ids:
            report["checked"] += 1
            try:
                after, _ = self._sync(orders, order_id)
            except (DeliveryError, LedgerError) as error:
                report["errors"].append(f"{order_id}: {error}")
                continue
            if after is not None and after.value not in AWAITING:
                report["moved"].append(f"{order_id}: {after.value}")
        return report

    # -- drift -------------------------------------------------------------------------------

    def read_quantity(self, sku: str, platform_warehouse: str) -> int | None:
        return self.client.read_stock(self.vtex_sku(sku)).get(platform_warehouse)


AWAITING = (OrderStatus.AWAITING_PAYMENT.value, OrderStatus.PAYMENT_IN_ANALYSIS.value)
