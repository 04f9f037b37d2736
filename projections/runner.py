"""Feed a projection from the event store, on SQLite and PostgreSQL alike, and supervise it.

The SQLite recorder cannot be subscribed to, so the runner pulls: it reads notifications after
the view's own tracking position, in pages, and sleeps until poked by a local write or until
the poll interval passes (which covers writers in other processes). A failing handler is logged
with its event, retried with backoff, and reported unhealthy; no event is ever skipped.

Each page is applied in one transaction whose tracking position is the page's last
notification, whether or not the view cares about that event: the position then says exactly
how far the view has read, and its lag is zero once it has read everything.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder

log = logging.getLogger(__name__)

PAGE = 1_000
MAX_BACKOFF = 30.0
# Under a stream of writes, wait this long between catch-ups so that each one applies many
# events in one transaction instead of one event per transaction.
SETTLE = 0.025


class StalePage(Exception):
    """The view moved past ``after`` while this page was read (another runner applied it)."""


class PagedProjection(Protocol):
    name: str
    topics: tuple[str, ...]

    @property
    def view(self) -> TrackingRecorder: ...

    def process_page(self, events: list[tuple[Any, int]], tracking: Tracking, after: int) -> None:
        """Apply (event, notification id) pairs and record ``tracking``, in one transaction,
        provided the view is still at ``after``; else raise ``StalePage`` and change nothing."""


@dataclass
class RunnerHealth:
    name: str
    position: int
    failing: bool
    last_error: str | None


class ViewRunner:
    def __init__(
        self,
        app: Application[object],
        projection: PagedProjection,
        *,
        poll_interval: float = 0.1,
    ) -> None:
        self.app = app
        self.projection = projection
        self.view = projection.view
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        # SQLite keeps every view's tracking in one table keyed by this name.
        self.tracking_name = f"{app.name}.{projection.name}"

    @property
    def name(self) -> str:
        return self.projection.name

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
        return self.view.max_tracking_id(self.tracking_name) or 0

    def health(self) -> RunnerHealth:
        return RunnerHealth(
            self.name, self.position(), self.last_error is not None, self.last_error
        )

    def wait_for(self, position: int, timeout: float) -> bool:
        """Whether the view includes ``position`` within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            if self.position() >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.poke()
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.1)

    def catch_up(self) -> int:
        """Process everything recorded so far; returns how many events were processed."""
        processed = 0
        topics = frozenset(self.projection.topics)
        while True:
            after = self.position()
            page = self.app.recorder.select_notifications(start=after + 1, limit=PAGE)
            if not page:
                return processed
            # Only the events this view cares about are decoded; the others just move it on.
            events = [(self.app.mapper.to_domain_event(n), n.id) for n in page if n.topic in topics]
            try:
                self.projection.process_page(
                    events, Tracking(self.tracking_name, page[-1].id), after
                )
            except StalePage:
                # Another runner (another process) applied this page first: read on from
                # where the view now stands, never applying an event twice.
                continue
            processed += len(events)
            if len(page) < PAGE:
                return processed

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.catch_up()
            except Exception as error:
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception(
                    "view %s failed after position %s; retrying", self.name, self.position()
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self.last_error = None
            backoff = 0.1
            self._wake.wait(self.poll_interval)
            self._stop.wait(SETTLE)
