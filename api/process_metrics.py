"""Metrics of ``ledger serve --workers N``: one scrape, answered by any worker, shows them all.

Each API worker counts its own requests. In this mode ``serve`` points prometheus_client's
multiprocess mode at a folder of its own (``PROMETHEUS_MULTIPROC_DIR``, emptied at start and
removed at the end): every worker's counters and histograms live in memory-mapped files there,
and ``MultiProcessCollector`` adds them up at scrape time, a dead worker's counts included (a
counter never goes down while ``serve`` runs).

Process figures (memory, CPU, open files) cannot be added up: every process of the tree
registers itself in ``processes/`` of that folder (``<role>-<pid>``), and a scrape reads each
live one's ``/proc`` entry, labelled by ``role`` (``api``, ``background``) and ``pid``.
A registration whose process is gone is dropped then (with ``mark_process_dead``, which clears
live gauges). The garbage collector's figures are per process and left out in this mode.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.multiprocess import mark_process_dead

ENV = "PROMETHEUS_MULTIPROC_DIR"


def folder() -> str | None:
    """The multiprocess folder of this process tree, or None (one process)."""
    return os.environ.get(ENV) or None


def prepare(path: Path) -> None:
    """Empty ``path`` (counts of an earlier ``serve`` must not add up with ours)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    registered = path / "processes"
    registered.mkdir(exist_ok=True)
    for stale in registered.iterdir():
        stale.unlink()


def register(role: str) -> None:
    """Say that this process belongs to the tree, for its process figures."""
    path = folder()
    if path is not None:
        target = Path(path) / "processes" / f"{role}-{os.getpid()}"
        with contextlib.suppress(OSError):  # the folder is gone: serve is stopping
            target.touch()


def forget(pid: int) -> None:
    path = folder()
    if path is None:
        return
    mark_process_dead(pid, path)
    for registration in (Path(path) / "processes").glob(f"*-{pid}"):
        registration.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TreeProcessCollector:
    """``process_*`` of every live process of the tree, labelled ``role`` and ``pid``."""

    def __init__(self, path: str) -> None:
        self.path = Path(path) / "processes"

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        try:
            registrations = sorted(self.path.iterdir())
        except OSError:
            return
        for registration in registrations:
            role, _, pid_text = registration.name.rpartition("-")
            if not pid_text.isdigit():
                continue
            pid = int(pid_text)
            if not _alive(pid):
                forget(pid)
                continue
            collector = ProcessCollector(pid=lambda pid=pid: pid, registry=None)
            for family in collector.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type
                    )
                for sample in family.samples:
                    merged.add_sample(
                        sample.name, {**sample.labels, "role": role, "pid": pid_text}, sample.value
                    )
        yield from families.values()
