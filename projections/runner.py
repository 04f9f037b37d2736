"""Feed each view from the event store and supervise it, on SQLite and PostgreSQL alike.

``PollingRunner`` reads pages after the view's position and applies each in one transaction,
then sleeps until poked or until its poll interval passes. It is poked by a write of its own
process and, on PostgreSQL, by the process's one LISTEN (``projections.notify_waker``); the
poll covers writers in other processes on SQLite and a lost notification on PostgreSQL. Under a
stream of writes it waits ``SETTLE`` before reading, so that one transaction applies many
events, and the view's position says exactly how far it has read (its lag is zero once it has
read everything, even when the newest events are none of its business).

A page that fails is applied one event at a time up to the event the view cannot apply, which
is logged, retried with backoff and reported (``/readyz``, ``/metrics``) by its position and
type; no event is ever skipped. Two processes may run the same view: each page checks the
view's position under the view's lock first, and the loser reads on from where the winner left
it (``StalePage``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ledger.application import LedgerApplication
from projections.base import EventNotApplied, StalePage, View, ViewProjection
from projections.status import ViewState

log = logging.getLogger(__name__)

PAGE = 1_000
MAX_BACKOFF = 30.0
# Under a stream of writes, wait this long between catch-ups so that each one applies many
# events in one transaction instead of one event per transaction.
SETTLE = 0.1


@dataclass
class RunnerHealth:
    name: str
    position: int
    failing: bool
    last_error: str | None
    # While failing on one event: what /readyz may show without a token (no data, no message).
    problem: str | None = None


class Runner(Protocol):
    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def poke(self, _position: int | None = None) -> None: ...
    def position(self) -> int: ...
    def health(self) -> RunnerHealth: ...
    def state(self) -> ViewState: ...


class _Supervised:
    """Start, stop, health and read-your-writes waiting, shared by both runners."""

    def __init__(self, name: str, view: View) -> None:
        self.name = name
        self.view = view
        self.last_error: str | None = None
        self.problem: str | None = None
        # Called when the view starts or stops failing (or fails otherwise): the process's
        # ``StatusReporter`` then records it for the other processes (projections/status.py).
        self.on_change: Callable[[], None] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"view-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def poke(self, _position: int | None = None) -> None:
        self._wake.set()

    def position(self) -> int:
        return self.view.position()

    def health(self) -> RunnerHealth:
        return RunnerHealth(
            self.name, self.position(), self.last_error is not None, self.last_error, self.problem
        )

    def state(self) -> ViewState:
        """What this runner knows in memory (no database read)."""
        return ViewState(self.name, self.last_error, self.problem)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _recovered(self) -> None:
        if self.last_error is None:
            return
        self.last_error = None
        self.problem = None
        self._changed()

    def _failed(self, error: BaseException, backoff: float) -> float:
        """Log, report and wait; never raises (the database may be what failed)."""
        before = self.last_error
        self.last_error = f"{type(error).__name__}: {error}"
        self.problem = error.summary if isinstance(error, EventNotApplied) else type(error).__name__
        if self.last_error != before:
            self._changed()
        log.error(
            "view %s failed (%s); retrying in %.1f s", self.name, error, backoff, exc_info=error
        )
        self._stop.wait(backoff)
        return min(backoff * 2, MAX_BACKOFF)

    def _run(self) -> None:
        raise NotImplementedError


def catch_up(app: LedgerApplication, projection: ViewProjection, page_size: int = PAGE) -> int:
    """Apply everything recorded so far to the view; returns how many events it applied.

    Only the view's own topics are read: a view of a few kinds of event (products, orders)
    would otherwise fetch and skip every movement's row. Its position still moves to the
    head read first, so ``?after=`` of any write reaches it: ids are committed in order (the
    recorder inserts under a table lock), so nothing at or below that head can appear later."""
    applied = 0
    while True:
        after = projection.view.position()
        head = app.recorder.max_notification_id() or 0
        if head <= after:
            return applied
        page = app.recorder.select_notifications(
            start=after + 1, limit=page_size, stop=head, topics=projection.topics
        )
        full = len(page) == page_size
        last = page[-1].id if full else head
        try:
            applied += projection.process_page(page, app.mapper, after=after, last=last)
        except StalePage:
            continue  # another process applied it: read on from where the view stands
        if not full:
            return applied


class PollingRunner(_Supervised):
    """Reads the store after the view's position, whenever poked or every ``poll_interval``."""

    def __init__(
        self, app: LedgerApplication, projection: ViewProjection, *, poll_interval: float = 0.1
    ) -> None:
        super().__init__(projection.name, projection.view)
        self.app = app
        self.projection = projection
        self.poll_interval = poll_interval

    def catch_up(self) -> int:
        return catch_up(self.app, self.projection)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.catch_up()
            except Exception as error:
                backoff = self._failed(error, backoff)
                continue
            self._recovered()
            backoff = 0.1
            self._wake.wait(self.poll_interval)
            self._stop.wait(SETTLE)
