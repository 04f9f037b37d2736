"""An in-memory VTEX: inventory with lead times, feed v3, orders, invoices and tracking, hooks,
and faults on demand, behind a real HTTP server.

Invariant: every ``/api`` request is answered in this order: a pending fault (if one matches),
else 404/405 for unknown paths, 401 for missing or wrong app key/token, 400 listing every
problem when the project's own description (``description``) or, where it is on, VTEX's
official schema (``official``) refuses the request, else the endpoint's answer. Requests are
checked even when a fault answers them, so ``requests()`` says for every request whether the
client sent it right, and which layer said so. State changes only through requests that
passed every check, or through the Python and control APIs (which tests and demos drive).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

import httpx

from adapters.vtex_emulator import control, description
from adapters.vtex_emulator import official as official_layer
from adapters.vtex_emulator.description import APP_KEY_HEADER, APP_TOKEN_HEADER, Operation
from adapters.vtex_emulator.faults import Fault, FaultQueue, check_mode, lock_reply
from adapters.vtex_emulator.orders import (
    RELEASED_STATES,
    STATUS_DESCRIPTIONS,
    UNAUTHORIZED_STATES,
    build_order,
    iso,
)
from adapters.vtex_emulator.server import EmulatorServer, Reply, error_reply, json_reply

HOST = "127.0.0.1"
# PROVENANCE: hook notifications must be answered with 200 within 5 s.
HOOK_TIMEOUT = 5.0
# The prose of the PUT inventory endpoint: unlimited stock shows as this many units.
UNLIMITED_QUANTITY = 1_000_000
# VTEX's default lead time: none.
NO_LEAD_TIME = "00:00:00"
FEED_DOMAIN = "Marketplace"


def _account_of(app_key: str) -> str:
    # VTEX app keys read "vtexappkey-<account>-<random>".
    parts = app_key.split("-")
    if len(parts) >= 2 and parts[0] == "vtexappkey" and parts[1]:
        return parts[1]
    return "emulator"


@dataclass
class _Hook:
    url: str
    headers: dict[str, str]


@dataclass
class _Verdict:
    """What the router, the credentials check and the descriptions say about one request."""

    operation: Operation | None = None
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    data: Any = None
    rejection: Reply | None = None
    valid: bool | None = None
    official_valid: bool | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    validation_ms: float | None = None


class VtexEmulator:
    """VTEX's inventory, feed v3, order and invoice endpoints, in memory.

    ``official``: None (the default) turns VTEX's official schema check on wherever it can
    load (see ``official.availability()``); True requires it (RuntimeError saying why it
    cannot load); False leaves only the project's own description. ``self.official`` says
    whether it is on and ``self.official_detail`` why (not).
    """

    def __init__(
        self,
        app_key: str = "vtexappkey-test",
        app_token: str = "secret-token",  # noqa: S107 (the emulator's, not a secret)
        port: int = 0,
        lock_window_ms: float = 0.0,
        official: bool | None = None,
    ) -> None:
        self.app_key = app_key
        self.app_token = app_token
        self.lock_window_ms = lock_window_ms
        self.account = _account_of(app_key)
        found = official_layer.availability()
        if official is None:
            official = found.on
        if official and not found.on:
            raise RuntimeError(f"the official VTEX schema check cannot load: {found.detail}")
        self._official = official_layer.load(found.directory) if official else None
        self.official = self._official is not None
        # Where the files are read from, or why the layer is off.
        self.official_detail = found.detail if official or not found.on else "turned off"
        self._port = port
        self._lock = threading.RLock()  # guards the state below
        self._server_lock = threading.RLock()  # serialises start/stop and the "down" timer
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self._comeback: threading.Timer | None = None
        self._closed = False
        self._faults = FaultQueue()
        self._hook_queue: queue.Queue[tuple[_Hook, dict[str, Any]] | None] = queue.Queue()
        self._hook_thread: threading.Thread | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        with self._lock:
            self._inventory: dict[tuple[str, str], dict[str, Any]] = {}
            self._last_update: dict[tuple[str, str], float] = {}
            self._stock_updates: list[dict[str, Any]] = []
            self._orders: dict[str, dict[str, Any]] = {}
            self._feed: list[dict[str, Any]] = []
            self._invoices: dict[str, list[dict[str, Any]]] = {}
            self._tracking: dict[str, list[dict[str, Any]]] = {}
            self._requests: list[dict[str, Any]] = []
            self._hook: _Hook | None = None
            self._hook_deliveries: list[dict[str, Any]] = []
        self._faults.clear()

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("the emulator has no port before its first start()")
        return f"http://{HOST}:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> VtexEmulator:
        with self._server_lock:
            if self._closed:
                raise RuntimeError("the emulator was closed")
            if self._server is not None:
                return self
            server = self._bind()
            self._port = server.server_address[1]
            # A short poll interval makes stop() (and so the "down" fault) take effect quickly.
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"vtex-emulator-{self._port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def _bind(self) -> EmulatorServer:
        # After stop() the port can linger for a moment; the URL must stay the same.
        deadline = time.monotonic() + 2.0
        while True:
            try:
                return EmulatorServer((HOST, self._port), self)
            except OSError:
                if not self._port or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        """Go down: connections are refused (open ones are cut) until start(); state is kept."""
        with self._server_lock:
            self._cancel_comeback()
            self._stop_server()

    def _stop_server(self, keep: socket.socket | None = None) -> None:
        with self._server_lock:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            self._server = self._thread = None
            server.shutdown()
            server.server_close()
            thread.join()
            with self._connections_lock:
                cut = [conn for conn in self._connections if conn is not keep]
            for conn in cut:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._server_lock:
            self.stop()
            self._closed = True
        self._hook_queue.put(None)

    def __enter__(self) -> VtexEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The server's side (see server.Application).

    def serving(self, server: EmulatorServer) -> bool:
        return self._server is server

    def opened(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def closed(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def control(
        self, method: str, path: str, query: str, body: bytes, conn: socket.socket
    ) -> Reply:
        return control.handle(self, method, path, query, body, conn)

    def _cancel_comeback(self) -> bool:
        timer, self._comeback = self._comeback, None
        if timer is None:
            return False
        timer.cancel()
        return True

    def _come_back(self, timer: threading.Timer) -> None:
        with self._server_lock:
            if self._comeback is not timer or self._closed:
                return  # cancelled, or the emulator is gone
            self._comeback = None
            self.start()

    def status(self) -> dict[str, Any]:
        """What the emulator is: its URL, account and whether VTEX's official check is on."""
        return {
            "url": self.url if self._port else None,
            "running": self.running,
            "account": self.account,
            "lock_window_ms": self.lock_window_ms,
            "official": self.official,
            "official_detail": self.official_detail,
        }

    # ----------------------------------------------------------------- inventory

    def set_stock(
        self, sku_id: str, warehouse_id: str, quantity: int, lead_time: str | None = None
    ) -> None:
        """Set a quantity (and, if given, a lead time) directly, as someone editing the store
        by hand: not recorded by stock_updates() nor lock-windowed."""
        if lead_time is not None:
            _check_lead_time(lead_time)
        with self._lock:
            entry = self._entry(sku_id, warehouse_id)
            entry["quantity"] = quantity
            if lead_time is not None:
                entry["leadTime"] = lead_time

    def set_lead_time(self, sku_id: str, warehouse_id: str, lead_time: str) -> None:
        """Set a SKU's lead time in a warehouse (``dd.hh:mm:ss``), as a seller would in VTEX."""
        _check_lead_time(lead_time)
        with self._lock:
            self._entry(sku_id, warehouse_id)["leadTime"] = lead_time

    def _entry(self, sku_id: str, warehouse_id: str) -> dict[str, Any]:
        return self._inventory.setdefault(
            (sku_id, warehouse_id),
            {"quantity": 0, "unlimitedQuantity": False, "leadTime": NO_LEAD_TIME},
        )

    def stock(self, sku_id: str, warehouse_id: str) -> int | None:
        with self._lock:
            entry = self._inventory.get((sku_id, warehouse_id))
            return None if entry is None else entry["quantity"]

    def lead_time(self, sku_id: str, warehouse_id: str) -> str | None:
        with self._lock:
            entry = self._inventory.get((sku_id, warehouse_id))
            return None if entry is None else entry["leadTime"]

    def inventory(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"sku": sku, "warehouse": warehouse, **entry}
                for (sku, warehouse), entry in sorted(self._inventory.items())
            ]

    def stock_updates(
        self, sku_id: str | None = None, warehouse_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every accepted stock update (PUT or PATCH .../quantity), oldest first:
        {"method", "sku", "warehouse", "quantity", "at"} where ``at`` is the time.time() at
        which the request was received."""
        with self._lock:
            return [
                dict(update)
                for update in self._stock_updates
                if (sku_id is None or update["sku"] == sku_id)
                and (warehouse_id is None or update["warehouse"] == warehouse_id)
            ]

    def _reserved(self, sku_id: str, warehouse_id: str) -> int:
        """What open orders hold, as VTEX's reservedQuantity shows it."""
        reserved = 0
        for order in self._orders.values():
            if order["status"] in RELEASED_STATES:
                continue
            for info in order["shippingData"]["logisticsInfo"]:
                if order["items"][info["itemIndex"]]["id"] != sku_id:
                    continue
                reserved += sum(
                    d["quantity"] for d in info["deliveryIds"] if d["warehouseId"] == warehouse_id
                )
        return reserved

    # ----------------------------------------------------------------- orders

    def add_order(
        self,
        order_id: str,
        items: list[dict[str, Any]],
        state: str = "payment-pending",
        carrier: str = "Correios",
        warehouse_id: str = "1_1",
        value_cents: int | None = None,
    ) -> dict[str, Any]:
        """Create an order (items: [{"sku", "quantity", "price" in cents}, optional "name",
        "refId", "listPrice", "sellingPrice"]) and announce it like VTEX does: a feed item
        and, if a hook is configured, a hook notification (lastState "")."""
        now = time.time()
        order = build_order(
            order_id,
            items,
            state=state,
            carrier=carrier,
            warehouse_id=warehouse_id,
            value_cents=value_cents,
            account=self.account,
            now=now,
        )
        with self._lock:
            if order_id in self._orders:
                raise ValueError(f"order {order_id} already exists")
            self._orders[order_id] = order
            self._emit(order, "", order["creationDate"], order["creationDate"])
            return copy.deepcopy(order)

    def set_state(self, order_id: str, state: str, *, notify: bool = True) -> None:
        """Move an order to ``state``: a feed item plus a hook notification (in the background).
        Setting the state it already has is a no-op, as VTEX emits no event then. With
        ``notify=False`` the change is silent (a lost notification, or a feed item another
        reader took): only reading the order shows it."""
        with self._lock:
            order = self._orders[order_id]
            self._change_state(order, state, time.time(), notify=notify)

    def _change_state(
        self, order: dict[str, Any], state: str, now: float, *, notify: bool = True
    ) -> None:
        last_state, last_change = order["status"], order["lastChange"]
        if state == last_state:
            return
        current = iso(now)
        order["status"] = state
        order["statusDescription"] = STATUS_DESCRIPTIONS.get(state, state)
        order["lastChange"] = current
        if state == "invoiced":
            order["invoicedDate"] = current
        if order["authorizedDate"] is None and state not in UNAUTHORIZED_STATES:
            order["authorizedDate"] = current
        if notify:
            self._emit(order, last_state, last_change, current)

    def _emit(self, order: dict[str, Any], last_state: str, last_change: str, current: str) -> None:
        event_id = uuid.uuid4().hex.upper()
        # Handles are opaque to clients; VTEX's are long base64 tokens.
        handle = base64.b64encode(f"{self.account}:{event_id}:{uuid.uuid4()}".encode()).decode()
        self._feed.append(
            {
                "eventId": event_id,
                "handle": handle,
                "domain": FEED_DOMAIN,
                "state": order["status"],
                "lastState": last_state,
                "orderId": order["orderId"],
                "lastChange": last_change,
                "currentChange": current,
                # Not in the schema; the feed v3 guide shows it on every item.
                "origin": {"account": self.account, "key": self.app_key},
            }
        )
        if self._hook is not None:
            self._start_hook_worker()
            payload = {
                "Domain": FEED_DOMAIN,
                "OrderId": order["orderId"],
                "State": order["status"],
                "LastState": last_state,
                "LastChange": last_change,
                "CurrentChange": current,
                "Origin": {"Account": self.account, "Key": self.app_key},
            }
            self._hook_queue.put((self._hook, payload))

    def order(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._orders[order_id])

    def feed_items(self) -> list[dict[str, Any]]:
        """The feed items not committed yet, oldest first."""
        with self._lock:
            return copy.deepcopy(self._feed)

    def invoices(self, order_id: str) -> list[dict[str, Any]]:
        """Every invoice POST body accepted for the order, exactly as received, oldest first
        (re-sent invoice numbers included). Tracking PATCHes are kept apart, see
        tracking_updates(); the merged result is in order(...)["packageAttachment"]."""
        with self._lock:
            return copy.deepcopy(self._invoices.get(order_id, []))

    def tracking_updates(self, order_id: str) -> list[dict[str, Any]]:
        """Every accepted PATCH .../invoice/{invoiceNumber} body, plus its "invoiceNumber"."""
        with self._lock:
            return copy.deepcopy(self._tracking.get(order_id, []))

    # ----------------------------------------------------------------- hook

    def configure_hook(self, url: str, headers: dict[str, str]) -> None:
        """Like VTEX's hook configuration: POST {"hookConfig": "ping"} first and refuse the
        hook (RuntimeError) unless it answers 200."""
        hook = _Hook(url, dict(headers))
        with httpx.Client(timeout=HOOK_TIMEOUT) as client:
            delivery = self._deliver(client, hook, "ping", {"hookConfig": "ping"})
        if delivery["status"] != 200:
            raise RuntimeError(
                f"hook {url} answered the ping with {delivery['status'] or delivery['error']}"
            )
        with self._lock:
            self._hook = hook

    def hook_deliveries(self) -> list[dict[str, Any]]:
        """Every hook POST: {"kind": "ping"|"notification", "url", "body", "status" (None if
        no answer), "error", "at", "seconds"}, in the order they were sent."""
        with self._lock:
            return copy.deepcopy(self._hook_deliveries)

    def _start_hook_worker(self) -> None:
        # One worker delivers notifications in the order the states changed.
        if self._hook_thread is None:
            self._hook_thread = threading.Thread(
                target=self._hook_worker, name="vtex-emulator-hook", daemon=True
            )
            self._hook_thread.start()

    def _hook_worker(self) -> None:
        with httpx.Client(timeout=HOOK_TIMEOUT) as client:
            while (job := self._hook_queue.get()) is not None:
                hook, payload = job
                self._deliver(client, hook, "notification", payload)

    def _deliver(
        self, client: httpx.Client, hook: _Hook, kind: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        at = time.time()
        status: int | None = None
        error: str | None = None
        try:
            headers = {"Content-Type": "application/json", **hook.headers}
            status = client.post(hook.url, json=payload, headers=headers).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivery = {
            "kind": kind,
            "url": hook.url,
            "body": payload,
            "status": status,
            "error": error,
            "at": at,
            "seconds": time.time() - at,
        }
        with self._lock:
            self._hook_deliveries.append(delivery)
        return delivery

    # ----------------------------------------------------------------- faults

    def fault(
        self,
        mode: str | int,
        *,
        count: int | None = None,
        seconds: float | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
        path_prefix: str | None = None,
    ) -> None:
        """Misbehave for the next ``count`` matching requests, or for ``seconds``, or (neither)
        until clear_faults(). ``mode``: an HTTP status from 400 to 599 (503 for an outage;
        with ``retry_after``, the answer carries Retry-After), "429-retry-after", "slow"
        (``delay``), "drop" or "down" (see ``faults``). Faults queue up: each request takes
        the oldest one that matches.

        "down" is different: it refuses every connection for ``seconds`` (required) right now,
        then comes back by itself; count and path_prefix do not apply to it."""
        self.inject(mode, count, seconds, retry_after, delay, path_prefix, None)

    def inject(
        self,
        mode: str | int,
        count: int | None,
        seconds: float | None,
        retry_after: float | None,
        delay: float,
        path_prefix: str | None,
        keep: socket.socket | None,
    ) -> None:
        """``fault()``, keeping the connection ``keep`` open through a "down" (the control
        API's own connection, which must still get its answer)."""
        mode = check_mode(mode)
        if mode != "down":
            self._faults.add(mode, count, seconds, retry_after, delay, path_prefix)
            return
        if seconds is None or seconds <= 0:
            raise ValueError('"down" needs positive seconds: it comes back by itself')
        if count is not None or path_prefix is not None:
            raise ValueError('"down" refuses every connection: no count, no path_prefix')
        with self._server_lock:
            if self._server is None:
                raise RuntimeError("the emulator is not running")
            self._cancel_comeback()
            self._stop_server(keep)
            timer = threading.Timer(seconds, lambda: self._come_back(timer))
            timer.daemon = True
            self._comeback = timer
            timer.start()

    def clear_faults(self) -> None:
        """Drop pending faults; if a "down" fault is running, come back now."""
        self._faults.clear()
        with self._server_lock:
            if self._cancel_comeback() and not self._closed:
                self.start()

    # ----------------------------------------------------------------- inspection

    def requests(self) -> list[dict[str, Any]]:
        """Every /api request received, oldest first: {"method", "path" (raw, as it arrived:
        still percent-encoded), "params" (the path parameters, decoded), "query" (dict),
        "status" (None when dropped), "at" (time.time() when received), "valid" (True/False
        per every check that ran; None when not checked: 404, 405, 401), "official_valid"
        (the same for VTEX's official schema alone; None when that layer is off), "errors"
        (each with its "layer": "own" or "official"), "fault" (the mode that answered, or
        None), "validation_ms"}."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def reset(self) -> None:
        """Forget everything (inventory, orders, feed, invoices, logs, faults, hook); a running
        "down" fault ends now."""
        self.clear_faults()
        self._reset_state()

    # ----------------------------------------------------------------- the VTEX API

    def api(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: Message,
        body: bytes,
        received: float,
    ) -> Reply | None:
        fault = self._faults.take(path)
        verdict = self._examine(method, path, query_string, headers, body)
        reply = self._answer(fault, verdict, received)
        with self._lock:
            self._requests.append(
                {
                    "method": method,
                    "path": path,
                    "params": verdict.params,
                    "query": verdict.query,
                    "status": None if reply is None else reply.status,
                    "at": received,
                    "valid": verdict.valid,
                    "official_valid": verdict.official_valid,
                    "errors": verdict.errors,
                    "fault": None if fault is None else fault.mode,
                    "validation_ms": verdict.validation_ms,
                }
            )
        return reply

    def _answer(self, fault: Fault | None, verdict: _Verdict, received: float) -> Reply | None:
        if fault is not None:
            if fault.mode != "slow":
                return fault.reply(self.account, verdict.params)
            time.sleep(fault.delay)  # then the normal answer
        if verdict.rejection is not None:
            return verdict.rejection
        assert verdict.operation is not None
        action = getattr(self, f"_{verdict.operation.action}")
        return action(verdict, received)

    def _examine(
        self, method: str, path: str, query_string: str, headers: Message, body: bytes
    ) -> _Verdict:
        found = description.match(method, path)
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        operation = found.operation
        if operation is None:
            if found.allowed:
                reply = error_reply(405, "MethodNotAllowed", f"{method} is not allowed on {path}")
                reply.headers["Allow"] = ", ".join(found.allowed)
                return _Verdict(query=query, rejection=reply)
            reply = error_reply(404, "NotFound", f"No route for {method} {path}")
            return _Verdict(query=query, rejection=reply)
        verdict = _Verdict(operation=operation, params=found.params, query=query)
        if (
            headers.get(APP_KEY_HEADER) != self.app_key
            or headers.get(APP_TOKEN_HEADER) != self.app_token
        ):
            verdict.rejection = error_reply(
                401, "Unauthorized", f"Missing or wrong {APP_KEY_HEADER} / {APP_TOKEN_HEADER}"
            )
            return verdict
        started = time.perf_counter()
        errors = description.problems(operation, query_string, headers, body)
        if self._official is not None:
            refused = self._official.request_problems(
                operation, path, found.params, query_string, headers, body
            )
            verdict.official_valid = not refused
            errors += refused
        verdict.validation_ms = (time.perf_counter() - started) * 1000
        verdict.valid = not errors
        verdict.errors = errors
        if errors:
            verdict.rejection = error_reply(
                400,
                "InvalidRequest",
                f"{method} {operation.pattern} breaks the VTEX contract",
                errors,
            )
        elif operation.body is not None:
            verdict.data = json.loads(body)
        return verdict

    def _put_inventory(self, verdict: _Verdict, received: float) -> Reply:
        data = verdict.data
        refused = self._update_stock(verdict, received, data["leadTime"])
        # The prose: "Successful requests receive a 200 OK status code with true in the body".
        return refused or json_reply(200, True)

    def _patch_quantity(self, verdict: _Verdict, received: float) -> Reply:
        refused = self._update_stock(verdict, received, None)
        # The spec's only success is 204 No Content.
        return refused or Reply(204)

    def _update_stock(
        self, verdict: _Verdict, received: float, lead_time: str | None
    ) -> Reply | None:
        """A PUT or PATCH of one SKU and warehouse; the 423 reply if it collides with the
        previous update inside the lock window (both methods share it, as they share VTEX's
        lock key). ``lead_time`` None leaves the lead time as it is."""
        sku_id, warehouse_id = verdict.params["skuId"], verdict.params["warehouseId"]
        data = verdict.data
        key = (sku_id, warehouse_id)
        assert verdict.operation is not None
        with self._lock:
            last = self._last_update.get(key)
            window = self.lock_window_ms / 1000
            if window > 0 and last is not None and abs(received - last) < window:
                # PROVENANCE: colliding updates get 423 and only the first is kept.
                return lock_reply(self.account, sku_id, warehouse_id)
            entry = self._entry(sku_id, warehouse_id)
            entry["quantity"] = data["quantity"]
            entry["unlimitedQuantity"] = data["unlimitedQuantity"]
            if lead_time is not None:
                entry["leadTime"] = lead_time
            self._last_update[key] = received
            self._stock_updates.append(
                {
                    "method": verdict.operation.method,
                    "sku": sku_id,
                    "warehouse": warehouse_id,
                    "quantity": data["quantity"],
                    "at": received,
                }
            )
        return None

    def _get_inventory(self, verdict: _Verdict, received: float) -> Reply:
        sku_id = verdict.params["skuId"]
        with self._lock:
            balance = [
                {
                    "warehouseId": warehouse,
                    "warehouseName": f"Warehouse {warehouse}",
                    "totalQuantity": (
                        UNLIMITED_QUANTITY if entry["unlimitedQuantity"] else entry["quantity"]
                    ),
                    "reservedQuantity": self._reserved(sku_id, warehouse),
                    "hasUnlimitedQuantity": entry["unlimitedQuantity"],
                    "timeToRefill": None,
                    "dateOfSupplyUtc": None,
                    "leadTime": entry["leadTime"],
                }
                for (sku, warehouse), entry in sorted(self._inventory.items())
                if sku == sku_id
            ]
        return json_reply(200, {"skuId": sku_id, "balance": balance})

    def _get_feed(self, verdict: _Verdict, received: float) -> Reply:
        # VTEX hides items handed out for a visibility timeout; here uncommitted items simply
        # come back on the next read, which is the behaviour clients must cope with anyway.
        with self._lock:
            items = copy.deepcopy(self._feed[: int(verdict.query["maxlot"])])
        return json_reply(200, items)

    def _commit_feed(self, verdict: _Verdict, received: float) -> Reply:
        handles = set(verdict.data["handles"])
        with self._lock:
            # Unknown handles are ignored, as committing twice must be harmless.
            self._feed = [item for item in self._feed if item["handle"] not in handles]
        # The spec's 200 has no content.
        return Reply(200)

    def _get_order(self, verdict: _Verdict, received: float) -> Reply:
        order_id = verdict.params["orderId"]
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                return error_reply(404, "OMS003", f"Order {order_id} not found")
            return json_reply(200, order)

    def _post_invoice(self, verdict: _Verdict, received: float) -> Reply:
        order_id = verdict.params["orderId"]
        data = verdict.data
        receipt = uuid.uuid4().hex
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                return error_reply(404, "OMS003", f"Order {order_id} not found")
            self._invoices.setdefault(order_id, []).append(copy.deepcopy(data))
            packages = order["packageAttachment"]["packages"]
            known = {p["invoiceNumber"] for p in packages}
            # The prose: re-sending an invoiceNumber only yields a new receipt.
            if data["invoiceNumber"] not in known:
                packages.append(_package(order, data))
                if data["type"] == "Output":
                    self._change_state(order, "invoiced", received)
        return json_reply(200, {"date": iso(received), "orderId": order_id, "receipt": receipt})

    def _patch_invoice(self, verdict: _Verdict, received: float) -> Reply:
        order_id, number = verdict.params["orderId"], verdict.params["invoiceNumber"]
        data = verdict.data
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                return error_reply(404, "OMS003", f"Order {order_id} not found")
            packages = order["packageAttachment"]["packages"]
            package = next((p for p in packages if p["invoiceNumber"] == number), None)
            if package is None:
                return error_reply(404, "OMS004", f"Invoice {number} not found in order {order_id}")
            self._tracking.setdefault(order_id, []).append({**data, "invoiceNumber": number})
            for name in ("trackingNumber", "trackingUrl", "courier"):
                if name in data:
                    package[name] = data[name]
        receipt = uuid.uuid4().hex
        return json_reply(200, {"date": iso(received), "orderId": order_id, "receipt": receipt})


def _check_lead_time(lead_time: str) -> None:
    if not description.is_lead_time(lead_time):
        raise ValueError(f"a lead time reads dd.hh:mm:ss, got {lead_time!r}")


def _package(order: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    index_of = {item["id"]: index for index, item in enumerate(order["items"])}
    return {
        "items": [
            {
                "itemIndex": index_of.get(item["id"], -1),
                "quantity": item["quantity"],
                "price": item["price"],
                "description": None,
                "unitMultiplier": 1,
            }
            for item in data["items"]
        ],
        "courier": data.get("courier"),
        "invoiceNumber": data["invoiceNumber"],
        "invoiceValue": int(data["invoiceValue"]),
        "invoiceUrl": data.get("invoiceUrl"),
        "issuanceDate": data["issuanceDate"],
        "trackingNumber": data.get("trackingNumber"),
        "invoiceKey": data.get("invoiceKey"),
        "trackingUrl": data.get("trackingUrl"),
        "embeddedInvoice": data.get("embeddedInvoice") or "",
        "type": data["type"],
        "courierStatus": None,
        "cfop": None,
        "restitutions": {},
        "volumes": 1,
        "EnableInferItems": None,
    }
