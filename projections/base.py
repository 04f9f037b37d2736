"""What every view shares, whatever its rows: one table, its tracking, one applier at a time.

A view is a ``TrackingRecorder`` (SQLite or PostgreSQL) that owns one table. A page of events is
applied in one transaction that also records the page's last notification as the view's
position, so each event counts exactly once, across crashes and across processes: the
transaction first takes the view's lock and checks that the view still stands where the page
was read from (else ``StalePage``, and nothing is written).

The same class serves the rebuild: built with ``suffix="__rebuild"`` it writes to a fresh copy of
its table under its own tracking name, and ``projections/rebuild.py`` swaps the copy in.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.sqlite import SQLiteTrackingRecorder

from adapters.database import is_unavailable
from projections.library_internals import insert_tracking, max_tracking_id

log = logging.getLogger(__name__)

MICROS = Decimal(1_000_000)
REBUILD = "__rebuild"

Page = Sequence[tuple[Any, int]]
"""Decoded events of interest to a view, each with its notification id, in order."""


class StalePage(Exception):
    """The view moved past the page's start while the page was read (another applier)."""


class View(TrackingRecorder, ABC):
    """One read model's table and tracking; subclasses say how events become rows."""

    tables: ClassVar[tuple[str, ...]]
    """The view's tables; the first is its main one (``{t}`` in SQL), the others ``{name}``."""
    topics: ClassVar[tuple[str, ...]]
    is_postgres: ClassVar[bool]
    suffix = ""
    app_name = "Ledger"
    continuing = False
    _written_through: int | None = None
    _identity: Any = None
    remembers: ClassVar[bool] = False
    """Whether the view keeps per-key state between pages (``remembered``)."""
    MEMORY_LIMIT = 200_000

    # -- naming ------------------------------------------------------------------------------

    @property
    def base_table(self) -> str:
        return self.tables[0]

    @property
    def table_name(self) -> str:
        return self.base_table + self.suffix

    @property
    def table(self) -> str:
        return self.quoted(self.table_name)

    @abstractmethod
    def quoted(self, table: str) -> str:
        """The quoted (and on PostgreSQL, schema-qualified) table name, for SQL text."""

    def _names(self, sql: str) -> str:
        sql = sql.replace("{t}", self.table)
        for base in self.tables:
            sql = sql.replace("{" + base + "}", self.quoted(base + self.suffix))
        return sql

    def tracking_name(self) -> str:
        name = self._live_tracking_name()
        return name + REBUILD if self.suffix else name

    @abstractmethod
    def _live_tracking_name(self) -> str: ...

    @property
    @abstractmethod
    def tracking_table(self) -> str: ...

    # -- applying ----------------------------------------------------------------------------

    def position(self) -> int:
        return self.max_tracking_id(self.tracking_name()) or 0

    def apply(self, events: Page, last_position: int, *, after: int) -> None:
        """Apply ``events`` and move the view to ``last_position``, provided it is still at
        ``after``: one transaction. ``last_position`` may lie beyond the last event of
        interest; the view has then read, and skipped, everything up to it."""
        # Whether this object wrote the view's previous page: then what it remembers of the
        # view (a cache a subclass may keep) is still the view's state.
        # A rebuild may swap the table in between without moving the position: the table's
        # identity tells.
        written_through, self._written_through = self._written_through, None
        try:
            with self.writing() as c:
                current = max_tracking_id(self, self.tracking_name(), c)
                if current != after:
                    raise StalePage(
                        f"{self.base_table} is at {current}, page was read after {after}"
                    )
                # Only a view that remembers state needs to know which table it writes.
                identity = self.table_identity(c) if self.remembers else None
                self.continuing = written_through == after and identity == self._identity
                if events:
                    self.write(c, events)
                if last_position > after:
                    insert_tracking(self, c, Tracking(self.tracking_name(), last_position))
        finally:
            # Only ``apply`` may vouch for what this object remembers: a ``write`` called
            # outside it (the rebuild's swap) must not trust a cache.
            self.continuing = False
        self._written_through = max(last_position, after)
        self._identity = identity

    def remembered(self) -> dict[Any, Any]:
        """Per-key state this object wrote with its previous pages, for ``write`` to read
        instead of the tables: valid only while it is the view's one writer (``continuing``),
        emptied otherwise, and bounded (a view of more keys looks the rest up). ``write``
        must add to it only what its transaction writes: a failed page clears
        ``continuing``, and the next page then starts from an empty memory."""
        memory: dict[Any, Any] = self.__dict__.setdefault("_memory", {})
        if not self.continuing or len(memory) > self.MEMORY_LIMIT:
            memory.clear()
        return memory

    def rows_with(self, c: Any, table: str, column: str, values: Iterable[Any]) -> list[Any]:
        """Rows of ``table`` (a ``{name}`` of this view) whose ``column`` is one of
        ``values``, in one query or a few."""
        values = list(values)
        if not values:
            return []
        return self._rows_with(c, self._names("{" + table + "}"), column, values)

    @abstractmethod
    def _rows_with(self, c: Any, table: str, column: str, values: list[Any]) -> list[Any]: ...

    @abstractmethod
    def table_identity(self, c: Any) -> Any:
        """What tells this table from another of the same name (one swapped in)."""

    @abstractmethod
    def write(self, c: Any, events: Page) -> None:
        """Write the rows that ``events`` change, inside the open transaction ``c``."""

    @contextmanager
    @abstractmethod
    def writing(self) -> Iterator[Any]:
        """A write transaction holding this view's lock."""
        yield None

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            yield c

    # -- values ------------------------------------------------------------------------------

    @abstractmethod
    def q(self, sql: str) -> str:
        """SQL written with ``?`` placeholders and ``{t}`` for the table, for this backend."""

    @abstractmethod
    def qty(self, value: Decimal) -> Any: ...

    @abstractmethod
    def from_qty(self, value: Any) -> Decimal: ...

    @abstractmethod
    def uid(self, value: UUID) -> Any: ...

    @abstractmethod
    def from_uid(self, value: Any) -> UUID: ...

    @abstractmethod
    def moment(self, value: datetime) -> Any: ...

    @abstractmethod
    def from_moment(self, value: Any) -> datetime: ...

    # -- rebuild support ---------------------------------------------------------------------

    def copy_tables(self, c: Any) -> None:
        """Create this (rebuild) view's empty tables like the live ones, with their unique
        indexes only: the others are cheaper to build once the rows are in."""
        for base in self.tables:
            self.copy_table(c, base, base + self.suffix)

    def copy_indexes(self, c: Any) -> None:
        for base in self.tables:
            self.copy_other_indexes(c, base, base + self.suffix)

    @abstractmethod
    def copy_table(self, c: Any, source: str, target: str) -> None: ...

    @abstractmethod
    def copy_other_indexes(self, c: Any, source: str, target: str) -> None: ...

    @abstractmethod
    def analyze(self) -> None:
        """Give the planner statistics of freshly filled tables before they serve reads."""

    def table_exists(self, c: Any) -> bool:
        return self._exists(c, self.table_name)

    @abstractmethod
    def _exists(self, c: Any, table: str) -> bool: ...

    def platform_page(
        self,
        platform: str,
        order: Sequence[str],
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """A platform's rows after ``after`` in the keyset ``order`` (oldest change first):
        how the dispatcher reads what changed since its cursor."""
        columns = ", ".join(order)
        where, params = "", [platform]
        if after is not None:
            where = f" AND ({columns}) > ({', '.join('?' for _ in order)})"
            params += list(after)
        with self.reading() as c:
            c.execute(
                self.q(f"SELECT * FROM {{t}} WHERE platform = ?{where} ORDER BY {columns} LIMIT ?"),
                [*params, limit],
            )
            return [self.normalise(dict(r)) for r in c.fetchall()]

    def rows(self, c: Any) -> Iterator[dict[str, Any]]:
        """Every row, in key order, a page at a time, as comparable Python values."""
        keys = ", ".join(self.key_columns)
        marks = ", ".join("?" * len(self.key_columns))
        last: tuple[Any, ...] | None = None
        while True:
            where = "" if last is None else f"WHERE ({keys}) > ({marks}) "
            c.execute(self.q(f"SELECT * FROM {{t}} {where}ORDER BY {keys} LIMIT 5000"), last or ())
            batch = c.fetchall()
            for row in batch:
                yield self.normalise(dict(row))
            if len(batch) < 5000:
                return
            last = tuple(batch[-1][k] for k in self.key_columns)

    key_columns: ClassVar[tuple[str, ...]]

    def normalise(self, row: dict[str, Any]) -> dict[str, Any]:
        return row


class SQLiteView(SQLiteTrackingRecorder, View):
    """SQLite keeps every tracking in one table, so each view's tracking name is its own.
    Quantities are integer micro-units: SQLite has no exact decimal type, and integers add
    exactly inside one statement."""

    is_postgres = False

    def quoted(self, table: str) -> str:
        return f'"{table}"'

    def _live_tracking_name(self) -> str:
        return f"{self.app_name}.{self.base_table}"

    @property
    def tracking_table(self) -> str:
        return "tracking"

    @contextmanager
    def writing(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as c:
            # Write first: that takes SQLite's write lock (waiting for it) before anything is
            # read, so the position check reads current data. Reading first made a concurrent
            # writer's commit fail this transaction (SQLITE_BUSY_SNAPSHOT).
            c.execute("UPDATE tracking SET notification_id = notification_id WHERE 0")
            yield c

    def q(self, sql: str) -> str:
        return self._names(sql)

    def qty(self, value: Decimal) -> int:
        return int(value * MICROS)

    def from_qty(self, value: Any) -> Decimal:
        return Decimal(value) / MICROS

    def uid(self, value: UUID) -> str:
        return value.hex

    def from_uid(self, value: Any) -> UUID:
        return UUID(value)

    def moment(self, value: datetime) -> str:
        # Fixed-width UTC text sorts and compares in time order (the year zero-padded by
        # hand: strftime does not pad years before 1000).
        value = value.astimezone(UTC)
        return f"{value.year:04d}-{value:%m-%dT%H:%M:%S.%f}Z"

    def from_moment(self, value: Any) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    def copy_table(self, c: Any, source: str, target: str) -> None:
        c.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (source,))
        create = _CREATE_TABLE.sub(f'CREATE TABLE "{target}"', c.fetchone()["sql"], 1)
        c.execute(create)

    def copy_other_indexes(self, c: Any, source: str, target: str) -> None:
        c.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (source,),
        )
        for (sql,) in c.fetchall():
            c.execute(_retarget_index(sql, f'"{target}"'))

    def _rows_with(self, c: Any, table: str, column: str, values: list[Any]) -> list[Any]:
        found = []
        for start in range(0, len(values), 500):  # within SQLite's bound-parameter limit
            chunk = [v.hex if isinstance(v, UUID) else v for v in values[start : start + 500]]
            c.execute(
                f"SELECT * FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))})", chunk
            )
            found += c.fetchall()
        return found

    def table_identity(self, c: Any) -> Any:
        c.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (self.table_name,))
        row = c.fetchone()
        return None if row is None else row[0]

    def analyze(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            for base in self.tables:
                c.execute(f"ANALYZE {self.quoted(base + self.suffix)}")

    def _exists(self, c: Any, table: str) -> bool:
        c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return c.fetchone() is not None


class PostgresView(PostgresTrackingRecorder, View):
    """Each view has its own tracking table (``<view>_tracking``), named by the library after
    the projection; the live tracking row is the application's name, as ``ProjectionRunner``
    expects."""

    is_postgres = True

    def quoted(self, table: str) -> str:
        return f'"{self.datastore.schema}"."{table}"'

    def _live_tracking_name(self) -> str:
        return self.app_name

    @property
    def tracking_table(self) -> str:
        return self.tracking_table_name

    @contextmanager
    def writing(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as c:
            # A view commit lost in a crash is lost with its tracking, and is simply applied
            # again: views need not wait for the disk. The event store still does.
            c.execute("SET LOCAL synchronous_commit = off")
            c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.lock_key,))
            yield c

    @property
    def lock_key(self) -> str:
        return f"{self.datastore.schema}.{self.table_name}"

    def q(self, sql: str) -> str:
        return self._names(sql.replace("?", "%s"))

    def qty(self, value: Decimal) -> Decimal:
        return value

    def from_qty(self, value: Any) -> Decimal:
        return Decimal(value)

    def uid(self, value: UUID) -> UUID:
        return value

    def from_uid(self, value: Any) -> UUID:
        return value

    def moment(self, value: datetime) -> datetime:
        return value

    def from_moment(self, value: Any) -> datetime:
        return value.astimezone(UTC)

    def copy_table(self, c: Any, source: str, target: str) -> None:
        c.execute(
            f"CREATE TABLE {self.quoted(target)} (LIKE {self.quoted(source)} INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS)"
        )
        for sql in self._indexes(c, source, unique=True):
            c.execute(_retarget_index(sql, self.quoted(target)))

    def copy_other_indexes(self, c: Any, source: str, target: str) -> None:
        for sql in self._indexes(c, source, unique=False):
            c.execute(_retarget_index(sql, self.quoted(target)))

    def _indexes(self, c: Any, table: str, *, unique: bool) -> list[str]:
        c.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (self.datastore.schema, table),
        )
        return [
            r["indexdef"]
            for r in c.fetchall()
            if r["indexdef"].startswith("CREATE UNIQUE") == unique
        ]

    def analyze(self) -> None:
        # VACUUM cannot run in a transaction; it also marks the pages all-visible, so that
        # the first reads of a rebuilt table can use index-only scans.
        with self.datastore.get_connection() as conn:
            was = conn.autocommit
            conn.autocommit = True
            try:
                for base in self.tables:
                    conn.execute(f"VACUUM ANALYZE {self.quoted(base + self.suffix)}")
            finally:
                conn.autocommit = was

    def _rows_with(self, c: Any, table: str, column: str, values: list[Any]) -> list[Any]:
        c.execute(f"SELECT * FROM {table} WHERE {column} = ANY(%b)", (values,))
        return c.fetchall()

    def table_identity(self, c: Any) -> Any:
        c.execute("SELECT to_regclass(%s)::oid AS oid", (self.table,))
        return c.fetchone()["oid"]

    def _exists(self, c: Any, table: str) -> bool:
        c.execute("SELECT to_regclass(%s) AS t", (f'"{self.datastore.schema}"."{table}"',))
        return c.fetchone()["t"] is not None


_CREATE_TABLE = re.compile(r'^CREATE TABLE\s+("?)\w+\1', re.IGNORECASE)
_CREATE_INDEX = re.compile(
    r'^(CREATE (?:UNIQUE )?INDEX)\s+(?:IF NOT EXISTS\s+)?(?:"?\w+"?\.)?("?)(\w+)\2\s+ON\s+\S+\s',
    re.IGNORECASE,
)


def _retarget_index(sql: str, table: str) -> str:
    """The same index on ``table``, under the other of its two names (``x`` and ``x__r``):
    index names are unique per schema, and the copy lives beside the original until the swap."""
    match = _CREATE_INDEX.match(sql)
    if match is None:
        raise ValueError(f"cannot read the index definition {sql!r}")
    name = match.group(3)
    other = name.removesuffix("__r") if name.endswith("__r") else name + "__r"
    return f'{match.group(1)} IF NOT EXISTS "{other}" ON {table} ' + sql[match.end() :]


class ViewProjection(Projection[View]):
    """The library's projection interface over a view: ``ProjectionRunner`` calls
    ``process_event`` per event; our feeds call ``process_page`` with many."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        after = self.view.position()
        if tracking.notification_id > after:
            self.view.apply(
                [(domain_event, tracking.notification_id)], tracking.notification_id, after=after
            )

    def process_page(
        self,
        notifications: Sequence[Notification],
        mapper: Mapper[Any],
        *,
        after: int,
        last: int | None = None,
    ) -> int:
        """Apply the notifications this view cares about (decoding only those) and move the
        view to the last one; returns how many events it applied.

        When the page fails, its events are applied one at a time, each in its own
        transaction, so that the view keeps every event before the one it cannot apply and
        says which one that is (``EventNotApplied``); that event is never skipped."""
        topics = self.view.topics
        wanted = [n for n in notifications if n.topic in topics]
        # ``last``: how far the page was read, which may lie past its last notification (the
        # caller read only this view's topics up to a head).
        last = notifications[-1].id if last is None else last
        try:
            events = [(mapper.to_domain_event(n), n.id) for n in wanted]
            self.view.apply(events, last, after=after)
        except StalePage:
            raise
        except Exception as error:
            if is_unavailable(error):
                raise  # the database, not an event: retried as a page, never blamed on one
            if len(wanted) <= 1:
                raise EventNotApplied.of(self.name, wanted[0] if wanted else None, error) from error
            after = self._one_at_a_time(wanted, mapper, after=after)
            self.view.apply([], last, after=after)
        return len(wanted)

    def _one_at_a_time(
        self, notifications: Sequence[Notification], mapper: Mapper[Any], *, after: int
    ) -> int:
        for notification in notifications:
            try:
                event = mapper.to_domain_event(notification)
                self.view.apply([(event, notification.id)], notification.id, after=after)
            except StalePage:
                raise
            except Exception as error:
                if is_unavailable(error):
                    raise
                raise EventNotApplied.of(self.name, notification, error) from error
            after = notification.id
        return after


class EventNotApplied(Exception):
    """A view cannot apply one event: which view, which event (position and type), and why.

    ``summary`` names the event's type and the error's class only: it is shown without a
    token (``/readyz``), so it carries neither the event's data nor the error's message,
    which may quote either (the log has them)."""

    def __init__(self, view: str, position: int | None, event_type: str, error: BaseException):
        self.view = view
        self.position = position
        self.event_type = event_type
        self.error = error
        super().__init__(
            f"view {view} cannot apply event {position} ({event_type}): "
            f"{type(error).__name__}: {error}"
        )

    @property
    def summary(self) -> str:
        return (
            f"cannot apply event {self.position} ({self.event_type}): {type(self.error).__name__}"
        )

    @classmethod
    def of(
        cls, view: str, notification: Notification | None, error: BaseException
    ) -> EventNotApplied:
        if notification is None:  # the page held none of the view's events
            return cls(view, None, "tracking only", error)
        event_type = notification.topic.rpartition(":")[2] or notification.topic
        return cls(view, notification.id, event_type, error)
