"""How the application service loads many aggregates at once.

The default loads one aggregate per query through the repository. The database adapters offer
one-query versions of the same port (``adapters/bulk_loading.py``); a batch of 50,000 movements
over 50,000 SKUs is where that difference matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application


class AggregateLoader(Protocol):
    def load_many(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, Any]:
        """The current state of each aggregate that exists; absent ones are left out."""

    def positions(self, events: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        """The notification id of each (aggregate id, version) event that exists."""


class RepositoryLoader:
    def __init__(self, app: Application[UUID]) -> None:
        self.app = app

    def load_many(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, Any]:
        found: dict[UUID, Any] = {}
        for aggregate_id in aggregate_ids:
            try:
                found[aggregate_id] = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                continue
        return found

    def positions(self, events: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        # The library's recorder API has no lookup by event; positions are an optimisation
        # for replays that the SQL loaders provide.
        return {}
