"""The emulator's JSON control API under ``/_emulator/``, for a process driven from outside
(``python -m adapters.vtex_emulator``, ``ledger demo``, benchmarks).

Invariant: control paths are neither checked against any description nor faulted, and never
appear in the request log, so driving the emulator changes nothing a test asserts about the
client under test. Bad control requests answer 400 (404 for unknown orders), never 500.

    GET  /_emulator/status                 POST /_emulator/reset
    GET  /_emulator/openapi.json           GET  /_emulator/requests
    GET  /_emulator/inventory              POST /_emulator/stock {sku, warehouse, quantity,
    GET  /_emulator/stock-updates?sku=&warehouse=                 lead_time?}
    POST /_emulator/lead-time {sku, warehouse, lead_time}
    POST /_emulator/orders {order_id, items, state?, carrier?, warehouse_id?, value_cents?}
    GET  /_emulator/orders/{id}            POST /_emulator/orders/{id}/state {state}
    GET  /_emulator/orders/{id}/invoices   GET  /_emulator/orders/{id}/tracking
    GET  /_emulator/feed
    POST /_emulator/faults {mode, count?, seconds?, retry_after?, delay?, path_prefix?}
    DELETE /_emulator/faults
    GET  /_emulator/hook                   POST /_emulator/hook {url, headers}
"""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from adapters.vtex_emulator.description import openapi_document
from adapters.vtex_emulator.server import Reply, error_reply, json_reply

if TYPE_CHECKING:
    from adapters.vtex_emulator.emulator import VtexEmulator


def handle(
    emulator: VtexEmulator,
    method: str,
    path: str,
    query_string: str,
    body: bytes,
    conn: socket.socket,
) -> Reply:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return error_reply(400, "emulator.bad-json", "the body is not JSON")
    if not isinstance(data, dict):
        return error_reply(400, "emulator.bad-json", "the body must be a JSON object")
    query = dict(parse_qsl(query_string))
    parts = [unquote(p) for p in path.strip("/").split("/")[1:]]
    try:
        reply = _route(emulator, method, parts, query, data, conn)
    except KeyError as exc:
        # Unknown order ids, and missing fields in the request body.
        status = 404 if method == "GET" or "orders" in parts else 400
        return error_reply(status, "emulator", f"unknown or missing: {exc}")
    except (TypeError, ValueError) as exc:
        return error_reply(400, "emulator", str(exc))
    except RuntimeError as exc:
        return error_reply(502, "emulator", str(exc))
    return reply or error_reply(404, "emulator", f"no control endpoint {method} {path}")


def _route(
    emulator: VtexEmulator,
    method: str,
    parts: list[str],
    query: dict[str, str],
    data: dict[str, Any],
    conn: socket.socket,
) -> Reply | None:
    ok = json_reply(200, {"ok": True})
    match method, parts:
        case "GET", ["status"]:
            return json_reply(200, emulator.status())
        case "GET", ["openapi.json"]:
            return json_reply(200, openapi_document())
        case "GET", ["inventory"]:
            return json_reply(200, emulator.inventory())
        case "GET", ["stock-updates"]:
            updates = emulator.stock_updates(
                query.get("sku") or None, query.get("warehouse") or None
            )
            return json_reply(200, updates)
        case "POST", ["stock"]:
            quantity = data["quantity"]
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                raise TypeError("quantity must be an integer")
            lead_time = data.get("lead_time")
            emulator.set_stock(str(data["sku"]), str(data["warehouse"]), quantity, lead_time)
            return ok
        case "POST", ["lead-time"]:
            emulator.set_lead_time(str(data["sku"]), str(data["warehouse"]), data["lead_time"])
            return ok
        case "POST", ["orders"]:
            return json_reply(201, emulator.add_order(**data))
        case "GET", ["orders", order_id]:
            return json_reply(200, emulator.order(order_id))
        case "POST", ["orders", order_id, "state"]:
            emulator.set_state(order_id, str(data["state"]))
            return ok
        case "GET", ["orders", order_id, "invoices"]:
            return json_reply(200, emulator.invoices(order_id))
        case "GET", ["orders", order_id, "tracking"]:
            return json_reply(200, emulator.tracking_updates(order_id))
        case "GET", ["feed"]:
            return json_reply(200, emulator.feed_items())
        case "POST", ["faults"]:
            known = {"mode", "count", "seconds", "retry_after", "delay", "path_prefix"}
            if unknown := set(data) - known:
                raise TypeError(f"unknown fault settings {sorted(unknown)}")
            emulator.inject(
                data["mode"],
                data.get("count"),
                data.get("seconds"),
                data.get("retry_after"),
                data.get("delay", 0.0),
                data.get("path_prefix"),
                keep=conn,
            )
            # After "down" this very connection is the only one left open.
            return Reply(ok.status, ok.body, ok.content_type, close=str(data["mode"]) == "down")
        case "DELETE", ["faults"]:
            emulator.clear_faults()
            return ok
        case "GET", ["hook"]:
            return json_reply(200, emulator.hook_deliveries())
        case "POST", ["hook"]:
            emulator.configure_hook(str(data["url"]), dict(data.get("headers") or {}))
            return ok
        case "POST", ["reset"]:
            emulator.reset()
            return ok
        case "GET", ["requests"]:
            return json_reply(200, emulator.requests())
    return None
