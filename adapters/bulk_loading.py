"""Load many aggregates in one query per chunk, for the database behind the application.

The repository loads one aggregate per query; a 50,000-row batch would spend most of its time
on round trips. These loaders read the same stored events with ``= ANY`` / ``IN`` and rebuild
the aggregates with the application's own mapper, so the result is what the repository gives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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
SQLITE_CHUNK = 450  # pairs: 900 bound parameters, under SQLite's historical limit of 999
T = TypeVar("T")


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

    def load_many(
        self, aggregate_ids: Sequence[UUID], known: Mapping[UUID, Any] | None = None
    ) -> dict[UUID, Any]:
        known = known or {}
        # (id, version already known): only events after it are read.
        wanted = list(dict.fromkeys(aggregate_ids))
        keys = [(i, known[i].version if i in known else 0) for i in wanted]
        events_by_id: dict[UUID, list[StoredEvent]] = defaultdict(list)
        for chunk in _chunks(keys, self.chunk):
            for stored in self._select_events(chunk):
                events_by_id[stored.originator_id].append(stored)
        aggregates: dict[UUID, Any] = {i: known[i] for i in wanted if i in known}
        for aggregate_id, stored_events in events_by_id.items():
            aggregate = aggregates.get(aggregate_id)
            for stored in stored_events:
                aggregate = self.app.mapper.to_domain_event(stored).mutate(aggregate)
            if aggregate is not None:
                aggregates[aggregate_id] = aggregate
        return aggregates

    def positions(self, events: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        found: dict[tuple[UUID, int], int] = {}
        for chunk in _chunks(events, self.chunk):
            found.update(self._select_positions(chunk))
        return found

    def versions_at(self, positions: Sequence[int]) -> dict[int, tuple[UUID, int]]:
        found: dict[int, tuple[UUID, int]] = {}
        for chunk in _chunks(dict.fromkeys(positions), self.chunk):
            found.update(self._select_versions(chunk))
        return found

    def _select_events(self, keys: list[tuple[UUID, int]]) -> list[StoredEvent]:
        """Events of each aggregate id in ``keys`` after the version paired with it."""
        raise NotImplementedError

    def _select_versions(self, positions: list[int]) -> dict[int, tuple[UUID, int]]:
        raise NotImplementedError

    def _select_positions(self, events: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        raise NotImplementedError


class PostgresLoader(_SqlLoader):
    def __init__(self, app: Application[UUID]) -> None:
        super().__init__(app)
        recorder = app.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        self.datastore = recorder.datastore
        table = SQL("{0}.{1}").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )
        # Rendered once: psycopg re-renders composed SQL on every execute, and caches strings.
        self._select_events_query = (
            # LATERAL makes each key an index lookup: as a plain join, the planner preferred
            # a (parallel) scan of the whole events table once the table had grown, so the
            # cost of a load grew with the ledger instead of with the batch.
            SQL(
                "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                "FROM unnest(%s::uuid[], %s::bigint[]) AS k(id, after) "
                "CROSS JOIN LATERAL (SELECT originator_id, originator_version, topic, state "
                "FROM {0} WHERE originator_id = k.id AND originator_version > k.after "
                "ORDER BY originator_version) AS e"
            )
            .format(table)
            .as_string()
        )
        self._select_positions_query = (
            SQL(
                "SELECT originator_id, originator_version, notification_id FROM {0} "
                "WHERE (originator_id, originator_version) IN "
                "(SELECT * FROM unnest(%s::uuid[], %s::bigint[]))"
            )
            .format(table)
            .as_string()
        )
        self._select_versions_query = (
            SQL(
                "SELECT notification_id, originator_id, originator_version FROM {0} "
                "WHERE notification_id = ANY(%s)"
            )
            .format(table)
            .as_string()
        )

    def _select_versions(self, positions: list[int]) -> dict[int, tuple[UUID, int]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_versions_query, (positions,))
            return {
                row["notification_id"]: (row["originator_id"], row["originator_version"])
                for row in curs.fetchall()
            }

    def _select_events(self, keys: list[tuple[UUID, int]]) -> list[StoredEvent]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_events_query, ([k[0] for k in keys], [k[1] for k in keys]))
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
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self._select_positions_query, ([e[0] for e in events], [e[1] for e in events])
            )
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

    def _select_events(self, keys: list[tuple[UUID, int]]) -> list[StoredEvent]:
        marks = ",".join("(?, ?)" for _ in keys)
        with self.recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT e.originator_id, e.originator_version, e.topic, e.state "
                f"FROM {self.table} AS e JOIN (VALUES {marks}) AS k "
                "ON e.originator_id = k.column1 AND e.originator_version > k.column2 "
                "ORDER BY e.originator_id, e.originator_version",
                [x for k in keys for x in (k[0].hex, k[1])],
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

    def _select_versions(self, positions: list[int]) -> dict[int, tuple[UUID, int]]:
        marks = ",".join("?" for _ in positions)
        with self.recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid, originator_id, originator_version FROM {self.table} "
                f"WHERE rowid IN ({marks})",
                positions,
            )
            return {row[0]: (UUID(row[1]), row[2]) for row in c.fetchall()}

    def _select_positions(self, events: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        marks = ",".join("(?, ?)" for _ in events)
        with self.recorder.datastore.transaction(commit=False) as c:
            c.execute(
                # A join, not a row-value IN: SQLite scanned the whole index for the IN.
                f"SELECT e.originator_id, e.originator_version, e.rowid FROM {self.table} AS e "
                f"JOIN (VALUES {marks}) AS k "
                "ON e.originator_id = k.column1 AND e.originator_version = k.column2",
                [x for e in events for x in (e[0].hex, e[1])],
            )
            return {(UUID(row[0]), row[1]): row[2] for row in c.fetchall()}


def _chunks(items: Iterable[T], size: int) -> Iterable[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
