"""When a process stops saving on cached state alone: when most such saves come back."""

from __future__ import annotations

from ledger.application import Optimism


def test_a_process_alone_keeps_saving_on_its_cache() -> None:
    optimism = Optimism()
    for _ in range(1000):
        assert optimism.worth_trying()
        optimism.record(paid=True)


def test_stale_caches_make_it_read_first_but_still_probe_now_and_then() -> None:
    optimism = Optimism()
    for _ in range(100):
        if optimism.worth_trying():
            optimism.record(paid=False)
    tries = sum(optimism.worth_trying() for _ in range(10 * Optimism.PROBE))
    assert tries == 10


def test_it_trusts_the_cache_again_once_the_others_go_quiet() -> None:
    optimism = Optimism()
    for _ in range(100):
        optimism.record(paid=False)
    probes = 0
    while not (optimism.refused_share <= Optimism.MOST):
        if optimism.worth_trying():
            probes += 1
            optimism.record(paid=True)
    assert probes < 60
    assert all(optimism.worth_trying() for _ in range(100))
