"""Faults on demand: how the emulator misbehaves, for how long, and on which paths.

Invariant: faults queue up and each ``/api`` request takes the oldest one that matches its
path, so a test states exactly how many requests fail and how; a fault that ran out (by count
or by time) is gone. Modes: any HTTP status from 400 to 599 (``"503"``: VTEX answering 503
during an outage; ``"423"`` answers with VTEX's lock message; ``"429"`` is a rate limit),
``"429-retry-after"`` (a 429 with ``Retry-After``), ``"slow"`` (the normal answer after
``delay``), ``"drop"`` (the request is read and the connection closed unanswered) and
``"down"`` (every connection refused for a while; handled by the emulator itself).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http import HTTPStatus

from adapters.vtex_emulator.server import Reply, error_reply

NAMED_MODES = frozenset({"429-retry-after", "slow", "drop", "down"})


def check_mode(mode: str | int) -> str:
    """The mode as a string; ValueError for a mode that does not exist."""
    text = str(mode)
    if text in NAMED_MODES or (text.isdigit() and len(text) == 3 and 400 <= int(text) <= 599):
        return text
    raise ValueError(
        f"unknown fault mode {text!r}: an HTTP status from 400 to 599, or one of "
        f"{sorted(NAMED_MODES)}"
    )


def lock_reply(account: str, sku_id: str, warehouse_id: str) -> Reply:
    # VTEX documents 423 as text/plain with this very message.
    message = f"Unable to acquire lock for key: {account}_item_logistics_{sku_id}_{warehouse_id}."
    return Reply(423, message.encode(), "text/plain; charset=utf-8")


@dataclass
class Fault:
    mode: str
    remaining: int | None
    until: float | None  # time.monotonic()
    retry_after: float | None
    delay: float
    path_prefix: str | None

    def reply(self, account: str, params: dict[str, str]) -> Reply | None:
        """The injected answer; None for "drop". ("slow" sleeps and is not asked.)"""
        if self.mode == "drop":
            return None
        if self.mode == "429-retry-after":
            reply = error_reply(429, "TooManyRequests", "Too many requests")
            return _with_retry_after(reply, 1.0 if self.retry_after is None else self.retry_after)
        status = int(self.mode)
        if status == 423:
            reply = lock_reply(account, params.get("skuId", "?"), params.get("warehouseId", "?"))
        elif status == 429:
            reply = error_reply(429, "TooManyRequests", "Too many requests")
        else:
            # In sentence case: "Internal Server Error" in a server's log is how the e2e tests
            # spot a 500 of the ledger's own, and the dispatcher logs the platform's answer.
            message = f"{_phrase(status).capitalize()} (injected)"
            reply = error_reply(status, f"Injected{status}", message)
        return reply if self.retry_after is None else _with_retry_after(reply, self.retry_after)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _with_retry_after(reply: Reply, seconds: float) -> Reply:
    # Delta-seconds are integers in RFC 9110; a fraction is kept for fast tests.
    reply.headers["Retry-After"] = str(int(seconds) if seconds == int(seconds) else seconds)
    return reply


class FaultQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        mode: str,
        count: int | None,
        seconds: float | None,
        retry_after: float | None,
        delay: float,
        path_prefix: str | None,
    ) -> None:
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be positive")
        if delay < 0:
            raise ValueError("delay must not be negative")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must not be negative")
        until = None if seconds is None else time.monotonic() + seconds
        with self._lock:
            self._faults.append(Fault(mode, count, until, retry_after, delay, path_prefix))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        now = time.monotonic()
        with self._lock:
            self._faults = [f for f in self._faults if f.until is None or f.until > now]
            for fault in self._faults:
                if fault.path_prefix is not None and not path.startswith(fault.path_prefix):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return fault
        return None
