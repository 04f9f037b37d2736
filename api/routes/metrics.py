"""GET /metrics: each view's position and lag, in Prometheus' text format."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from adapters.delivery_metrics import DeliveryCollector
from api.dependencies import ContainerDep, Reader
from api.wiring import Container

router = APIRouter(tags=["health"])


class _ViewCollector:
    """Read at scrape time: the figures are a couple of indexed lookups."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def collect(self) -> Iterator[Metric]:
        head, views = self.container.view_health()
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
                "ledger_view_failing", "1 while the view's handler is failing.", labels=["view"]
            ),
        }
        for view in views:
            for key, family in families.items():
                family.add_metric([view["name"]], float(view[key]))
        yield from families.values()


@router.get("/metrics", summary="Prometheus metrics (a read token, as for every endpoint)")
def metrics(container: ContainerDep, _: Reader) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ViewCollector(container))  # type: ignore[arg-type]
    registry.register(DeliveryCollector(container.deliveries))  # type: ignore[arg-type]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
