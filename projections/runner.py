"""Feed each view from the event store and supervise it, on SQLite and PostgreSQL alike.

- PostgreSQL: the library's ``ProjectionRunner`` follows the store through LISTEN/NOTIFY. Ours
  subscribes to every event and hands the view, in one transaction, whatever the subscription
  has already fetched (up to 500 notifications), instead of one transaction per event: under a
  stream of writes the view keeps up with a tenth of the commits, and its position says exactly
  how far it has read, so its lag is zero once it has read everything.
- SQLite: its recorder cannot be subscribed to, so ``PollingRunner`` pulls pages after the
  view's position and sleeps until poked by a local write or until the poll interval passes
  (which covers writers in other processes).

Both hand pages to the same ``ViewProjection.process_page``. A page that fails is applied one
event at a time up to the event the view cannot apply, which is logged, retried with backoff
and reported (``/readyz``, ``/metrics``) by its position and type; no event is ever skipped.
Two processes may run the same view: each page checks the view's position under the view's
lock first, and the loser reads on from where the winner left it (``StalePage``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.projection import ApplicationSubscription, BaseProjectionRunner, ProjectionRunner
from eventsourcing.utils import EnvType

from ledger.application import LedgerApplication
from projections.base import EventNotApplied, StalePage, View, ViewProjection
from projections.library_internals import construct_env, hand_error_to, has_fetched
from projections.status import ViewState

log = logging.getLogger(__name__)

PAGE = 1_000
MAX_BACKOFF = 30.0
# Under a stream of writes, wait this long between catch-ups so that each one applies many
# events in one transaction instead of one event per transaction.
SETTLE = 0.025


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
    """Apply everything recorded so far to the view; returns how many events it applied."""
    applied = 0
    while True:
        after = projection.view.position()
        page = app.recorder.select_notifications(start=after + 1, limit=page_size)
        if not page:
            return applied
        try:
            applied += projection.process_page(page, app.mapper, after=after)
        except StalePage:
            continue  # another process applied it: read on from where the view stands
        if len(page) < page_size:
            return applied


class PollingRunner(_Supervised):
    """Our own in-process subscription, for SQLite (it also works on PostgreSQL)."""

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


class PagedProjectionRunner(ProjectionRunner[LedgerApplication, View]):
    """``ProjectionRunner`` subscribed to every event, applying what it has fetched as a page."""

    def __init__(
        self, *, projection_class: type[ViewProjection], view_class: type[View], env: EnvType
    ) -> None:
        self.view = (
            InfrastructureFactory[View]
            .construct(env=construct_env(projection_class.name, env))
            .tracking_recorder(view_class)
        )
        self.projection = projection_class(view=self.view)
        # Every topic, not the view's: the view then records how far it has read even when the
        # newest events are none of its business (its lag is then zero, and ?after= waits
        # work for any position), and restarts never rescan a long run of other events.
        BaseProjectionRunner.__init__(
            self,
            projection=self.projection,
            application_class=LedgerApplication,
            tracking_recorder=self.view,
            topics=(),
            env=env,
        )

    # Replaces the library's private loop (see ``projections.library_internals``).
    @staticmethod
    def _process_events_loop(
        subscription: ApplicationSubscription[Any],
        projection: Any,
        is_stopping: threading.Event,
        runner: weakref.ReferenceType[Any],
    ) -> None:
        try:
            # The recorder's LISTEN/NOTIFY subscription, read raw: only the events the view
            # cares about are decoded.
            notifications = subscription.subscription
            after = projection.view.position()
            for first in notifications:
                # Under a stream of writes, let a few more arrive: one transaction then carries
                # many events instead of one or two.
                is_stopping.wait(SETTLE)
                page = [first]
                # What the subscription has already fetched, without waiting for more.
                while len(page) < PAGE and has_fetched(notifications):
                    try:
                        page.append(next(notifications))
                    except StopIteration:
                        break
                page = [n for n in page if n.id > after]
                while page:
                    try:
                        projection.process_page(page, subscription.mapper, after=after)
                    except StalePage:
                        # Another process applied some of it: go on from where it stands.
                        after = projection.view.position()
                        page = [n for n in page if n.id > after]
                        continue
                    after = page[-1].id
                    break
        except BaseException as error:
            owner = runner()
            if owner is not None:
                hand_error_to(owner, error)
        finally:
            is_stopping.set()


class FollowingRunner(_Supervised):
    """Runs a ``PagedProjectionRunner`` (PostgreSQL), restarting it when it fails."""

    def __init__(
        self,
        projection_class: type[ViewProjection],
        view_class: type[View],
        env: EnvType,
        read_view: View,
    ) -> None:
        super().__init__(projection_class.name, read_view)
        self.projection_class = projection_class
        self.view_class = view_class
        # The tables exist by now (``build`` made them): runners starting together must not
        # race to create them again ("tuple concurrently updated").
        self.env = {
            **env,
            "CREATE_TABLE": "false",
            # The library opens a pool's minimum at once, for the runner's application and
            # again for its view: a runner needs one connection to read, one to LISTEN and one
            # to write, not ten (four views took 40 of PostgreSQL's 100).
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "3",
        }

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with PagedProjectionRunner(
                    projection_class=self.projection_class, view_class=self.view_class, env=self.env
                ) as runner:
                    healthy_after = time.monotonic() + 0.5
                    while not self._stop.is_set() and not runner.is_interrupted.is_set():
                        runner.run_forever(timeout=0.2)
                        if time.monotonic() > healthy_after:
                            self._recovered()
                            backoff = 0.1
            except StalePage:
                continue  # another process applied it: restart from where the view stands
            except Exception as error:
                backoff = self._failed(error, backoff)
