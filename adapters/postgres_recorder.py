"""The PostgreSQL event store's recorder: every save in one round trip, and no save too large.

eventsourcing 9.5 writes a save as four statements in psycopg's pipeline mode (lock the events
table, notify, insert from one ``unnest`` array, sync). Two things change here, and nothing about
what is stored:

- A save of up to ``CHUNK_ROWS`` events is one call to a PL/pgSQL function that takes the same
  ``EXCLUSIVE`` table lock, notifies and inserts: one round trip, and a fraction of the client-side
  work. (The library's own function, behind ``POSTGRES_ENABLE_DB_FUNCTIONS``, skips the lock and
  must not be used; this one replaces it.)
- A larger save is a binary ``COPY`` under the same lock, in one transaction, outside pipeline
  mode. psycopg 3.3 flushes a pipeline once and then waits for results, so the library's single
  multi-megabyte parameter stayed half-sent: the server waited for the rest while holding the
  table lock, and the client waited for results, forever (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

# Saves larger than this go by COPY; smaller ones by the function, in one round trip.
CHUNK_ROWS = 2_000
FUNCTION = "ledger_insert_events"


class ChunkedPostgresApplicationRecorder(PostgresApplicationRecorder):
    chunk_rows = CHUNK_ROWS

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        # No JIT compilation on the event store's connections: a batch's lookups are estimated
        # as expensive enough to compile (about 50 ms per query) and then run in a few ms.
        # Set before the library's constructor, which opens the pool.
        assert isinstance(datastore.pool.kwargs, dict)
        datastore.pool.kwargs["options"] = "-c jit=off"
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
            "CREATE OR REPLACE FUNCTION {schema}.{function}("
            "ids uuid[], versions bigint[], topics text[], states bytea[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} AS t "
            "(originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(ids, versions, topics, states) "
            "RETURNING notification_id; "
            "END; $BODY$"
        ).format(**names)
        # Rendered once: psycopg re-renders composed SQL on every execute, and caches strings.
        # Parameters go in binary (%b): the text format escapes every byte of every state.
        self._call_insert = (
            SQL("SELECT id FROM {schema}.{function}(%b, %b, %b, %b) AS id")
            .format(**names)
            .as_string()
        )
        self._lock_and_notify = (
            SQL(
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; NOTIFY {channel}"
            )
            .format(**names)
            .as_string()
        )
        self._max_id = SQL("SELECT COALESCE(MAX(notification_id), 0) AS id FROM {schema}.{table}")
        self._max_id = self._max_id.format(**names).as_string()
        self._copy = (
            SQL(
                "COPY {schema}.{table} (originator_id, originator_version, topic, state) "
                "FROM STDIN (FORMAT BINARY)"
            )
            .format(**names)
            .as_string()
        )
        self._ids_after = (
            SQL(
                "SELECT notification_id AS id FROM {schema}.{table} "
                "WHERE notification_id > %s ORDER BY notification_id"
            )
            .format(**names)
            .as_string()
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        if len(stored_events) > self.chunk_rows:
            return self._copy_in(stored_events)
        params = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._call_insert, params, prepare=True)
            return [row["id"] for row in curs.fetchall()]

    def _copy_in(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Binary COPY under the table lock. While the lock is held nobody else inserts, and
        COPY takes the sequence's values in row order, so this save's notification ids are
        exactly the ids above the maximum read before it, in order."""
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(self._lock_and_notify)
            [(before,)] = curs.execute(self._max_id).fetchall()
            with curs.copy(self._copy) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for e in stored_events:
                    copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
            ids = [row[0] for row in curs.execute(self._ids_after, (before,))]
        if len(ids) != len(stored_events):
            msg = f"copied {len(stored_events)} events but found {len(ids)} new notifications"
            raise ProgrammingError(msg)
        return ids
