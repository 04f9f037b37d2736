"""Every use of eventsourcing's private attributes, in one place.

eventsourcing 9.5 offers no public way to do this, and the ledger needs it: a view writes its
rows and its tracking position in one transaction it opens itself, so it reads and inserts
tracking records on its own cursor (``_max_tracking_id``, ``_insert_tracking``; the public
``max_tracking_id`` and ``insert_tracking`` open transactions of their own).

A minor release may rename them without notice. ``missing()`` lists those the installed version
lacks; ``tests/unit/test_library_internals.py`` fails when it lists any, so an upgrade breaks a
test, not the views in production.
"""

from __future__ import annotations

import inspect
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

_RECORDERS = (SQLiteTrackingRecorder, PostgresTrackingRecorder)
#: Each private method used, and the parameters it is called with.
_METHODS = {
    "_max_tracking_id": ("self", "application_name", "c"),
    "_insert_tracking": ("self", "c", "tracking"),
}


def max_tracking_id(recorder: Any, name: str, cursor: Any) -> int:
    """The position ``recorder`` has tracked for ``name``, read on ``cursor`` (0 if none)."""
    return recorder._max_tracking_id(name, cursor) or 0


def insert_tracking(recorder: Any, cursor: Any, tracking: Tracking) -> None:
    """Records ``tracking`` on ``cursor``, inside the caller's transaction."""
    recorder._insert_tracking(cursor, tracking)


def missing() -> list[str]:
    """The private methods used above that the installed eventsourcing lacks, or takes with
    other parameters."""
    gaps: list[str] = []
    for recorder in _RECORDERS:
        for name, parameters in _METHODS.items():
            method = getattr(recorder, name, None)
            if not callable(method):
                gaps.append(f"{recorder.__name__}.{name}")
            elif len(inspect.signature(method).parameters) != len(parameters):
                gaps.append(f"{recorder.__name__}.{name} parameters")
    return gaps
