"""What a platform POSTs to ``/platforms/{name}/hook``: VTEX's order notifications, or a webhook
platform's signed orders. Authenticated by the platform's secret (read from the credential
store), not by a ledger token."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from adapters.credentials import CredentialsUnavailable
from adapters.delivery_errors import DeliveryError
from adapters.vtex_platform import HOOK_SECRET_HEADER, VtexPlatform
from adapters.webhook import SIGNATURE_HEADER, signature_matches
from ledger.codes import check_code, check_text
from ledger.errors import InvalidInput, InvalidSignature
from ledger.ordering import OrderDesk
from ledger.orders import OrderStatus, parse_lines
from ledger.platforms import Platform, PlatformType

log = logging.getLogger(__name__)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the hook's body is not JSON") from None
    except RecursionError:
        raise InvalidInput("the hook's body is nested too deeply") from None


def receive(
    orders: OrderDesk,
    vtex_for: Callable[[Platform], VtexPlatform],
    credentials_for: Callable[[Platform], Mapping[str, str]],
    name: str,
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    platform = orders.platform(name)
    try:
        credentials = credentials_for(platform)
    except CredentialsUnavailable as error:
        # A 503, and the platform retries. The hook takes no token: its caller hears that much
        # and no more (the full reason names the key's source: the status and the log have it).
        log.warning("hook of platform %s refused: %s", name, error.detail)
        raise CredentialsUnavailable(
            f"platform {name} cannot check this hook now; its status says why",
            platform=name,
        ) from None
    if platform.type is PlatformType.VTEX:
        message = _json(body)
        if isinstance(message, dict) and message.get("hookConfig") == "ping":
            # VTEX checks the URL answers before it saves a hook configuration.
            return {"received": "ping"}
        secret = credentials.get("hook_secret")
        given = headers.get(HOOK_SECRET_HEADER)
        if not secret or not given or not hmac.compare_digest(secret.encode(), given.encode()):
            raise InvalidSignature(f"the {HOOK_SECRET_HEADER} header does not match")
        if not isinstance(message, dict) or not isinstance(message.get("OrderId"), str):
            raise InvalidInput("a VTEX order notification needs OrderId", field="OrderId")
        order_id = check_code(message["OrderId"], "OrderId")
        try:
            # The notification's own state may be stale or out of order: read the order.
            result = vtex_for(platform).sync_order(orders, order_id)
        except DeliveryError as error:
            # The feed holds the same change and the robot reads it soon: VTEX need not retry.
            log.warning("vtex %s: hook for %s left to the feed: %s", name, order_id, error)
            result = f"{order_id}: left to the feed robot ({error})"
        return {"received": order_id, "result": result}
    if not signature_matches(credentials.get("secret"), body, headers.get(SIGNATURE_HEADER)):
        raise InvalidSignature(f"the {SIGNATURE_HEADER} header does not match the body")
    message = _json(body)
    if not isinstance(message, dict):
        raise InvalidInput("an order must be a JSON object")
    try:
        status = OrderStatus(message.get("status"))
    except ValueError:
        raise InvalidInput("unknown order status", field="status") from None
    order_id = check_code(message.get("order_id"), "order_id")
    outcome = orders.import_order(
        name,
        order_id,
        status,
        check_text(message.get("carrier"), "carrier", max_length=200),
        parse_lines(message.get("items")),
        f"hook:{name}",
    )
    state = outcome.order.status.value if outcome.order is not None else outcome.reason
    return {"received": order_id, "result": state, "position": outcome.position}
