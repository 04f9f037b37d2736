"""Load many aggregates in one query per chunk, for the database behind the application.

The repository loads one aggregate per query; a 50,000-row batch would spend most of its time
on round trips. These loaders read the same stored events with ``= ANY`` / ``IN`` and rebuild
the aggregates with the application's own mapper, so the result is what the repository gives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from ledger.loading import AggregateLoader, RepositoryLoader

CHUNK = 5_000
SQLITE_CHUNK = 900
T = TypeVar("T")  # under SQLite's default limit of 999 bound parameters


def loader_for(app: Application[UUID]) -> AggregateLoader:
    if isinstance(app.recorder, PostgresApplicationRecorder):
        return PostgresLoader(app)
    if isinstance(app.recorder, SQLiteApplicationRecorder):
        return SQLiteLoader(app)
    return RepositoryLoader(app)


class _SqlLoader:
    chunk = CHUNK

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app

    def load_many(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, Any]:
        events_by_id: dict[UUID, list[StoredEvent]] = defaultdict(list)
        for chunk in _chunks(aggregate_ids, self.chunk):
            for stored in self._select_events(chunk):
                events_by_id[stored.originator_id].append(stored)
        aggregates: dict[UUID, Any] = {}
        for aggregate_id, stored_events in events_by_id.items():
            aggregate = None
            for stored in stored_events:
                aggregate = self.app.mapper.to_domain_event(stored).mutate(aggregate)
            if aggregate is not None:
                aggregates[aggregate_id] = aggregate
        return aggregates

    def positions(self, events: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        found: dict[tuple[UUID, int], int] = {}
        for chunk in _chunks(events, self.chunk // 2):
            found.update(self._select_positions(chunk))
        return found

    def _select_events(self, ids: list[UUID]) -> list[StoredEvent]:
        raise NotImplementedError

    def _select_positions(self, events: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        raise NotImplementedError


class PostgresLoader(_SqlLoader):
    def __init__(self, app: Application[UUID]) -> None:
        super().__init__(app)
        recorder = app.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        self.datastore = recorder.datastore
        self.table = SQL("{0}.{1}").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )

    def _select_events(self, ids: list[UUID]) -> list[StoredEvent]:
        query = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {0} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(self.table)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (ids,))
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def _select_positions(self, events: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        query = SQL(
            "SELECT originator_id, originator_version, notification_id FROM {0} "
            "WHERE (originator_id, originator_version) IN "
            "(SELECT * FROM unnest(%s::uuid[], %s::bigint[]))"
        ).format(self.table)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, ([e[0] for e in events], [e[1] for e in events]))
            return {
                (row["originator_id"], row["originator_version"]): row["notification_id"]
                for row in curs.fetchall()
            }


class SQLiteLoader(_SqlLoader):
    chunk = SQLITE_CHUNK

    def __init__(self, app: Application[UUID]) -> None:
        super().__init__(app)
        recorder = app.recorder
        assert isinstance(recorder, SQLiteApplicationRecorder)
        self.recorder = recorder
        self.table = recorder.events_table_name

    def _select_events(self, ids: list[UUID]) -> list[StoredEvent]:
        marks = ",".join("?" * len(ids))
        with self.recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id, originator_version, topic, state FROM {self.table} "
                f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version",
                [i.hex for i in ids],
            )
            return [
                StoredEvent(
                    originator_id=UUID(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
                for row in c.fetchall()
            ]

    def _select_positions(self, events: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        marks = ",".join("(?, ?)" for _ in events)
        with self.recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id, originator_version, rowid FROM {self.table} "
                f"WHERE (originator_id, originator_version) IN (VALUES {marks})",
                [x for e in events for x in (e[0].hex, e[1])],
            )
            return {(UUID(row[0]), row[1]): row[2] for row in c.fetchall()}


def _chunks(items: Iterable[T], size: int) -> Iterable[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
