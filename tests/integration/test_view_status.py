"""What the processes running the views record (``view_status``), as any other process reads
it: running while seen within the bound, failing as the freshest failing runner says."""

from __future__ import annotations

import socket
import subprocess
import sys

from api.wiring import Container
from projections.status import FORGET_AFTER, SEEN_WITHIN, ViewState

NAMES = ["stock_levels", "order_list"]


def test_a_view_runs_while_its_process_is_seen_and_fails_as_it_says(
    container: Container,
) -> None:
    store = container.status
    assert not any(v.running for v in store.read(NAMES, now=1000).values())  # nobody yet
    states = [
        ViewState("stock_levels", "DataError: x", "cannot apply event 4"),
        ViewState("order_list", None, None),
    ]
    store.report("host:1:a", states, changed=True, now=1000)
    seen = store.read(NAMES, now=1000 + SEEN_WITHIN - 1)
    assert seen["stock_levels"].running
    assert seen["stock_levels"].failing
    assert seen["stock_levels"].problem == "cannot apply event 4"
    assert seen["stock_levels"].last_error == "DataError: x"
    assert seen["order_list"].running
    assert not seen["order_list"].failing
    # A heartbeat keeps the state; silence past the bound means not running, failing or not.
    store.report("host:1:a", [], changed=False, now=1000 + SEEN_WITHIN)
    assert store.read(NAMES, now=1000 + 2 * SEEN_WITHIN)["stock_levels"].failing
    gone = store.read(NAMES, now=1000 + 3 * SEEN_WITHIN)
    assert not gone["stock_levels"].running
    assert not gone["stock_levels"].failing
    assert gone["stock_levels"].heartbeat_age == 2 * SEEN_WITHIN


def test_processes_keep_rows_of_their_own_and_forget_them_when_they_stop(
    container: Container,
) -> None:
    store = container.status
    store.report("host:1:a", [ViewState("order_list", "E: x", "E")], changed=True, now=1000)
    store.report("host:2:b", [ViewState("order_list", None, None)], changed=True, now=1001)
    assert store.read(NAMES, now=1002)["order_list"].failing  # one of them fails
    store.forget("host:1:a")
    assert not store.read(NAMES, now=1002)["order_list"].failing
    assert store.read(NAMES, now=1002)["order_list"].running
    recovered = [ViewState("order_list", None, None)]
    store.report("host:2:b", recovered, changed=True, now=1001 + FORGET_AFTER + 1)
    # Rows silent for FORGET_AFTER are deleted by the next report.
    store.report("host:3:c", recovered, changed=True, now=1001 + 2 * FORGET_AFTER + 2)
    assert store.read(NAMES, now=1001 + 2 * FORGET_AFTER + 2)["order_list"].running


def test_a_runner_reports_its_failure_and_recovery_to_the_process_reporter(
    container: Container,
) -> None:
    runner = container.runners[0]
    changes = []
    runner.on_change = lambda: changes.append(runner.state())
    runner._failed(RuntimeError("boom"), 0)  # type: ignore[attr-defined]
    runner._failed(RuntimeError("boom"), 0)  # type: ignore[attr-defined]
    runner._recovered()  # type: ignore[attr-defined]
    runner._recovered()  # type: ignore[attr-defined]
    assert [c.failing for c in changes] == [True, False]  # once each way
    assert changes[0].last_error == "RuntimeError: boom"


def test_a_killed_process_is_forgotten_by_the_next_one_on_its_machine(
    container: Container,
) -> None:
    store = container.status
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    failing = [ViewState("order_list", "E: x", "E")]
    store.report(f"{host}:{gone.pid}:dead", failing, changed=True, now=1000)
    store.report(f"{host}:1:alive", failing, changed=True, now=1000)  # pid 1 runs
    store.report(f"elsewhere:{gone.pid}:x", failing, changed=True, now=1000)  # not ours to judge
    assert store.forget_the_dead(host) == 1
    assert store.forget_the_dead(host) == 0
    # A heartbeat that finds its rows gone writes them again.
    store.forget(f"{host}:1:alive")
    store.report(f"{host}:1:alive", failing, changed=False, now=1001)
    assert store.read(NAMES, now=1001)["order_list"].failing
