"""Feed a projection from the event store, on SQLite and PostgreSQL alike, and supervise it.

The SQLite recorder cannot be subscribed to, so the runner pulls: it reads notifications after
the view's own tracking position, in pages, and sleeps until poked by a local write or until
the poll interval passes (which covers writers in other processes). A failing handler is logged
with its event, retried with backoff, and reported unhealthy; no event is ever skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection

log = logging.getLogger(__name__)

PAGE = 500
MAX_BACKOFF = 30.0


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
        projection: Projection[TrackingRecorder],
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
        delay = 0.005
        while True:
            if self.position() >= position or self._beyond_stream(position):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.poke()
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.1)

    def _beyond_stream(self, position: int) -> bool:
        # A position this view never sees (another kind of event) counts as included once
        # every event the view does see up to it is processed.
        topics = list(self.projection.topics)
        newer = self.app.recorder.select_notifications(
            start=self.position() + 1, limit=1, stop=position, topics=topics
        )
        return not newer and (self.app.recorder.max_notification_id() or 0) >= position

    def catch_up(self) -> int:
        """Process everything recorded so far; returns how many events were processed."""
        processed = 0
        while True:
            page = self.app.recorder.select_notifications(
                start=self.position() + 1, limit=PAGE, topics=list(self.projection.topics)
            )
            for notification in page:
                event = self.app.mapper.to_domain_event(notification)
                self.projection.process_event(event, Tracking(self.tracking_name, notification.id))
                processed += 1
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
