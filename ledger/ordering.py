"""The order desk: order commands, each saved with its stock changes in one transaction.

Every command loads the order and the stocks it touches, lets the order decide, applies the
returned changes to the stocks, and stores all of their events together: an order is never
half-reserved. A write conflict (another writer got there first) reloads and decides again,
so twenty copies of one order arriving at once reserve once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from eventsourcing.utils import get_topic

from ledger import ids
from ledger.application import LedgerApplication
from ledger.codes import check_code, check_text
from ledger.errors import Busy, InvalidInput, LedgerError, NotFound, SecretKeyMissing
from ledger.group_commit import GroupCommit, Job
from ledger.orders import Order, OrderLine, OrderStatus, StockAction, StockChange
from ledger.platform_settings import parse_platform
from ledger.platforms import WITHOUT_A_KEY_MESSAGE, CredentialVault, Platform
from ledger.stock import MovementKind, Stock
from ledger.unit_of_work import Session


@dataclass(frozen=True)
class OrderOutcome:
    order: Order | None  # None: acknowledged, not imported (the platform's import policy)
    created: bool
    changes: list[StockChange]
    reason: str | None = None
    position: int | None = None  # of the write, for ?after= reads; None when nothing changed


@dataclass(frozen=True)
class _CredentialChange:
    set_names: set[str]  # recorded as set: written now, or by a write whose event is missing
    deleted_names: set[str]  # recorded as deleted
    wrote: bool  # whether this attempt wrote to the vault


class _Acknowledged(Exception):
    """The platform's policy does not import the order yet."""


class _Refused(Exception):
    """A command of the group was refused (and its job ended): decide the others again."""


Decision = Callable[[Platform | None, Order | None], tuple[Order, list[StockChange]]]


@dataclass(frozen=True)
class _OrderCommand:
    platform: str
    order_id: str
    decide: Decision
    recorded_by: str
    # Lines whose stocks the command needs besides the order's own (an import, an edit).
    lines: tuple[OrderLine, ...]


_CommandJob = Job[_OrderCommand, OrderOutcome]
# Order commands that arrive together are committed together, up to this many per group.
MAX_GROUP = 100


class OrderDesk:
    def __init__(self, app: LedgerApplication, vault: CredentialVault | None = None) -> None:
        self.app = app
        self.vault = vault
        self._commands: GroupCommit[_OrderCommand, OrderOutcome] = GroupCommit(
            self._commit_group, max_group_size=MAX_GROUP
        )

    # -- platforms ---------------------------------------------------------------------------

    def configure(self, name: str, body: object) -> tuple[Platform, list[Order], int | None]:
        """Create or change a platform from a PUT's body (checked first: nothing is recorded
        unless all of it holds); orders held for a reason it resolves are imported.
        Returns the platform, the orders released, and the position of the last write."""
        request = parse_platform(body)
        if request.credentials and (self.vault is None or not self.vault.can_encrypt):
            # Deletions too: legacy credentials that cannot be moved out of the event log
            # without a key must not be half-changed either.
            raise SecretKeyMissing(WITHOUT_A_KEY_MESSAGE, field="credentials")
        key = ids.platform_id(name)
        wrote = False

        def work(session: Session) -> tuple[Platform, dict[tuple[Any, int], int]]:
            nonlocal wrote
            platform: Platform | None = session.load([key]).get(key)
            change = self._store_credentials(name, platform, request.credentials, rewrite=wrote)
            wrote = wrote or change.wrote
            if platform is None:
                platform = Platform.configured(name, request.settings, change.set_names)
                session.add(platform)
            else:
                platform.reconfigure(request.settings, change.set_names, change.deleted_names)
            return platform, session.save(list(platform.collect_events()))

        platform, positions = self.app.unit_of_work.run(
            work, busy="the platform changed concurrently too often; try again"
        )
        released = []
        position = max(positions.values(), default=None)
        for order in self.held(name):
            if platform.hold_reason(order.carrier) is None:
                outcome = self._command(
                    name, order.order_id, lambda o, _: o.unblock(platform.reserves()), "platform"
                )
                if outcome.order is not None:
                    released.append(outcome.order)
                position = max(position or 0, outcome.position or 0) or None
        return platform, released, position

    def _store_credentials(
        self,
        name: str,
        platform: Platform | None,
        changes: dict[str, str | None],
        *,
        rewrite: bool,
    ) -> _CredentialChange:
        """Write the credential changes to the vault, before the event that records them, and
        return the names set and deleted that the event must record.

        The vault first, the event second: a crash between them leaves the new values with the
        old event. Adapters built from then on read the new values; the ones already running
        keep the old until the next PUT (which finds the stored revision ahead of the
        platform's and records the change) or a restart. The other order could leave an
        event naming a credential that was never stored.

        ``rewrite``: this PUT wrote in an earlier attempt that lost a race to another writer,
        whose event may now vouch for values this PUT overwrote; writing them again under the
        next revision makes the event that follows record them."""
        if self.vault is None:
            return _CredentialChange(set(), set(), wrote=False)
        revision = platform.credentials_revision if platform is not None else 0
        known = platform.credential_names if platform is not None else frozenset()
        held = self.vault.held(name, platform)
        values = {
            n: v
            for n, v in changes.items()
            if v is not None
            and (rewrite or held.get(n, revision) > revision or not self.vault.holds(name, n, v))
        }
        deleted = {n for n, v in changes.items() if v is None and n in held}
        if values or deleted:
            self.vault.write(name, values, deleted, revision + 1)
        now = (set(held) | set(values)) - deleted
        unfinished = {n for n, r in held.items() if r > revision and n in now}
        return _CredentialChange(
            set(values) | unfinished | (now - known),
            set(known) - now,
            wrote=bool(values or deleted),
        )

    def platform(self, name: str) -> Platform:
        key = ids.platform_id(name)
        platform = self.app.loader.load_many([key]).get(key)
        if platform is None:
            raise NotFound(f"no platform named {name!r}", platform=name)
        return platform

    def held(self, platform: str | None = None) -> list[Order]:
        """Orders held (not imported) right now, oldest first."""
        topic = get_topic(Order.Held)
        order_ids: dict[Any, None] = {}
        start = 1
        while True:
            page = self.app.recorder.select_notifications(start=start, limit=500, topics=[topic])
            order_ids.update((n.originator_id, None) for n in page)
            if len(page) < 500:
                break
            start = page[-1].id + 1
        orders = self.app.loader.load_many(list(order_ids))
        return [
            o
            for o in (orders.get(i) for i in order_ids)
            if o is not None
            and o.blocked_reason is not None
            and not o.deleted
            and o.status is not OrderStatus.CANCELLED
            and (platform is None or o.platform == platform)
        ]

    # -- orders ------------------------------------------------------------------------------

    def import_order(
        self,
        platform_name: str,
        order_id: str,
        status: OrderStatus,
        carrier: str | None,
        lines: list[OrderLine],
        recorded_by: str,
    ) -> OrderOutcome:
        """Import an order once; importing it again only reports its status onward.

        The codes and the carrier are checked here, whoever sends them (a client, a hook, the
        feed robot reading what a platform says): an order event holding text a view cannot
        store would stop that view for every order after it."""
        check_code(order_id, "order_id")
        check_text(carrier, "carrier", max_length=200)

        def decide(
            platform: Platform | None, existing: Order | None
        ) -> tuple[Order, list[StockChange]]:
            if platform is None:
                raise InvalidInput(
                    f"unknown platform {platform_name!r}: configure it with PUT /platforms/"
                    f"{platform_name}",
                    field="platform",
                )
            reserves = platform.reserves()
            if existing is None and not platform.imports(status):
                raise _Acknowledged(
                    f"{platform_name} imports orders from {platform.import_from.value}; this "
                    f"one is {status.value}: it is imported when a later status arrives"
                )
            if existing is None:
                return Order.imported(
                    platform_name,
                    order_id,
                    status,
                    carrier,
                    lines,
                    reserves,
                    blocked_reason=platform.hold_reason(carrier),
                )
            return existing, existing.advance(status, reserves)

        try:
            outcome = self._run(platform_name, order_id, decide, recorded_by, lines)
        except _Acknowledged as acknowledged:
            return OrderOutcome(None, False, [], str(acknowledged))
        held = outcome.order
        if held is not None and held.blocked_reason is not None:
            # A PUT /platforms that maps the carrier may have committed after this import read
            # the platform and before it stored the held order, and scanned for held orders
            # too early to see it: look again, or the order would stay held for good.
            latest = self.platform(platform_name)
            if latest.hold_reason(held.carrier) is None:
                released = self._command(
                    platform_name, order_id, lambda o, _: o.unblock(latest.reserves()), "platform"
                )
                return replace(
                    outcome,
                    order=released.order,
                    changes=released.changes,
                    position=released.position,
                )
        return outcome

    def advance(
        self, platform: str, order_id: str, status: OrderStatus, recorded_by: str
    ) -> OrderOutcome:
        def act(order: Order, settings: Platform | None) -> list[StockChange]:
            if settings is None:
                raise NotFound(f"no platform named {platform!r}", platform=platform)
            return order.advance(status, settings.reserves())

        return self._command(platform, order_id, act, recorded_by)

    def post_stock(self, platform: str, order_id: str, recorded_by: str) -> OrderOutcome:
        return self._command(platform, order_id, lambda o, _: o.post_stock(), recorded_by)

    def invoice(
        self, platform: str, order_id: str, invoice: dict[str, Any], recorded_by: str
    ) -> OrderOutcome:
        return self._command(
            platform, order_id, lambda o, _: o.record_invoice(invoice), recorded_by
        )

    def cancel(self, platform: str, order_id: str, recorded_by: str) -> OrderOutcome:
        return self._command(platform, order_id, lambda o, _: o.cancel(), recorded_by)

    def delete(self, platform: str, order_id: str, recorded_by: str) -> OrderOutcome:
        return self._command(platform, order_id, lambda o, _: o.delete(), recorded_by)

    def edit(
        self, platform: str, order_id: str, lines: list[OrderLine], recorded_by: str
    ) -> OrderOutcome:
        return self._command(
            platform, order_id, lambda o, _: o.edit_lines(lines), recorded_by, lines
        )

    def get(self, platform: str, order_id: str) -> Order:
        _check_ids(platform, order_id)
        found = self.app.loader.load_many([ids.order_id(platform, order_id)])
        order = found.get(ids.order_id(platform, order_id))
        if order is None:
            raise NotFound(f"no {platform} order {order_id!r}", platform=platform)
        return order

    # -- internals ---------------------------------------------------------------------------

    def _command(
        self,
        platform: str,
        order_id: str,
        act: Callable[[Order, Platform | None], list[StockChange]],
        recorded_by: str,
        extra_lines: list[OrderLine] | None = None,
    ) -> OrderOutcome:
        _check_ids(platform, order_id)

        def decide(
            settings: Platform | None, existing: Order | None
        ) -> tuple[Order, list[StockChange]]:
            if existing is None:
                raise NotFound(f"no {platform} order {order_id!r}", platform=platform)
            return existing, act(existing, settings)

        return self._run(platform, order_id, decide, recorded_by, extra_lines or [])

    def _run(
        self,
        platform: str,
        order_id: str,
        decide: Decision,
        recorded_by: str,
        extra_lines: list[OrderLine],
    ) -> OrderOutcome:
        """Run one order command, committed together with the commands that arrive with it."""
        return self._commands.submit(
            _OrderCommand(platform, order_id, decide, recorded_by, tuple(extra_lines))
        )

    def _commit_group(self, jobs: list[_CommandJob]) -> None:
        try:
            self.app.unit_of_work.run(
                lambda session: self._try_group(jobs, session),
                busy="the order or its stock changed concurrently too often; try again",
            )
        except Busy as error:
            for job in jobs:
                if not job.done:
                    job.fail(error)

    def _try_group(self, jobs: list[_CommandJob], session: Session) -> None:
        """Decide every command of the group in turn, each on the state the ones before it
        left, and store all their events in one transaction; then end every job. A command
        that is refused is ended at once, and the others are decided again on fresh state
        without it: what it changed before it was refused must not be saved."""
        while True:
            pending = [job for job in jobs if not job.done]
            if not pending:
                return
            try:
                planned = self._plan(pending, session)
            except _Refused:
                session.abandon()
                continue
            positions = session.save([e for _, _, events in planned for e in events])
            for job, outcome, events in planned:
                keys = [(e.originator_id, e.originator_version) for e in events]
                position = max((positions[k] for k in keys), default=None)
                job.succeed(replace(outcome, position=position))
            return

    def _plan(
        self, jobs: list[_CommandJob], session: Session
    ) -> list[tuple[_CommandJob, OrderOutcome, list[Any]]]:
        commands = [job.payload for job in jobs]
        wanted = [ids.platform_id(c.platform) for c in commands]
        wanted += [ids.order_id(c.platform, c.order_id) for c in commands]
        wanted += [ids.stock_id(line.sku, line.warehouse) for c in commands for line in c.lines]
        found = session.load(wanted)
        # The stocks of orders already recorded, which only they know.
        missing = [
            ids.stock_id(sku, warehouse)
            for order in found.values()
            if isinstance(order, Order)
            for sku, warehouse in order.lines
        ]
        missing = [i for i in missing if i not in found]
        if missing:
            found.update(session.load(missing))
        planned = []
        for job in jobs:
            command = job.payload
            order_key = ids.order_id(command.platform, command.order_id)
            existing: Order | None = found.get(order_key)
            try:
                order, changes = command.decide(
                    found.get(ids.platform_id(command.platform)), existing
                )
                opened, touched = self._apply(order, changes, found, command.recorded_by)
            except (LedgerError, _Acknowledged) as error:
                job.fail(error)
                raise _Refused from None
            events: list[Any] = [*opened]
            for stock in touched:
                events += stock.collect_events()
            events += order.collect_events()
            found[order_key] = order
            session.add(order)
            for stock in touched:
                session.add(stock)
            planned.append((job, OrderOutcome(order, existing is None, changes), events))
        return planned

    def _apply(
        self,
        order: Order,
        changes: list[StockChange],
        aggregates: dict[Any, Any],
        recorded_by: str,
    ) -> tuple[list[Stock.Opened], list[Stock]]:
        """Carry out the order's stock changes; the stocks opened, and every stock touched."""
        opened: list[Stock.Opened] = []
        touched: dict[Any, Stock] = {}
        now = datetime.now(UTC)
        for number, change in enumerate(changes):
            stock_id = ids.stock_id(change.sku, change.warehouse)
            stock = aggregates.get(stock_id)
            if stock is None:
                stock, event = Stock.opened(change.sku, change.warehouse, now)
                aggregates[stock_id] = stock
                opened.append(event)
            touched[stock_id] = stock
            common: dict[str, Any] = {
                "movement_id": f"order/{order.platform}/{order.order_id}/{order.version}/{number}",
                "reference": f"{order.platform} order {order.order_id}",
                "note": None,
                "recorded_by": recorded_by,
                "occurred_at": now,
            }
            if change.action is StockAction.RESERVE:
                stock.reserve(change.quantity, **common)
            elif change.action is StockAction.RELEASE:
                stock.release(change.quantity, **common)
            elif change.action is StockAction.CONSUME:
                stock.consume(change.quantity, **common)
            else:
                # The sale happened on the platform: its deduction is never refused.
                stock.move(
                    MovementKind.SALES_ORDER, -change.quantity, allow_negative=True, **common
                )
        return opened, list(touched.values())


def _check_ids(platform: str, order_id: str) -> None:
    """An id no order can have is refused as such (422), not looked up (404): ids come from
    paths too, and every entry point holds text to the same rules."""
    check_code(platform, "platform")
    check_code(order_id, "order_id")
