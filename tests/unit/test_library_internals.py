"""eventsourcing's private attributes, used in one module only, exist in the installed version."""

import inspect
import re
from pathlib import Path

import pytest
from eventsourcing.persistence import ListenNotifySubscription
from eventsourcing.projection import BaseProjectionRunner
from eventsourcing.sqlite import SQLiteTrackingRecorder

from projections import library_internals
from projections.runner import PagedProjectionRunner

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = re.compile(
    r"\._(max_tracking_id|insert_tracking|notifications\w*|thread_error|construct_env)\b"
)


def test_the_installed_eventsourcing_has_every_private_attribute_the_ledger_uses():
    assert library_internals.missing() == []


@pytest.mark.parametrize(
    ("owner", "name", "reported"),
    [
        (SQLiteTrackingRecorder, "_max_tracking_id", "SQLiteTrackingRecorder._max_tracking_id"),
        (SQLiteTrackingRecorder, "_insert_tracking", "SQLiteTrackingRecorder._insert_tracking"),
        (BaseProjectionRunner, "_construct_env", "BaseProjectionRunner._construct_env"),
        (BaseProjectionRunner, "_process_events_loop", "BaseProjectionRunner._process_events_loop"),
    ],
)
def test_a_version_without_one_of_them_is_reported(monkeypatch, owner, name, reported):
    monkeypatch.delattr(owner, name)
    assert reported in library_internals.missing()


def test_a_subscription_that_no_longer_keeps_its_fetched_notifications_is_reported(monkeypatch):
    def renamed(self, recorder, gt=None, topics=()):
        self._buffer = []

    monkeypatch.setattr(ListenNotifySubscription, "__init__", renamed)
    assert "ListenNotifySubscription._notifications" in library_internals.missing()


def test_our_loop_takes_what_the_library_passes_to_its_own():
    ours = inspect.signature(PagedProjectionRunner._process_events_loop).parameters
    theirs = inspect.signature(BaseProjectionRunner._process_events_loop).parameters
    assert tuple(ours) == tuple(theirs) == library_internals.PROCESS_EVENTS_LOOP_PARAMETERS


def test_no_other_module_touches_the_library_private_attributes():
    offenders = []
    for package in ("ledger", "projections", "adapters", "api"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "library_internals.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if PRIVATE.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
