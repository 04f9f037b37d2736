"""What the runners say about the views, kept in the database for every process to read.

A view's runner knows in memory whether it is failing and why; an API process that runs no
runners (``ledger serve --workers N`` runs them in a background process of its own, and
``--no-background`` API processes leave them to ``ledger worker``) could not know it. So each
process that runs the views writes one row per view (``view_status``, migration 0009): its
state whenever it changes, and a heartbeat every ``HEARTBEAT`` seconds. A reader takes the rows
seen within ``SEEN_WITHIN`` seconds: none means the background work is not running (stopped,
or killed and not yet back); a failing one means the view is failing.

Rows are keyed by view and process, so several processes running the views (``serve`` plus
``ledger worker``, say) never overwrite each other; a process deletes its rows when it stops.
Rows of a process that was killed are deleted by the next process on its machine that starts
running the views (a restarted background process), else ignored once stale and deleted after
``FORGET_AFTER``.
Times are epoch seconds of the writing and reading processes, as for the dispatcher's tables.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from adapters.delivery_store import holder_name

log = logging.getLogger(__name__)

HEARTBEAT = 2.0  # seconds between two heartbeats of a process running the views
# A process not seen for this long is taken as not running: several heartbeats, and time for
# `serve` to restart a killed background process (a second's backoff and a start).
SEEN_WITHIN = 15.0
FORGET_AFTER = 3600.0  # rows of a process silent this long are deleted


@dataclass(frozen=True)
class ViewState:
    """What a runner knows of its view, in memory."""

    name: str
    last_error: str | None
    problem: str | None

    @property
    def failing(self) -> bool:
        return self.last_error is not None


@dataclass(frozen=True)
class ReportedView:
    """The freshest word of the processes that run one view."""

    name: str
    running: bool  # some process reported it within SEEN_WITHIN
    failing: bool
    last_error: str | None
    problem: str | None
    heartbeat_age: float | None  # seconds since the freshest heartbeat; None: never seen


class ViewStatusStore:
    """Reads and writes ``view_status`` through the event store's datastore."""

    def __init__(self, datastore: Any, is_postgres: bool) -> None:
        self.datastore = datastore
        self.is_postgres = is_postgres

    def _q(self, sql: str) -> str:
        if not self.is_postgres:
            return sql
        table = f'"{self.datastore.schema}"."view_status"'
        return re.sub(r"\bview_status\b", table, sql).replace("?", "%s")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as c:
            if self.is_postgres:
                # A heartbeat lost in a crash is replaced by the next one.
                c.execute("SET LOCAL synchronous_commit = off")
            yield c

    def report(
        self, process: str, states: Sequence[ViewState], *, changed: bool, now: float
    ) -> None:
        """Write each view's state (``changed``) or only the heartbeat, in one transaction. A
        heartbeat that finds rows missing (deleted by another process) writes them again."""
        with self._tx() as c:
            if not changed:
                c.execute(
                    self._q("UPDATE view_status SET seen_at = ? WHERE process = ?"), (now, process)
                )
                changed = getattr(c, "sqlite_cursor", c).rowcount != len(states)
            if changed:
                for state in states:
                    c.execute(
                        self._q(
                            "INSERT INTO view_status (view, process, failing, last_error, "
                            "problem, changed_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (view, process) DO UPDATE SET "
                            "failing = excluded.failing, last_error = excluded.last_error, "
                            "problem = excluded.problem, changed_at = excluded.changed_at, "
                            "seen_at = excluded.seen_at"
                        ),
                        (
                            state.name,
                            process,
                            state.failing if self.is_postgres else int(state.failing),
                            state.last_error,
                            state.problem,
                            now,
                            now,
                        ),
                    )
            c.execute(self._q("DELETE FROM view_status WHERE seen_at < ?"), (now - FORGET_AFTER,))

    def forget(self, process: str) -> None:
        with self._tx() as c:
            c.execute(self._q("DELETE FROM view_status WHERE process = ?"), (process,))

    def forget_the_dead(self, host: str) -> int:
        """Delete the rows of processes of ``host`` (this machine) that no longer run: a
        killed background process's word (failing, say) goes as soon as its successor starts,
        not once stale. Returns how many processes were forgotten."""
        with self._tx() as c:
            c.execute(self._q("SELECT DISTINCT process FROM view_status"))
            processes = [r["process"] for r in c.fetchall()]
        dead = []
        for process in processes:
            name, _, rest = process.partition(":")
            pid = rest.partition(":")[0]
            if name == host and pid.isdigit() and not _running(int(pid)):
                dead.append(process)
        for process in dead:
            self.forget(process)
        return len(dead)

    def read(self, names: Sequence[str], now: float | None = None) -> dict[str, ReportedView]:
        """Each view's state as the processes running it last reported it."""
        now = time.time() if now is None else now
        with self._tx() as c:
            c.execute(
                self._q(
                    "SELECT view, failing, last_error, problem, seen_at FROM view_status "
                    "WHERE seen_at >= ? ORDER BY seen_at DESC"
                ),
                (now - FORGET_AFTER,),
            )
            rows = [dict(r) for r in c.fetchall()]
        result = {}
        for name in names:
            mine = [r for r in rows if r["view"] == name]
            fresh = [r for r in mine if now - r["seen_at"] <= SEEN_WITHIN]
            failing = next((r for r in fresh if r["failing"]), None)
            result[name] = ReportedView(
                name,
                running=bool(fresh),
                failing=failing is not None,
                last_error=failing["last_error"] if failing else None,
                problem=failing["problem"] if failing else None,
                heartbeat_age=max(now - mine[0]["seen_at"], 0.0) if mine else None,
            )
        return result


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StatusReporter:
    """A thread of the process running the views: writes their state to ``view_status`` when
    it changes (a runner calls ``changed``) and a heartbeat every ``HEARTBEAT`` seconds."""

    def __init__(self, store: ViewStatusStore, states: Callable[[], list[ViewState]]) -> None:
        self.store = store
        self.states = states
        self.process = holder_name()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def changed(self) -> None:
        self._changed.set()

    def start(self) -> None:
        try:
            self.store.forget_the_dead(socket.gethostname())
        except Exception as error:  # the database is away: they go stale all the same
            log.warning("could not clear the view status of stopped processes: %s", error)
        self._changed.set()  # the first report writes every row
        self._thread = threading.Thread(target=self._run, name="view-status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.store.forget(self.process)
        except Exception as error:  # the database is gone: the rows go stale by themselves
            log.warning("could not remove this process's view status: %s", error)

    def _run(self) -> None:
        failed = False
        while not self._stop.is_set():
            changed = self._changed.is_set()
            self._changed.clear()
            try:
                self.store.report(self.process, self.states(), changed=changed, now=time.time())
            except Exception as error:
                # Readers will see this process go stale: that is the truth, and the next
                # round writes everything again.
                if not failed:
                    log.warning("could not record the views' status: %s", error)
                failed = True
                self._changed.set()
            else:
                failed = False
            self._changed.wait(HEARTBEAT)
            self._stop.wait(0.05)  # a burst of changes makes one write
