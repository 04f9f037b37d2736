"""Per-platform delivery figures for ``/metrics``, read from the delivery tables at scrape time.

The figures live in the database, not in a dispatcher's memory: whichever process answers the
scrape (an API process that dispatches nothing, say) shows every dispatcher's work, and the
counters survive restarts. A failing platform is a figure here, never a reason for ``/readyz``
to say the service is unready.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from adapters.delivery_store import DeliveryStore
from adapters.dispatch_rules import Outcome


class DeliveryCollector:
    """A prometheus_client collector: one query per scrape over the rows still waiting."""

    def __init__(self, store: DeliveryStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        figures = self.store.figures()
        waiting = GaugeMetricFamily(
            "ledger_platform_deliveries",
            "Deliveries waiting for a platform, by state: pending (first attempt), retrying, "
            "failed (refused; waits for a retry).",
            labels=["platform", "state"],
        )
        lag = GaugeMetricFamily(
            "ledger_platform_oldest_pending_seconds",
            "The publish lag: how long the oldest pending or retrying delivery has waited.",
            labels=["platform"],
        )
        failing = GaugeMetricFamily(
            "ledger_platform_failing",
            "1 while the platform's sends fail (or it cannot be served at all), else 0.",
            labels=["platform"],
        )
        attempts = CounterMetricFamily(
            "ledger_platform_delivery_attempts",
            "Delivery attempts by outcome: delivered, retryable_error, refused, "
            "unexpected_error (a defect: see the log).",
            labels=["platform", "outcome"],
        )
        for figure in figures:
            name = figure["platform"]
            for state in ("pending", "retrying", "failed"):
                waiting.add_metric([name, state], figure[state])
            lag.add_metric([name], figure["oldest_pending_seconds"])
            failing.add_metric([name], 1.0 if figure["failing"] else 0.0)
            for outcome in Outcome:
                attempts.add_metric([name, outcome.value], figure["attempts"][outcome.value])
        yield from (waiting, lag, failing, attempts)
