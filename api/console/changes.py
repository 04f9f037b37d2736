"""Long polls for the console's live parts: a page asks for its fragment "once something
changed after position N", and the answer comes as soon as it has.

One watcher per (process, source) reads a position (the event store's head, or a view's) ten
times a second, and only while some page waits: however many pages are open, the database sees
one cheap query per tenth of a second per API process, and an idle console costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Query, Request
from starlette.concurrency import run_in_threadpool

from api.cursors import POSITION_HEADER

if TYPE_CHECKING:
    from api.wiring import Container

# The answer's header naming the position a live part now shows; the next poll sends it back.
POSITION = POSITION_HEADER
Since = Annotated[int | None, Query(ge=0, le=2**62)]

EVERY = 0.1  # seconds between two reads of a watched position
# A poll answers "nothing new" after this: below proxies' idle timeouts, and short enough not
# to hold a restart for long (uvicorn lets requests in flight finish before it stops).
LONGEST_WAIT = 10.0
# How often a waiting poll looks whether its browser has gone (closed the tab or connection).
GONE_EVERY = 0.5


class Watch:
    def __init__(self, read: Callable[[], int]) -> None:
        self.read = read
        self.position: int | None = None
        self.changed = asyncio.Event()
        self.waiting = 0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        try:
            while self.waiting:
                position = await run_in_threadpool(self.read)
                if position != self.position:
                    self.position = position
                    self.changed.set()
                    self.changed = asyncio.Event()
                await asyncio.sleep(EVERY)
        finally:
            self.task = None

    async def beyond(
        self,
        since: int | None,
        gone: Callable[[], Awaitable[bool]] | None = None,
        timeout: float = LONGEST_WAIT,
    ) -> int:
        """The position once it is past ``since`` (at once when ``since`` is None), or the
        same position when ``timeout`` passes first or the browser is ``gone``."""
        if since is None:
            return await run_in_threadpool(self.read)
        self.waiting += 1
        if self.task is None:
            self.task = asyncio.create_task(self._run())
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while self.position is None or self.position <= since:
                left = deadline - loop.time()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), min(left, GONE_EVERY))
                if gone is not None and await gone():
                    break
            return self.position if self.position is not None else since
        finally:
            self.waiting -= 1


class Watches:
    """The watches of one process, by the name of what they read."""

    def __init__(self) -> None:
        self._watches: dict[str, Watch] = {}

    def of(self, name: str, read: Callable[[], int]) -> Watch:
        watch = self._watches.get(name)
        if watch is None:
            watch = self._watches[name] = Watch(read)
        return watch


def view_watch(request: Request, container: Container, view: str) -> Watch:
    """Changes of a view (pages that read it: the stock list, the orders list)."""
    return request.app.state.console_watches.of(view, container.views[view].position)


def head_watch(request: Request, container: Container) -> Watch:
    """Any write at all (pages that read the aggregates themselves, current to every write)."""

    def head() -> int:
        return container.app.recorder.max_notification_id() or 0

    return request.app.state.console_watches.of("head", head)
