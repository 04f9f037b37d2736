"""Every use of eventsourcing's private attributes, in one place.

eventsourcing 9.5 offers no public way to do these things, and the ledger needs them:
- a view writes its rows and its tracking position in one transaction it opens itself, so it
  reads and inserts tracking records on its own cursor (``_max_tracking_id``,
  ``_insert_tracking``);
- a view's runner applies what its LISTEN/NOTIFY subscription has already fetched as one page,
  so it asks whether more is waiting without blocking (``_notifications``,
  ``_notifications_index``, ``_notifications_queue``);
- that runner replaces the library's event loop (``_process_events_loop``), so it hands its
  failure back the way the library's own loop does (``_thread_error``), and builds its view's
  environment the way the library does (``_construct_env``).

A minor release may rename any of them without notice. ``missing()`` lists those the installed
version lacks; ``tests/unit/test_library_internals.py`` fails when it lists any, so an upgrade
breaks a test, not the views in production.
"""

from __future__ import annotations

import inspect
from typing import Any

from eventsourcing.persistence import ListenNotifySubscription, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import BaseProjectionRunner
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import Environment

_RECORDERS = (SQLiteTrackingRecorder, PostgresTrackingRecorder)


def max_tracking_id(recorder: Any, name: str, cursor: Any) -> int:
    """The position ``recorder`` has tracked for ``name``, read on ``cursor`` (0 if none)."""
    return recorder._max_tracking_id(name, cursor) or 0


def insert_tracking(recorder: Any, cursor: Any, tracking: Tracking) -> None:
    """Records ``tracking`` on ``cursor``, inside the caller's transaction."""
    recorder._insert_tracking(cursor, tracking)


def has_fetched(subscription: ListenNotifySubscription[Any]) -> bool:
    """Whether ``subscription`` holds notifications it can hand over without waiting."""
    return (
        subscription._notifications_index < len(subscription._notifications)
        or not subscription._notifications_queue.empty()
    )


def hand_error_to(runner: Any, error: BaseException) -> None:
    """Passes a loop's failure to its runner, which raises it from ``run_forever``."""
    runner._thread_error = error


def construct_env(name: str, env: Any) -> Environment:
    """The environment the library would build for a projection called ``name``."""
    return BaseProjectionRunner._construct_env(name=name, env=env)


#: The loop ``PagedProjectionRunner`` overrides, and the parameters it is called with.
PROCESS_EVENTS_LOOP = "_process_events_loop"
PROCESS_EVENTS_LOOP_PARAMETERS = ("subscription", "projection", "is_stopping", "runner")


def missing() -> list[str]:
    """The private attributes used above that the installed eventsourcing lacks."""
    gaps: list[str] = []
    for recorder in _RECORDERS:
        for name in ("_max_tracking_id", "_insert_tracking"):
            if not callable(getattr(recorder, name, None)):
                gaps.append(f"{recorder.__name__}.{name}")
    subscription = ListenNotifySubscription.__init__
    source = inspect.getsource(subscription)
    for name in ("_notifications", "_notifications_index", "_notifications_queue"):
        if f"self.{name}" not in source:
            gaps.append(f"ListenNotifySubscription.{name}")
    if not callable(getattr(BaseProjectionRunner, "_construct_env", None)):
        gaps.append("BaseProjectionRunner._construct_env")
    loop = getattr(BaseProjectionRunner, PROCESS_EVENTS_LOOP, None)
    if not callable(loop):
        gaps.append(f"BaseProjectionRunner.{PROCESS_EVENTS_LOOP}")
    elif tuple(inspect.signature(loop).parameters) != PROCESS_EVENTS_LOOP_PARAMETERS:
        gaps.append(f"BaseProjectionRunner.{PROCESS_EVENTS_LOOP} parameters")
    if "self._thread_error" not in inspect.getsource(BaseProjectionRunner.__init__):
        gaps.append("BaseProjectionRunner._thread_error")
    return gaps
