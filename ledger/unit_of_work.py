"""One unit for every write: load, decide, save, and on a conflict, all of it again.

Every write path (single movements, batches, order commands, platform settings) runs its work
through ``UnitOfWork.run``. The work gets a ``Session`` that lends it aggregates, current to
the last stored event, and stores its events in one transaction. The cost of a load does not
depend on how long an aggregate's history is:

- the session borrows aggregates from the application's ``AggregateCache`` and asks the loader
  only for the events stored after the borrowed version (one query for all of them);
- an aggregate nobody in this process holds starts from its latest snapshot
  (``adapters/bulk_loading.py``), and the session takes a snapshot of every stock whose
  version crosses a multiple of ``SNAPSHOT_INTERVAL`` once its events are stored.

A session gives its aggregates back to the cache only when the work ended without an error:
after a failed save they hold events that were never stored. When the event store refuses the
save (``IntegrityError``: another writer stored an event of the same aggregate first), the
work runs again on fresh state after a short jittered pause, so that colliding writers do not
collide again in lockstep. Work that decided on cached state without reading the database
raises ``Recheck`` to be run again on fresh state before any client hears a refusal.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import IntegrityError

from ledger.errors import Busy
from ledger.stock import Stock

if TYPE_CHECKING:
    from eventsourcing.domain import Aggregate

    from ledger.application import LedgerApplication

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 30
# A cold load replays at most this many events after the latest snapshot: about a millisecond.
SNAPSHOT_INTERVAL = 100
T = TypeVar("T")


class Recheck(Exception):
    """The work decided on state it did not read from the database: run it again on fresh
    state before anyone hears the outcome."""


class Session:
    """The aggregates one attempt of a unit of work reads and writes."""

    def __init__(self, app: LedgerApplication, *, fresh: bool) -> None:
        self.app = app
        # True after a conflict: cached aggregates are brought up to date before use.
        self.fresh = fresh
        self.held: dict[UUID, Any] = {}
        self._versions: dict[UUID, int] = {}

    def load(
        self, aggregate_ids: Iterable[UUID], *, uncached: Sequence[UUID] = ()
    ) -> dict[UUID, Any]:
        """The aggregates that exist among ``aggregate_ids``, current to the last stored
        event, in one query. ``uncached`` ids are loaded in the same query and returned too,
        but neither taken from nor given to the cache (write-once aggregates, such as the
        idempotency records, that nobody loads twice)."""
        wanted = [i for i in dict.fromkeys(aggregate_ids) if i not in self.held]
        borrowed = self.app.aggregates.lend(wanted)
        try:
            loaded = self.app.loader.load_many([*wanted, *uncached], known=borrowed)
        except BaseException:
            self.app.aggregates.give_back(borrowed.values())  # untouched: still good
            raise
        others = {i: loaded.pop(i) for i in uncached if i in loaded}
        self._keep(loaded.values())
        return {**{i: self.held[i] for i in aggregate_ids if i in self.held}, **others}

    def cached(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, Any] | None:
        """Every one of ``aggregate_ids`` from the cache as it is, or None (and nothing
        borrowed) unless the cache holds them all and this attempt is not a fresh one."""
        if self.fresh:
            return None
        wanted = [i for i in dict.fromkeys(aggregate_ids) if i not in self.held]
        borrowed = self.app.aggregates.lend(wanted)
        if len(borrowed) < len(wanted):
            self.app.aggregates.give_back(borrowed.values())
            return None
        self._keep(borrowed.values())
        return {i: self.held[i] for i in aggregate_ids}

    def add(self, aggregate: Aggregate) -> None:
        """An aggregate this work created: cached with the others once saved."""
        self.held[aggregate.id] = aggregate
        self._versions.setdefault(aggregate.id, 0)

    def abandon(self) -> None:
        """The held aggregates were changed by work that will not be saved: none of them goes
        back to the cache (the next load starts from a snapshot)."""
        self.held.clear()
        self._versions.clear()

    def save(self, events: Sequence[Aggregate.Event]) -> dict[tuple[UUID, int], int]:
        """Store the events in one transaction; each event's position by (id, version)."""
        if not events:
            return {}
        return self.app.store_events(events)

    def _keep(self, aggregates: Iterable[Any]) -> None:
        for aggregate in aggregates:
            self.held[aggregate.id] = aggregate
            self._versions.setdefault(aggregate.id, aggregate.version)

    def finish(self) -> None:
        """The work ended well: snapshot the stocks that crossed an interval and give every
        aggregate back to the cache."""
        snapshots = [
            Snapshot.take(aggregate)
            for aggregate_id, aggregate in self.held.items()
            if isinstance(aggregate, Stock)
            and aggregate.version // SNAPSHOT_INTERVAL
            > self._versions[aggregate_id] // SNAPSHOT_INTERVAL
        ]
        if snapshots and self.app.snapshots is not None:
            try:
                self.app.snapshots.put(snapshots)
            except IntegrityError:
                pass  # another process took the same snapshot: the same state
            except Exception:
                # A snapshot only saves work; the write is stored, which is what counts.
                log.warning("could not store %d snapshots", len(snapshots), exc_info=True)
        self.app.aggregates.give_back(self.held.values())


class UnitOfWork:
    def __init__(self, app: LedgerApplication, *, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.app = app
        self.max_attempts = max_attempts

    def run(self, work: Callable[[Session], T], *, busy: str) -> T:
        """Run ``work`` until its save goes through; ``Busy`` (with the sentence ``busy``)
        after ``max_attempts`` conflicts. Any other error of the work propagates at once."""
        fresh = False
        for attempt in range(self.max_attempts):
            session = Session(self.app, fresh=fresh)
            try:
                result = work(session)
            except Recheck:
                fresh = True
                continue
            except IntegrityError:
                fresh = True
                time.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))
                continue
            session.finish()
            return result
        raise Busy(busy)
