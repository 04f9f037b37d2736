"""A write costs the same on a stock with a long history as on a new one, and decides the same.

Every write path loads its stocks through one unit of work (``ledger/unit_of_work.py``): from
the process's cache brought up to date, or from the latest snapshot and the events after it.
These tests hold each of those ways equal to a full replay of the stock's events, event for
event, and show by behaviour (what is decided, and how many events a write reads), never by
timing, that a long history changes nothing.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from typing import Any

import pytest

from api.wiring import Container
from ledger import ids, unit_of_work
from ledger.errors import InsufficientStock, LedgerError, NotFound
from ledger.movements import MovementRequest
from ledger.ordering import OrderDesk
from ledger.orders import OrderLine, OrderStatus
from ledger.stock import Stock

INTERVAL = 7


@pytest.fixture(autouse=True)
def small_snapshot_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small enough that every test crosses several snapshots.
    monkeypatch.setattr(unit_of_work, "SNAPSHOT_INTERVAL", INTERVAL)


def desk_for(container: Container) -> OrderDesk:
    desk = OrderDesk(container.app)
    desk.configure("shop", {"type": "webhook", "carriers": {"PAC": "pac"}})
    return desk


def move(container: Container, movement_id: str, sku: str, kind: str, quantity: str) -> Any:
    request = MovementRequest.parse(
        {"movement_id": movement_id, "sku": sku, "kind": kind, "quantity": quantity}
    )
    return container.app.record_movements([request], recorded_by="t")[0]


def state(stock: Stock | None) -> dict[str, Any] | None:
    """Everything a stock holds, as the library would snapshot it, plus its id and version."""
    if stock is None:
        return None
    return {k: v for k, v in vars(stock).items() if k != "_pending_events"}


def full_replay(container: Container, stock_id: Any) -> Stock | None:
    stock = None
    for event in container.app.events.get(stock_id):
        stock = event.mutate(stock)
    return stock


def cached(container: Container, stock_id: Any) -> Stock | None:
    lent = container.app.aggregates.lend([stock_id])
    container.app.aggregates.give_back(lent.values())
    return lent.get(stock_id)


def operations(seed: int, sku: str) -> Iterator[Callable[[Container, OrderDesk], object]]:
    """A random mix of every kind of write on one stock."""
    rng = random.Random(seed)
    orders: list[str] = []
    for n in range(70):
        roll = rng.random()
        if roll >= 0.75 and not orders:
            roll = 0.5  # nothing to end yet: import instead
        if roll < 0.35:
            kind = rng.choice(["invoice", "purchase_order", "manual", "scan", "sales_order"])
            quantity = str(rng.randint(1, 9) * (-1 if kind == "sales_order" else 1))
            yield lambda c, d, n=n, kind=kind, q=quantity: move(c, f"m{seed}-{n}", sku, kind, q)
        elif roll < 0.45:
            counted = str(rng.randint(0, 30))
            yield lambda c, d, n=n, q=counted: move(c, f"m{seed}-{n}", sku, "inventory_count", q)
        elif roll < 0.75:
            order_id = f"o{seed}-{n}"
            orders.append(order_id)
            quantity = Decimal(rng.randint(1, 4))
            yield lambda c, d, o=order_id, q=quantity: d.import_order(
                "shop", o, OrderStatus.PAYMENT_CONFIRMED, "PAC", [OrderLine(sku, "main", q)], "t"
            )
        else:
            order_id = orders.pop(rng.randrange(len(orders)))
            end = rng.choice(["cancel", "invoice", "delete"])
            if end == "invoice":
                yield lambda c, d, o=order_id: d.invoice("shop", o, {"number": o}, "t")
            else:
                yield lambda c, d, o=order_id, end=end: getattr(d, end)("shop", o, "t")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_stock_loaded_any_way_equals_its_full_replay_event_for_event(
    make_container: Callable[..., Container], seed: int
) -> None:
    """After every write: the writer's cached stock, a cold load (latest snapshot and the
    events after it), and another process's stale copy brought up to date all equal a replay
    of every event from the first."""
    writer, other = make_container(), make_container()
    desk = desk_for(writer)
    stock_id = ids.stock_id("SKU-1", "main")
    snapshots_seen = 0
    for number, operation in enumerate(operations(seed, "SKU-1")):
        # A refusal stores nothing, and the states must still agree.
        with suppress(InsufficientStock):
            operation(writer, desk)
        expected = state(full_replay(writer, stock_id))
        assert state(cached(writer, stock_id)) == expected, f"cache after write {number}"
        cold = writer.app.loader.load_many([stock_id]).get(stock_id)
        assert state(cold) == expected, f"cold load after write {number}"
        if number % 3 == 0:  # let the other process's copy fall behind by a few writes
            ahead = other.app.read_current([stock_id], lambda found: state(found.get(stock_id)))
            assert ahead == expected, f"other process after write {number}"
        snapshots_seen = len(list(writer.app.snapshots.get(stock_id)))
    version = full_replay(writer, stock_id).version
    assert snapshots_seen >= version // INTERVAL - 1 > 0


@contextmanager
def counting_decoded_events(container: Container) -> Iterator[list[int]]:
    """Counts the stored events (and snapshots) the application decodes meanwhile."""
    count = [0]
    mapper = container.app.mapper
    decode = mapper.to_domain_event

    def counted(stored: Any) -> Any:
        count[0] += 1
        return decode(stored)

    mapper.to_domain_event = counted  # type: ignore[method-assign]
    try:
        yield count
    finally:
        mapper.to_domain_event = decode  # type: ignore[method-assign]


def test_a_long_history_behaves_and_costs_as_a_short_one(
    make_container: Callable[..., Container],
) -> None:
    """Two stocks at the same levels, one with 1 event, one with 600: the same script of
    writes decides the same on both, and, with nothing in memory (a restarted process), each
    write on the long one reads no more events than on the short one plus one interval."""
    container = make_container()
    desk = desk_for(container)
    move(container, "short-0", "SHORT", "invoice", "300")
    batch = [
        MovementRequest.parse(
            {"movement_id": f"long-{n}", "sku": "LONG", "kind": "manual", "quantity": "1"}
        )
        for n in range(600)
    ]
    container.app.record_movements(batch, recorded_by="t")
    move(container, "long-out", "LONG", "sales_order", "-300")

    def script(sku: str) -> Iterator[Callable[[], object]]:
        line = [OrderLine(sku, "main", Decimal(2))]
        yield lambda: desk.import_order(
            "shop", f"{sku}-1", OrderStatus.PAYMENT_CONFIRMED, "PAC", line, "t"
        )
        yield lambda: move(container, f"{sku}-a", sku, "sales_order", "-5")
        yield lambda: desk.cancel("shop", f"{sku}-1", "t")
        yield lambda: move(container, f"{sku}-b", sku, "sales_order", "-1000")  # refused
        yield lambda: desk.import_order(
            "shop", f"{sku}-2", OrderStatus.PAYMENT_CONFIRMED, "PAC", line, "t"
        )
        yield lambda: desk.invoice("shop", f"{sku}-2", {"number": "n"}, "t")
        yield lambda: move(container, f"{sku}-a", sku, "sales_order", "-5")  # a replay
        yield lambda: move(container, f"{sku}-c", sku, "inventory_count", "7")

    outcomes: dict[str, list[Any]] = {}
    reads: dict[str, list[int]] = {}
    for sku in ("SHORT", "LONG"):
        outcomes[sku], reads[sku] = [], []
        for step in script(sku):
            container.app.aggregates.clear()  # as after a restart: nothing in memory
            with counting_decoded_events(container) as decoded:
                try:
                    outcome = step()
                except LedgerError as error:
                    outcome = type(error).__name__
            stock = container.app.stock_levels(sku, "main")
            outcomes[sku].append((describe(outcome), stock.physical, stock.reserved))
            reads[sku].append(decoded[0])
    assert outcomes["LONG"] == outcomes["SHORT"]
    for step, (long_reads, short_reads) in enumerate(
        zip(reads["LONG"], reads["SHORT"], strict=True)
    ):
        assert long_reads <= short_reads + INTERVAL + 1, f"step {step}: {reads}"


def describe(outcome: Any) -> Any:
    """What a write answered, without what differs between two SKUs (ids, positions)."""
    if isinstance(outcome, str):
        return outcome
    if hasattr(outcome, "changes"):
        return (outcome.created, [(c.action, c.quantity) for c in outcome.changes])
    return (outcome.physical, outcome.reserved, outcome.replayed)


def test_order_commands_arriving_together_each_get_their_own_outcome(
    container: Container,
) -> None:
    """Many clients at once: imports, repeats of the same order, and commands that are
    refused share transactions, yet each command's outcome is its own and the stock is
    exact."""
    desk = desk_for(container)
    move(container, "seed", "HOT", "invoice", "10000")
    errors: list[BaseException] = []
    refused: list[str] = []

    def client(index: int) -> None:
        try:
            for n in range(25):
                order_id = f"{index}-{n}"
                line = [OrderLine("HOT", "main", Decimal(1))]
                for _ in range(2):  # each order twice: reserved once
                    desk.import_order(
                        "shop", order_id, OrderStatus.PAYMENT_CONFIRMED, "PAC", line, "t"
                    )
                try:
                    desk.cancel("shop", f"never-{index}-{n}", "t")
                except NotFound:
                    refused.append(order_id)
                if n % 5 == 0:
                    desk.cancel("shop", order_id, "t")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(refused) == 8 * 25
    stock = container.app.stock_levels("HOT", "main")
    assert stock is not None
    assert (stock.physical, stock.reserved) == (10000, 8 * 25 - 8 * 5)
