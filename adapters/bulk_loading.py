"""Load many aggregates in one query per chunk, for the database behind the application.

The repository loads one aggregate per query; a 50,000-row batch would spend most of its time
on round trips. These loaders read the same stored events with ``= ANY`` / ``IN`` and rebuild
the aggregates with the application's own mapper, so the result is what the repository gives.
Like the repository, they start an aggregate they do not know from its latest snapshot, when
the application keeps snapshots, and read only the events after it: a load costs the same on a
stock with a hundred events as on one with a million.
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
        # (id, version already known): only a snapshot or events after it are read.
        wanted = list(dict.fromkeys(aggregate_ids))
        keys = [(i, known[i].version if i in known else 0) for i in wanted]
        snapshots: dict[UUID, StoredEvent] = {}
        events_by_id: dict[UUID, list[StoredEvent]] = defaultdict(list)
        for chunk in _chunks(keys, self.chunk):
            chunk_snapshots, chunk_events = self._select(chunk)
            snapshots.update(chunk_snapshots)
            for stored in chunk_events:
                events_by_id[stored.originator_id].append(stored)
        aggregates: dict[UUID, Any] = {i: known[i] for i in wanted if i in known}
        to_domain = self.app.mapper.to_domain_event
        for aggregate_id, snapshot in snapshots.items():
            aggregates[aggregate_id] = to_domain(snapshot).mutate(None)
        for aggregate_id, stored_events in events_by_id.items():
            aggregate = aggregates.get(aggregate_id)
            for stored in stored_events:
                aggregate = to_domain(stored).mutate(aggregate)
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

    def _select(
        self, keys: list[tuple[UUID, int]]
    ) -> tuple[dict[UUID, StoredEvent], list[StoredEvent]]:
        """For each aggregate id in ``keys``: its latest snapshot after the version paired
        with it, if any, and its events after that snapshot (or version), in version order."""
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
        schema = Identifier(recorder.datastore.schema)
        table = SQL("{0}.{1}").format(schema, Identifier(recorder.events_table_name))
        # LATERAL makes each key an index lookup: as a plain join, the planner preferred a
        # (parallel) scan of the whole events table once the table had grown, so the cost of
        # a load grew with the ledger instead of with the batch. Rendered once: psycopg
        # re-renders composed SQL on every execute, and caches strings.
        self._select_query = (
            SQL(
                "SELECT false AS snapshot, e.originator_id, e.originator_version, e.topic, "
                "e.state FROM unnest(%s::uuid[], %s::bigint[]) AS k(id, after) "
                "CROSS JOIN LATERAL (SELECT originator_id, originator_version, topic, state "
                "FROM {0} WHERE originator_id = k.id AND originator_version > k.after "
                "ORDER BY originator_version) AS e"
            )
            .format(table)
            .as_string()
        )
        if app.snapshots is not None:
            snapshots = SQL("{0}.{1}").format(
                schema, Identifier(app.snapshots.recorder.events_table_name)
            )
            # One round trip: the latest snapshot of each key, then the events after it.
            self._select_query = (
                SQL(
                    "WITH k AS (SELECT * FROM unnest(%s::uuid[], %s::bigint[]) AS k(id, after)), "
                    "s AS (SELECT k.id, sn.originator_version, sn.topic, sn.state FROM k "
                    "CROSS JOIN LATERAL (SELECT originator_version, topic, state FROM {1} "
                    "WHERE originator_id = k.id AND originator_version > k.after "
                    "ORDER BY originator_version DESC LIMIT 1) AS sn) "
                    "SELECT true AS snapshot, id AS originator_id, originator_version, topic, "
                    "state FROM s UNION ALL "
                    "SELECT false, e.originator_id, e.originator_version, e.topic, e.state "
                    "FROM k LEFT JOIN s ON s.id = k.id CROSS JOIN LATERAL (SELECT "
                    "originator_id, originator_version, topic, state FROM {0} "
                    "WHERE originator_id = k.id "
                    "AND originator_version > greatest(k.after, coalesce(s.originator_version, 0)) "
                    "ORDER BY originator_version) AS e"
                )
                .format(table, snapshots)
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

    def _select(
        self, keys: list[tuple[UUID, int]]
    ) -> tuple[dict[UUID, StoredEvent], list[StoredEvent]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_query, ([k[0] for k in keys], [k[1] for k in keys]))
            rows = curs.fetchall()
        snapshots: dict[UUID, StoredEvent] = {}
        events: list[StoredEvent] = []
        for row in rows:
            stored = StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            if row["snapshot"]:
                snapshots[stored.originator_id] = stored
            else:
                events.append(stored)
        return snapshots, events

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
        self.snapshots = (
            app.snapshots.recorder.events_table_name if app.snapshots is not None else None
        )

    def _select(
        self, keys: list[tuple[UUID, int]]
    ) -> tuple[dict[UUID, StoredEvent], list[StoredEvent]]:
        marks = ",".join("(?, ?)" for _ in keys)
        snapshots: dict[UUID, StoredEvent] = {}
        with self.recorder.datastore.transaction(commit=False) as c:
            if self.snapshots is not None:
                c.execute(
                    f"SELECT s.originator_id, s.originator_version, s.topic, s.state "
                    f"FROM (VALUES {marks}) AS k JOIN {self.snapshots} AS s "
                    "ON s.originator_id = k.column1 AND s.originator_version > k.column2 "
                    "AND s.originator_version = (SELECT max(originator_version) "
                    f"FROM {self.snapshots} WHERE originator_id = k.column1)",
                    [x for k in keys for x in (k[0].hex, k[1])],
                )
                for row in c.fetchall():
                    snapshots[UUID(row["originator_id"])] = StoredEvent(
                        originator_id=UUID(row["originator_id"]),
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=row["state"],
                    )
                keys = [
                    (i, snapshots[i].originator_version if i in snapshots else after)
                    for i, after in keys
                ]
            c.execute(
                f"SELECT e.originator_id, e.originator_version, e.topic, e.state "
                f"FROM {self.table} AS e JOIN (VALUES {marks}) AS k "
                "ON e.originator_id = k.column1 AND e.originator_version > k.column2 "
                "ORDER BY e.originator_id, e.originator_version",
                [x for k in keys for x in (k[0].hex, k[1])],
            )
            return snapshots, [
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
