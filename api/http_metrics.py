"""HTTP request metrics: how many requests each route answered, with which status, how fast.

A plain ASGI middleware (no per-request task or body wrapping, so a write costs a few
microseconds more, not a copy of its body). Routes are labelled by their template
(``/stock/{sku}``), never by the path a client sent, so the number of series stays bounded
whatever clients send; unmatched paths share one label.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"
# Any other method a client invents shares one label, as unmatched paths do.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "ledger_http_request_duration_seconds",
            "Time from a request's arrival to its response's start, by method and route.",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        # labels() hashes and locks on every call; a write path pays it twice per request.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, template: str, status: int, elapsed: float) -> None:
        key = (method if method in METHODS else "other", template, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(key[0], template, str(status)),
                self.duration.labels(key[0], template),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler is answered 500 by Starlette
        answered_after: float | None = None

        async def observed_send(message: Message) -> None:
            nonlocal status, answered_after
            if message["type"] == "http.response.start":
                status = message["status"]
                answered_after = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            elapsed = (
                answered_after if answered_after is not None else time.perf_counter() - started
            )
            self.metrics.observe(scope["method"], template, status, elapsed)
