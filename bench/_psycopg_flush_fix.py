"""Diagnostic only (``bench/append.py --psycopg-flush-fix``): keep psycopg's pipeline flushing.

psycopg 3.3's ``pipeline_communicate`` calls ``PQflush()`` once when the last queued command is
sent and stops, whatever ``PQflush()`` returns. ``Pipeline.sync()`` then waits only for the
socket to be readable. When one message is larger than what a non-blocking flush hands to the
kernel (a multi-megabyte ``unnest`` array, as eventsourcing sends for a large save), the rest
stays in libpq's output buffer: the server waits for it (``ClientRead``) and the client waits
for results, forever. This replacement loops until ``PQflush()`` returns 0.

Importing this module patches psycopg in the importing process; ``bench/append.py`` imports it
in the server process only when asked to, to measure the ledger without the hang. It is not
the server as shipped.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import psycopg._pipeline_base as _pipeline_base
from psycopg import generators as _g


def pipeline_communicate(pgconn: Any, commands: deque[Any]) -> Any:
    results: list[list[Any]] = []
    while True:
        while not (ready := (yield _g.WAIT_RW)):
            continue
        if ready & _g.READY_R:
            pgconn.consume_input()
            _g._consume_notifies(pgconn)
            res: list[Any] = []
            while not pgconn.is_busy():
                if (r := pgconn.get_result()) is None:
                    if not res:
                        break
                    results.append(res)
                    res = []
                elif r.status == _g.PIPELINE_SYNC:
                    results.append([r])
                else:
                    res.append(r)
        if ready & _g.READY_W:
            unsent = pgconn.flush()
            if not commands:
                if unsent == 0:
                    break
                continue
            commands.popleft()()
    return results


_pipeline_base.pipeline_communicate = pipeline_communicate  # type: ignore[assignment]
