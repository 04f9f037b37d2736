"""The PostgreSQL event store's recorder: every save in one round trip, and no save too large.

eventsourcing 9.5 writes a save as four statements in psycopg's pipeline mode (lock the events
table, notify, insert from one ``unnest`` array, sync). Two things change here, and nothing about
what is stored:

- A save of up to ``CHUNK_ROWS`` events is one call to a PL/pgSQL function that takes the same
  ``EXCLUSIVE`` table lock, notifies and inserts: one round trip, and a fraction of the client-side
  work. (The library's own function, behind ``POSTGRES_ENABLE_DB_FUNCTIONS``, skips the lock and
  must not be used; this one replaces it.)
- A larger save goes out in chunks, outside pipeline mode, in one transaction. psycopg 3.3
  flushes a pipeline once and then waits for results, so a parameter of several megabytes stayed
  half-sent: the server waited for the rest while holding the table lock, and the client waited
  for results, forever (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

# Rows per statement: about 1 MB of parameters, well under what one flush hands to the kernel.
CHUNK_ROWS = 2_000
FUNCTION = "ledger_insert_events"


class ChunkedPostgresApplicationRecorder(PostgresApplicationRecorder):
    chunk_rows = CHUNK_ROWS

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        names = {
            "schema": Identifier(datastore.schema),
            "table": Identifier(self.events_table_name),
            "event": Identifier(self.stored_event_type_name),
            "channel": Identifier(self.channel_name),
            "function": Identifier(FUNCTION),
            "lock_timeout": datastore.lock_timeout,
        }
        self.sql_create_statements[self.create_insert_function_statement_index] = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event}[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} AS t "
            "(originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
            "RETURNING notification_id; "
            "END; $BODY$"
        ).format(**names)
        # Rendered once: psycopg re-renders composed SQL on every execute, and caches strings.
        self._call_insert = (
            SQL("SELECT id FROM {schema}.{function}(%s) AS id").format(**names).as_string()
        )
        self._lock_and_notify = (
            SQL(
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; NOTIFY {channel}"
            )
            .format(**names)
            .as_string()
        )
        self._insert_chunk = self.insert_events_statement.as_string()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        if len(stored_events) > self.chunk_rows:
            return self._insert_in_chunks(stored_events)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._call_insert, (self._composites(stored_events),), prepare=True)
            return [row["id"] for row in curs.fetchall()]

    def _insert_in_chunks(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        notification_ids: list[int] = []
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            curs.execute(self._lock_and_notify)
            for start in range(0, len(stored_events), self.chunk_rows):
                chunk = stored_events[start : start + self.chunk_rows]
                curs.execute(self._insert_chunk, (self._composites(chunk),))
                notification_ids.extend(row["notification_id"] for row in curs.fetchall())
        return notification_ids

    def _composites(self, stored_events: Sequence[StoredEvent]) -> list[Any]:
        return [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
