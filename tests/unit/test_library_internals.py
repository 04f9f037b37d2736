"""eventsourcing's private attributes, used in one module only, exist in the installed version."""

import re
from pathlib import Path

import pytest
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

from projections import library_internals

ROOT = Path(__file__).resolve().parents[2]
# Any private name of the library's classes that the ledger has ever used, or might reach for.
PRIVATE = re.compile(
    r"\._(max_tracking_id|insert_tracking|notifications\w*|thread_error|construct_env"
    r"|process_events_loop)\b"
)


def test_the_installed_eventsourcing_has_every_private_attribute_the_ledger_uses():
    assert library_internals.missing() == []


@pytest.mark.parametrize("owner", [SQLiteTrackingRecorder, PostgresTrackingRecorder])
@pytest.mark.parametrize("name", ["_max_tracking_id", "_insert_tracking"])
def test_a_version_without_one_of_them_is_reported(monkeypatch, owner, name):
    monkeypatch.delattr(owner, name)
    assert f"{owner.__name__}.{name}" in library_internals.missing()


def test_a_version_that_takes_other_parameters_is_reported(monkeypatch):
    monkeypatch.setattr(SQLiteTrackingRecorder, "_insert_tracking", lambda self, tracking: None)
    assert "SQLiteTrackingRecorder._insert_tracking parameters" in library_internals.missing()


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
