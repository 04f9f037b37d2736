"""The ledger's application service: load aggregates, call their methods, save, retry."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, overload
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from ledger import ids
from ledger.errors import (
    Busy,
    IdempotencyConflict,
    InvalidInput,
    LedgerError,
    NameTaken,
    NotFound,
)
from ledger.group_commit import GroupCommit, Job
from ledger.loading import AggregateCache, AggregateLoader, RepositoryLoader
from ledger.movements import MovementRecord, MovementRequest, MovementResult
from ledger.stock import Stock
from ledger.tokens import ApiToken, Permission, TokenName, hash_secret
from ledger.transcoding import FlatJSONTranscoder
from ledger.unit_of_work import Recheck, Session, UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")

# Single movements that arrive together are committed together, up to this many per group.
MAX_GROUP = 500
# Aggregates kept in memory as last saved, so a hot SKU is not loaded again for each write.
CACHE_SIZE = 50_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name and what it may do."""

    name: str
    permissions: frozenset[Permission]


@dataclass(frozen=True)
class TokenInfo:
    name: str
    permissions: list[str]
    issued_by: str
    issued_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class _Write:
    requests: Sequence[MovementRequest]
    recorded_by: str


_WriteJob = Job[_Write, list[MovementResult]]


class LedgerApplication(Application[UUID]):
    name = "Ledger"
    # Snapshots bound the cost of loading a stock nobody holds in memory (unit_of_work.py).
    is_snapshotting_enabled = True

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        allow_negative: Callable[[str], bool] = lambda warehouse: False,
        loader_factory: Callable[[Application[UUID]], AggregateLoader] = RepositoryLoader,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        super().__init__(env)
        self.allow_negative = allow_negative
        self.loader = loader_factory(self)
        # Stocks, orders and platforms as last loaded or saved, shared by every write path.
        self.aggregates = AggregateCache(cache_size)
        self.unit_of_work = UnitOfWork(self)
        self._optimism = Optimism()
        self._writes: GroupCommit[_Write, list[MovementResult]] = GroupCommit(
            self._commit_group,
            max_group_size=MAX_GROUP,
            # A batch is all or nothing on its own; sharing its transaction would tie its fate
            # to other clients' movements.
            alone=lambda job: job.size > 1,
        )
        self.after_write: list[Callable[[int], None]] = []

    def construct_transcoder(self) -> Transcoder:
        transcoder = FlatJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    # -- movements ---------------------------------------------------------------------------

    def record_movements(
        self, requests: Sequence[MovementRequest], recorded_by: str
    ) -> list[MovementResult]:
        """Record movements all or nothing, each once however often it is sent."""
        if not requests:
            raise InvalidInput("there are no movements to record", field="movements")
        seen: dict[str, int] = {}
        for index, request in enumerate(requests):
            if request.movement_id in seen:
                raise InvalidInput(
                    f"movement_id {request.movement_id!r} appears twice in the batch "
                    f"(rows {seen[request.movement_id]} and {index})",
                    field=f"movements[{index}].movement_id",
                )
            seen[request.movement_id] = index
        return self._writes.submit(_Write(requests, recorded_by), size=len(requests))

    def _commit_group(self, jobs: list[_WriteJob]) -> None:
        """Commit the jobs of one group in one transaction, retrying write conflicts."""
        try:
            self.unit_of_work.run(
                lambda session: self._try_group(jobs, session),
                busy="the stock changed concurrently too often; try again",
            )
        except Busy as error:
            for job in jobs:
                job.fail(error)

    def _try_group(self, jobs: list[_WriteJob], session: Session) -> None:
        """Plan every job, save the planned ones, then end every job. Raises IntegrityError
        or Recheck before ending any job, so that the group can be tried again whole.

        When every stock of a group of single movements is cached, the group is first tried
        without reading the database: the event store's unique key refuses the save if a
        stock moved elsewhere or a movement id was already recorded, and any refusal is
        confirmed against fresh state before a client hears it. That saves a round trip per
        group in the common case, for the price of one wasted save in the rare one.
        """
        requests = [r for job in jobs for r in job.payload.requests]
        record_ids = [ids.movement_record_id(r.movement_id) for r in requests]
        stock_ids = list(dict.fromkeys(ids.stock_id(r.sku, r.warehouse) for r in requests))
        cached = (
            session.cached(stock_ids)
            if all(job.size == 1 for job in jobs) and self._optimism.worth_trying()
            else None
        )
        optimistic = cached is not None
        loaded = cached if cached is not None else session.load(stock_ids, uncached=record_ids)
        group = _Group(
            stocks={i: loaded[i] for i in stock_ids if i in loaded},
            records={i: loaded[i] for i in record_ids if i in loaded},
        )
        now = datetime.now(UTC)
        planned: list[tuple[_WriteJob, list[MovementResult]]] = []
        refused: list[tuple[_WriteJob, LedgerError]] = []
        for job in jobs:
            try:
                planned.append((job, self._plan(job.payload, group, now)))
            except LedgerError as error:
                if job.size > 1:
                    # A batch may have moved some stocks before failing: none of them is
                    # fit to be saved or cached. A batch is alone in its group.
                    session.abandon()
                    job.fail(error)
                    return
                refused.append((job, error))
        if optimistic and refused:
            raise Recheck
        positions: dict[tuple[UUID, int], int] = {}
        if planned:
            try:
                positions = session.save(
                    [*group.opened, *group.collect_stock_events(), *group.new_records]
                )
            except IntegrityError:
                if optimistic:
                    self._optimism.record(paid=False)
                    raise Recheck from None  # most likely a stale cache: no pause
                raise
            if optimistic:
                self._optimism.record(paid=True)
        for stock in group.stocks.values():
            session.add(stock)
        if group.replay_keys:
            try:
                positions.update(self.loader.positions(list(group.replay_keys)))
            except Exception:
                # The group is committed: a replay without its position beats reporting
                # saved movements as failed.
                log.warning("could not look up the positions of replayed movements", exc_info=True)
        for job, error in refused:
            job.fail(error)
        for job, results in planned:
            for result in results:
                if result.event is not None:
                    result.position = positions.get(result.event)
            job.succeed(results)

    def store_events(self, events: Sequence[Aggregate.Event]) -> dict[tuple[UUID, int], int]:
        """Store the events in one transaction, in order; return each event's position by
        (aggregate id, version).

        This is ``Application.save`` without what a 50,000-row batch feels and the ledger does
        not use: a check of each object against runtime protocols (about 20 µs apiece) and a
        ``Recording`` per event for the library's own followers, which the ledger has none of.
        """
        stored = _Encoded(events, self.mapper.to_stored_event)
        positions = self.recorder.insert_events(stored) or []
        if positions:
            for callback in self.after_write:
                callback(positions[-1])
        return {
            (event.originator_id, event.originator_version): position
            for event, position in zip(events, positions, strict=True)
        }

    def _plan(self, write: _Write, group: _Group, now: datetime) -> list[MovementResult]:
        """Apply one job's movements to the group's aggregates; raises before changing any
        aggregate when a single movement is refused."""
        results: list[MovementResult] = []
        for request in write.requests:
            record_id = ids.movement_record_id(request.movement_id)
            record = group.records.get(record_id)
            if record is not None:
                if record.fingerprint != request.fingerprint():
                    raise IdempotencyConflict(
                        f"movement_id {request.movement_id!r} was already recorded with "
                        "another body",
                        movement_id=request.movement_id,
                    )
                key = (ids.stock_id(record.sku, record.warehouse), record.stock_version)
                if record_id not in group.created:
                    group.replay_keys.add(key)
                results.append(
                    MovementResult(
                        movement_id=record.movement_id,
                        sku=record.sku,
                        warehouse=record.warehouse,
                        physical=record.physical_after,
                        reserved=record.reserved_after,
                        position=None,
                        replayed=True,
                        event=key,
                    )
                )
                continue
            stock_id = ids.stock_id(request.sku, request.warehouse)
            stock = group.stocks.get(stock_id)
            opened = None
            if stock is None:
                stock, opened = Stock.opened(request.sku, request.warehouse, group.timestamp)
            stock.move(
                request.kind,
                request.quantity,
                movement_id=request.movement_id,
                reference=request.reference,
                note=request.note,
                recorded_by=write.recorded_by,
                occurred_at=request.occurred_at or now,
                allow_negative=self.allow_negative(request.warehouse),
                counted_against=request.counted_against,
            )
            # Only now, once the rules have let the movement through, is the stock opened.
            if opened is not None:
                group.opened.append(opened)
            group.stocks[stock_id] = stock
            recorded = MovementRecord.recorded(
                request, stock.levels, stock.version, group.timestamp
            )
            group.records[record_id] = recorded
            group.created.add(record_id)
            group.new_records.append(recorded)
            results.append(
                MovementResult(
                    movement_id=request.movement_id,
                    sku=request.sku,
                    warehouse=request.warehouse,
                    physical=stock.physical,
                    reserved=stock.reserved,
                    position=None,
                    event=(stock.id, stock.version),
                )
            )
        return results

    def read_current(
        self, aggregate_ids: Sequence[UUID], read: Callable[[dict[UUID, Any]], T]
    ) -> T:
        """``read`` the aggregates that exist among ``aggregate_ids`` as stored now: the
        cached ones brought up to date, the others from their latest snapshot. ``read`` must
        copy what it needs: the aggregates go back to the cache, and to writers, after it."""
        borrowed = self.aggregates.lend(aggregate_ids)
        try:
            loaded = self.loader.load_many(aggregate_ids, known=borrowed)
        except BaseException:
            self.aggregates.give_back(borrowed.values())
            raise
        try:
            return read(loaded)
        finally:
            self.aggregates.give_back(loaded.values())

    def stock_levels(self, sku: str, warehouse: str) -> Stock | None:
        try:
            return self.repository.get(ids.stock_id(sku, warehouse))
        except AggregateNotFoundError:
            return None

    # -- tokens ------------------------------------------------------------------------------

    def issue_token(self, name: str, permissions: Sequence[Permission], issued_by: str) -> str:
        """Create a named token and return its secret: the only time anyone sees it."""
        if not permissions:
            raise InvalidInput("a token needs at least one permission", field="permissions")
        secret = "lt_" + secrets.token_urlsafe(32)
        token = ApiToken(
            token_hash=hash_secret(secret),
            name=name,
            permissions=sorted({p.value for p in permissions}),
            issued_by=issued_by,
            issued_at=datetime.now(UTC),
        )
        claim = TokenName(name=name, token_id=token.id)
        try:
            self.save(token, claim)
        except IntegrityError:
            raise NameTaken(f"a token named {name!r} already exists", name=name) from None
        return secret

    def authenticate(self, secret: str) -> Principal | None:
        try:
            token: ApiToken = self.repository.get(ids.token_id(hash_secret(secret)))
        except AggregateNotFoundError:
            return None
        if not token.is_active:
            return None
        return Principal(token.name, token.permission_set)

    def revoke_token(self, name: str, revoked_by: str) -> None:
        token = self._token_named(name)
        if token.is_active:
            token.revoke(revoked_by=revoked_by, revoked_at=datetime.now(UTC))
            self.save(token)

    def list_tokens(self) -> list[TokenInfo]:
        topic = get_topic(TokenName.Claimed)
        tokens: list[TokenInfo] = []
        start = 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=500, topics=[topic])
            for notification in page:
                claim: TokenName = self.repository.get(notification.originator_id)
                token: ApiToken = self.repository.get(claim.token_id)
                tokens.append(
                    TokenInfo(
                        token.name,
                        token.permissions,
                        token.issued_by,
                        token.issued_at,
                        token.revoked_at,
                    )
                )
            if len(page) < 500:
                return tokens
            start = page[-1].id + 1

    def _token_named(self, name: str) -> ApiToken:
        try:
            claim: TokenName = self.repository.get(ids.token_name_id(name))
        except AggregateNotFoundError:
            raise NotFound(f"no token named {name!r}", name=name) from None
        return self.repository.get(claim.token_id)


class Optimism:
    """Whether saving on cached state alone pays here.

    Alone, this process's cache is current and nearly every optimistic save goes through.
    Beside other API processes writing the same stocks, its copies are often stale, and each
    stale save is a wasted transaction under the event store's lock. So the share of optimistic
    saves refused is followed (a moving average); above ``MOST`` the groups read first, and one
    group in ``PROBE`` still tries, to notice when the others have gone quiet.
    """

    WEIGHT = 0.05
    MOST = 0.2
    PROBE = 20

    def __init__(self) -> None:
        self.refused_share = 0.0
        self._skipped = 0
        self._lock = threading.Lock()

    def worth_trying(self) -> bool:
        with self._lock:
            if self.refused_share <= self.MOST:
                return True
            self._skipped += 1
            if self._skipped >= self.PROBE:
                self._skipped = 0
                return True
            return False

    def record(self, *, paid: bool) -> None:
        with self._lock:
            self.refused_share += self.WEIGHT * ((0.0 if paid else 1.0) - self.refused_share)


class _Encoded(Sequence[StoredEvent]):
    """Events encoded as the recorder reaches them, once each.

    A large save streams rows to the database while later rows are still being encoded, so
    the database's work (index upkeep) overlaps the encoding instead of following it.
    """

    def __init__(
        self, events: Sequence[Aggregate.Event], encode: Callable[[Any], StoredEvent]
    ) -> None:
        self._events = events
        self._encode = encode
        self._done: list[StoredEvent] = []

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[StoredEvent]:
        yield from self._done
        for event in self._events[len(self._done) :]:
            stored = self._encode(event)
            self._done.append(stored)
            yield stored

    @overload
    def __getitem__(self, index: int) -> StoredEvent: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[StoredEvent]: ...
    def __getitem__(self, index: int | slice) -> StoredEvent | Sequence[StoredEvent]:
        if len(self._done) < len(self._events):
            for _ in self:
                pass
        return self._done[index]


@dataclass
class _Group:
    """The aggregates one group commit reads and writes."""

    stocks: dict[UUID, Stock]
    # Loaded records, and the creation events of records made by this group.
    records: dict[UUID, MovementRecord | MovementRecord.Recorded]
    new_records: list[MovementRecord.Recorded] = field(default_factory=list)
    # Creation events of stocks opened by this group: stored before any of their movements.
    opened: list[Stock.Opened] = field(default_factory=list)
    timestamp: datetime = field(default_factory=MovementRecord.Recorded.create_timestamp)
    created: set[UUID] = field(default_factory=set)
    # Stock events of earlier movements replayed in this group, whose positions are looked up.
    replay_keys: set[tuple[UUID, int]] = field(default_factory=set)

    def collect_stock_events(self) -> list[Stock.Event]:
        return [event for stock in self.stocks.values() for event in stock.collect_events()]
