"""The PostgreSQL event store's recorder, able to write a 50,000-movement batch in one transaction.

eventsourcing 9.5 sends a save as one ``INSERT ... FROM unnest(%s)`` whose single parameter holds
every event, in psycopg's pipeline mode. psycopg 3.3 flushes a pipeline once and then waits for
results, so a parameter of several megabytes stays half-sent: the server waits for the rest of
the message while holding the events table's lock, and the client waits for results, forever
(see docs/benchmarks.md). Large saves therefore go through here instead: the same lock, the same
notification and the same insert statement, outside pipeline mode and in chunks, all inside one
transaction so that the batch stays all or nothing. Small saves keep the library's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.utils import retry

# Rows per INSERT: about 1 MB of parameters, well under what one flush can hand to the kernel.
CHUNK_ROWS = 2_000


class ChunkedPostgresApplicationRecorder(PostgresApplicationRecorder):
    chunk_rows = CHUNK_ROWS

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if len(stored_events) <= self.chunk_rows:
            return super().insert_events(stored_events, **kwargs)
        notification_ids: list[int] = []
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._lock_table(curs)
            self._notify_channel(curs)
            for start in range(0, len(stored_events), self.chunk_rows):
                chunk = stored_events[start : start + self.chunk_rows]
                # The plain aggregate insert: lock and notify are already done above.
                PostgresAggregateRecorder._insert_stored_events(self, curs, chunk, **kwargs)
                notification_ids.extend(row["notification_id"] for row in curs.fetchall())
        return notification_ids
