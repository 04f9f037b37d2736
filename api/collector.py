"""Pause the cyclic garbage collector while a batch request is handled.

A 50,000-row batch allocates millions of objects (the parsed body, requests, aggregates,
events, results) that live until the response is sent, and none of them form cycles that
need collecting early; with the collector running, each generation-2 pass rescans all of
them, and the passes grow with the batch. Paused for the request, it runs once afterwards.
Measured in docs/benchmarks.md.
"""

from __future__ import annotations

import gc
import threading

from starlette.types import ASGIApp, Receive, Scope, Send

_lock = threading.Lock()
_paused = 0


def _pause() -> None:
    global _paused
    with _lock:
        _paused += 1
        gc.disable()


def _resume() -> None:
    global _paused
    with _lock:
        _paused -= 1
        if _paused == 0:
            gc.enable()


class CollectorPaused:
    """ASGI middleware: no garbage collection while a request to one of ``paths`` runs."""

    def __init__(self, app: ASGIApp, paths: frozenset[str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        _pause()
        try:
            await self.app(scope, receive, send)
        finally:
            _resume()
