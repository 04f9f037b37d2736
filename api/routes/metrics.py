"""GET /metrics: Prometheus' text format, with a read token like every endpoint but the probes.

Process and garbage-collector figures, HTTP requests by route, and the ledger's own: the event
store's position, each view's position, lag and failure, how many stocks are oversold
(available below zero) in the stock-levels view, and each platform's deliveries (waiting by
state, the publish lag, whether it is failing, attempts by outcome).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from adapters.delivery_metrics import DeliveryCollector
from api import process_metrics
from api.dependencies import Reader
from api.http_metrics import HttpMetrics
from api.schemas import ERRORS
from api.wiring import Container

router = APIRouter(tags=["health"])


class _LedgerCollector:
    """Read at scrape time: a few indexed lookups."""

    def __init__(self, container: Callable[[], Container | None]) -> None:
        self.container = container

    def collect(self) -> Iterator[Metric]:
        container = self.container()
        if container is None:  # scraped before start-up finished
            return
        up = GaugeMetricFamily("ledger_database_up", "1 while the database answers.")
        try:
            head, views = container.view_health()
            oversold_count = container.stock_levels.oversold_count()
        except Exception:  # the figures the process has are still worth a scrape
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        store = GaugeMetricFamily(
            "ledger_event_store_position", "Notification id of the newest stored event."
        )
        store.add_metric([], head)
        yield store
        families = {
            "position": GaugeMetricFamily(
                "ledger_view_position", "Last event position the view has read.", labels=["view"]
            ),
            "lag": GaugeMetricFamily(
                "ledger_view_lag_events",
                "Events stored but not yet read by the view.",
                labels=["view"],
            ),
            "failing": GaugeMetricFamily(
                "ledger_view_failing",
                "1 while the view cannot apply an event (see /readyz and the log).",
                labels=["view"],
            ),
        }
        for view in views:
            for key, family in families.items():
                family.add_metric([view["name"]], float(view[key]))
        yield from families.values()
        oversold = GaugeMetricFamily(
            "ledger_stocks_oversold",
            "Stocks (SKU and warehouse) whose available quantity is below zero, as the "
            "stock-levels view has them.",
        )
        oversold.add_metric([], oversold_count)
        yield oversold
        try:
            deliveries = list(DeliveryCollector(container.deliveries).collect())
        except Exception:  # the database went away between two queries: next scrape
            return
        yield from deliveries


def build_registry(
    container: Callable[[], Container | None],
) -> tuple[CollectorRegistry, HttpMetrics]:
    """One registry per application: the process's, the HTTP requests' and the ledger's.

    Under ``serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set), the HTTP figures are the
    sum of every worker's and the process figures are each process's, labelled
    (``api/process_metrics.py``): a scrape answered by any worker shows them all."""
    registry = CollectorRegistry(auto_describe=False)
    shared = process_metrics.folder()
    if shared is None:
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        http = HttpMetrics(registry)
    else:
        MultiProcessCollector(registry, path=shared)
        registry.register(process_metrics.TreeProcessCollector(shared))  # type: ignore[arg-type]
        http = HttpMetrics(None)  # its values live in the shared files, read by the collector
    PlatformCollector(registry=registry)
    registry.register(_LedgerCollector(container))  # type: ignore[arg-type]
    return registry, http


@router.get(
    "/metrics",
    summary="Prometheus metrics (a read token, as for every endpoint but the probes)",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            "description": "Prometheus' text exposition format.",
        },
        **{k: v for k, v in ERRORS.items() if k != 422},
    },
)
def metrics(request: Request, _: Reader) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
