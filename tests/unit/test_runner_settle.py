"""How long a view's runner lets writes gather: a short wait after a quiet catch-up, so that a
lone write is read soon; a longer one under a stream, so that pages grow and cost less."""

from __future__ import annotations

from projections.catalog import VIEWS
from projections.runner import BUSY_PAGE, BUSY_SETTLE, SETTLE, settle_after


def test_a_quiet_catch_up_waits_the_short_settle() -> None:
    assert settle_after(0) == SETTLE
    assert settle_after(1) == SETTLE
    assert settle_after(BUSY_PAGE - 1) == SETTLE


def test_a_busy_catch_up_waits_longer_but_within_a_second() -> None:
    assert settle_after(BUSY_PAGE) == BUSY_SETTLE
    assert settle_after(10_000) == BUSY_SETTLE
    assert SETTLE < BUSY_SETTLE < 1.0


def test_the_publisher_never_waits_longer_its_lag_is_the_publish_lag() -> None:
    publisher = VIEWS["publisher"].projection
    assert settle_after(10_000, publisher.gathers_under_load) == SETTLE
    others = [kind.projection for name, kind in VIEWS.items() if name != "publisher"]
    assert all(projection.gathers_under_load for projection in others)
