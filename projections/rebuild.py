"""Rebuild views from the event store while the API keeps serving the old ones.

For each view: fresh copies of its tables (``<table>__rebuild``, with only the unique indexes
the writes need) are filled from the event store in large pages, each page one transaction with
its own tracking (``<name>__rebuild``), so an interrupted rebuild resumes where it stopped. The
other indexes are then built once, on full tables. Last, in one transaction that holds the live
view's lock (so its runner cannot apply a page meanwhile), the copy catches up with the live
view, takes its place and its position, and the old tables are dropped.

All the views asked for are filled in one pass over the events, each event decoded once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Tracking

from ledger.application import LedgerApplication
from projections.base import REBUILD, View
from projections.catalog import ViewKind, build_view
from projections.library_internals import insert_tracking, max_tracking_id

log = logging.getLogger(__name__)

PAGE = 100_000

Progress = Callable[[int, int], None]
"""Called with (events read so far, events to read in all) as the rebuild goes."""


@dataclass
class Rebuilt:
    name: str
    position: int
    resumed_from: int


def rebuild(
    app: LedgerApplication,
    kinds: Sequence[ViewKind],
    *,
    progress: Progress | None = None,
    restart: bool = False,
) -> list[Rebuilt]:
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    pairs = [
        (kind, build_view(kind, datastore), build_view(kind, datastore, suffix=REBUILD))
        for kind in kinds
    ]
    started = {}
    for _kind, live, copy in pairs:
        started[copy.base_table] = _prepare(live, copy, restart=restart)
    fill(app, [copy for _, _, copy in pairs], progress=progress)
    results = []
    for kind, live, copy in pairs:
        with copy.writing() as c:
            copy.copy_indexes(c)
        copy.analyze()
        position = _swap_patiently(app, live, copy)
        results.append(Rebuilt(kind.name, position, started[copy.base_table]))
    return results


def _prepare(live: View, copy: View, *, restart: bool) -> int:
    """Create the copy's tables, unless an interrupted rebuild left them; returns where the
    copy starts from (0 for a fresh one)."""
    with copy.writing() as c:
        if copy.table_exists(c) and restart:
            _drop(c, copy)
        if copy.table_exists(c):
            return max_tracking_id(copy, copy.tracking_name(), c)
        copy.copy_tables(c)
        _delete_tracking(c, copy, copy.tracking_name())
        return 0


def fill(app: LedgerApplication, views: Sequence[View], *, progress: Progress | None) -> None:
    """Apply every stored event to ``views``, a range of ``PAGE`` positions at a time: only the
    events some view cares about are read (the store filters them), each decoded once."""
    if not views:
        return
    topics = sorted({t for view in views for t in view.topics})
    positions = {id(view): view.position() for view in views}
    start = first = min(positions.values())
    head = app.recorder.max_notification_id() or 0
    while start < head:
        stop = min(start + PAGE, head)
        page = app.recorder.select_notifications(
            start=start, limit=PAGE, stop=stop, topics=topics, inclusive_of_start=False
        )
        decoded = [(app.mapper.to_domain_event(n), n.id, n.topic) for n in page]
        for view in views:
            after = positions[id(view)]
            if after >= stop:
                continue
            wanted = frozenset(view.topics)
            events = [(e, i) for e, i, topic in decoded if i > after and topic in wanted]
            view.apply(events, stop, after=after)
            positions[id(view)] = stop
        start = stop
        if start == head:
            # Writes go on while the copy fills: read on to the new head.
            head = app.recorder.max_notification_id() or 0
        if progress is not None:
            progress(start - first, max(head - first, 1))


def _swap_patiently(app: LedgerApplication, live: View, copy: View, attempts: int = 20) -> int:
    """Swap, giving up the locks when a long reader holds the table (a ``ledger verify``
    scan, say) rather than queueing every other reader of the view behind the rename."""
    for attempt in range(attempts):
        try:
            return _swap(app, live, copy)
        except LockWaitTimeout:
            log.warning("view %s is busy; swapping again (%s)", live.base_table, attempt + 1)
            time.sleep(min(5.0, 0.2 * 2**attempt))
    return _swap(app, live, copy, lock_timeout=None)


class LockWaitTimeout(Exception):
    pass


def _swap(app: LedgerApplication, live: View, copy: View, lock_timeout: str | None = "2s") -> int:
    """Put the copy in the live view's place; returns the position it takes over at."""
    try:
        return _swap_once(app, live, copy, lock_timeout)
    except Exception as error:
        if "lock timeout" in str(error).lower():
            raise LockWaitTimeout(str(error)) from error
        raise


def _swap_once(app: LedgerApplication, live: View, copy: View, lock_timeout: str | None) -> int:
    with live.writing() as c:
        if live.is_postgres and lock_timeout is not None:
            c.execute(f"SET LOCAL lock_timeout = '{lock_timeout}'")
        current = max_tracking_id(live, live.tracking_name(), c)
        position = max_tracking_id(copy, copy.tracking_name(), c)
        # The live view cannot move while this transaction holds its lock: bring the copy
        # level with it (it is usually ahead already), here, in the same transaction.
        while position < current:
            page = app.recorder.select_notifications(
                start=position, limit=PAGE, stop=current, inclusive_of_start=False
            )
            if not page:
                break
            events = [(app.mapper.to_domain_event(n), n.id) for n in page if n.topic in copy.topics]
            if events:
                copy.write(c, events)
            position = page[-1].id
        position = max(position, current)
        for base in live.tables:
            old = base + "__old"
            c.execute(f"ALTER TABLE {live.quoted(base)} RENAME TO {_bare(old)}")
            c.execute(f"ALTER TABLE {copy.quoted(base + REBUILD)} RENAME TO {_bare(base)}")
            c.execute(f"DROP TABLE {live.quoted(old)}")
        _delete_tracking(c, copy, copy.tracking_name())
        _delete_tracking(c, live, live.tracking_name())
        insert_tracking(live, c, Tracking(live.tracking_name(), position))
    log.info("view %s rebuilt up to position %s", live.base_table, position)
    return position


def _drop(c: Any, copy: View) -> None:
    for base in copy.tables:
        c.execute(f"DROP TABLE IF EXISTS {copy.quoted(base + REBUILD)}")
    _delete_tracking(c, copy, copy.tracking_name())


def _delete_tracking(c: Any, view: View, name: str) -> None:
    table = view.tracking_table
    c.execute(view.q(f"DELETE FROM {view.quoted(table)} WHERE application_name = ?"), (name,))


def _bare(table: str) -> str:
    # ALTER TABLE ... RENAME TO takes an unqualified name on both backends.
    return f'"{table}"'
