"""The ledger's application service: load aggregates, call their methods, save, retry."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from ledger import ids
from ledger.errors import Busy, IdempotencyConflict, InvalidInput, NameTaken, NotFound
from ledger.loading import AggregateLoader, RepositoryLoader
from ledger.movements import MovementRecord, MovementRequest, MovementResult
from ledger.stock import Stock
from ledger.tokens import ApiToken, Permission, TokenName, hash_secret

MAX_ATTEMPTS = 30
LOCK_STRIPES = 256


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


class LedgerApplication(Application[UUID]):
    name = "Ledger"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        allow_negative: Callable[[str], bool] = lambda warehouse: False,
        loader_factory: Callable[[Application[UUID]], AggregateLoader] = RepositoryLoader,
    ) -> None:
        super().__init__(env)
        self.allow_negative = allow_negative
        self.loader = loader_factory(self)
        # Writers in this process queue per stripe instead of racing to an optimistic-concurrency
        # conflict; other processes still meet the event store's unique key and are retried.
        self._stripes = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self.after_write: list[Callable[[int], None]] = []

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
        stock_ids = {ids.stock_id(r.sku, r.warehouse) for r in requests}
        with self._locked(stock_ids):
            return self._retrying(lambda: self._record_once(requests, recorded_by))

    def _record_once(
        self, requests: Sequence[MovementRequest], recorded_by: str
    ) -> list[MovementResult]:
        record_ids = [ids.movement_record_id(r.movement_id) for r in requests]
        existing: dict[UUID, MovementRecord] = self.loader.load_many(record_ids)
        results: list[MovementResult | None] = [None] * len(requests)
        pending: list[int] = []
        for index, (request, record_id) in enumerate(zip(requests, record_ids, strict=True)):
            record = existing.get(record_id)
            if record is None:
                pending.append(index)
            elif record.fingerprint != request.fingerprint():
                raise IdempotencyConflict(
                    f"movement_id {request.movement_id!r} was already recorded with another body",
                    movement_id=request.movement_id,
                )
        if existing:
            positions = self.loader.positions(
                [(ids.stock_id(r.sku, r.warehouse), r.stock_version) for r in existing.values()]
            )
            for index, record_id in enumerate(record_ids):
                record = existing.get(record_id)
                if record is not None:
                    results[index] = MovementResult(
                        movement_id=record.movement_id,
                        sku=record.sku,
                        warehouse=record.warehouse,
                        physical=record.physical_after,
                        reserved=record.reserved_after,
                        position=positions.get(
                            (ids.stock_id(record.sku, record.warehouse), record.stock_version)
                        ),
                        replayed=True,
                    )
        if pending:
            self._apply(requests, pending, recorded_by, results)
        return [r for r in results if r is not None]

    def _apply(
        self,
        requests: Sequence[MovementRequest],
        pending: list[int],
        recorded_by: str,
        results: list[MovementResult | None],
    ) -> None:
        wanted = list(
            dict.fromkeys(ids.stock_id(requests[i].sku, requests[i].warehouse) for i in pending)
        )
        stocks: dict[UUID, Stock] = self.loader.load_many(wanted)
        records: list[MovementRecord] = []
        event_keys: dict[int, tuple[UUID, int]] = {}
        now = datetime.now(UTC)
        for index in pending:
            request = requests[index]
            stock_id = ids.stock_id(request.sku, request.warehouse)
            stock = stocks.get(stock_id)
            if stock is None:
                stock = stocks[stock_id] = Stock(sku=request.sku, warehouse=request.warehouse)
            stock.move(
                request.kind,
                request.quantity,
                movement_id=request.movement_id,
                reference=request.reference,
                note=request.note,
                recorded_by=recorded_by,
                occurred_at=request.occurred_at or now,
                allow_negative=self.allow_negative(request.warehouse),
            )
            records.append(MovementRecord.of(request, stock.levels, stock.version))
            event_keys[index] = (stock.id, stock.version)
            results[index] = MovementResult(
                movement_id=request.movement_id,
                sku=request.sku,
                warehouse=request.warehouse,
                physical=stock.physical,
                reserved=stock.reserved,
                position=None,
            )
        recordings = self.save(*stocks.values(), *records)
        positions = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings
        }
        for index, key in event_keys.items():
            result = results[index]
            assert result is not None
            results[index] = MovementResult(**{**result.__dict__, "position": positions.get(key)})
        if positions:
            top = max(positions.values())
            for callback in self.after_write:
                callback(top)

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

    # -- concurrency -------------------------------------------------------------------------

    @contextmanager
    def _locked(self, aggregate_ids: set[UUID]) -> Iterator[None]:
        # Always taken in stripe order, so two batches can never deadlock each other.
        stripes = sorted({aggregate_id.int % LOCK_STRIPES for aggregate_id in aggregate_ids})
        with ExitStack() as stack:
            for stripe in stripes:
                stack.enter_context(self._stripes[stripe])
            yield

    @staticmethod
    def _retrying(attempt: Callable[[], list[MovementResult]]) -> list[MovementResult]:
        for number in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except IntegrityError:
                # Another process wrote first: reload and decide again, after a jittered pause
                # so that the same writers do not collide in lockstep.
                time.sleep(random.uniform(0, min(0.05, 0.002 * 2**number)))
        raise Busy("the stock changed concurrently too often; try again")
