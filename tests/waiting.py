"""Waiting for something that happens in another thread or process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(
    check: Callable[[], Any], what: str = "", *, timeout: float = 60, interval: float = 0.05
) -> Any:
    """Poll until ``check`` returns something truthy, and return it; fail naming ``what``.

    The timeout is a bound on waiting, never a timing claim: the benches measure the times.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"never happened: {what or check} (last: {last!r})")
