"""How the application service loads many aggregates at once, and keeps the hot ones in memory.

The default loads one aggregate per query through the repository. The database adapters offer
one-query versions of the same port (``adapters/bulk_loading.py``); a batch of 50,000 movements
over 50,000 SKUs is where that difference matters.

A stock that has seen thousands of movements would cost thousands of events on every write if it
were replayed from scratch, so the cost of a load is bounded twice over:

- the application keeps recently used aggregates in an ``AggregateCache`` and asks the loader
  only for the events recorded after the cached version (written by another process, say). The
  cache lends aggregates out and takes them back only after a successful save, so an aggregate
  changed by a write that then failed is never reused;
- an aggregate not in the cache (another process's SKU, a restart) starts from its latest
  snapshot, taken every ``SNAPSHOT_INTERVAL`` events (``ledger/unit_of_work.py``), and replays
  only the events after it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application


class AggregateLoader(Protocol):
    def load_many(
        self, aggregate_ids: Sequence[UUID], known: Mapping[UUID, Any] | None = None
    ) -> dict[UUID, Any]:
        """The current state of each aggregate that exists; absent ones are left out.

        Aggregates in ``known`` are brought up to date in place, with only the events recorded
        after their version.
        """

    def positions(self, events: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        """The notification id of each (aggregate id, version) event that exists."""

    def versions_at(self, positions: Sequence[int]) -> dict[int, tuple[UUID, int]]:
        """The (aggregate id, version) of the event at each notification id that exists."""


class RepositoryLoader:
    def __init__(self, app: Application[UUID]) -> None:
        self.app = app

    def load_many(
        self, aggregate_ids: Sequence[UUID], known: Mapping[UUID, Any] | None = None
    ) -> dict[UUID, Any]:
        # The repository cannot fast-forward a given aggregate: load everything afresh.
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

    def versions_at(self, positions: Sequence[int]) -> dict[int, tuple[UUID, int]]:
        # Nor by position: callers then load from the first event.
        return {}


class AggregateCache:
    """A bounded, least-recently-used store of aggregates as last saved by this process."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._items: OrderedDict[UUID, Any] = OrderedDict()
        self._lock = threading.Lock()

    def lend(self, aggregate_ids: Iterable[UUID]) -> dict[UUID, Any]:
        """Take the cached ones out: whoever borrows them must ``give_back`` or drop them."""
        with self._lock:
            return {
                aggregate_id: aggregate
                for aggregate_id in aggregate_ids
                if (aggregate := self._items.pop(aggregate_id, None)) is not None
            }

    def give_back(self, aggregates: Iterable[Any]) -> None:
        if self.max_size <= 0:
            return
        with self._lock:
            for aggregate in aggregates:
                held = self._items.get(aggregate.id)
                # Two borrowers of one id (a read and a write, each with its own copy) may
                # give back in either order: keep the later version.
                if held is None or held.version <= aggregate.version:
                    self._items[aggregate.id] = aggregate
                self._items.move_to_end(aggregate.id)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (as a restarted process would)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
