"""One LISTEN per process, waking every view runner of that process when events are stored.

The library's subscription gives each view its own LISTEN connection, its own listening thread
and its own pulling thread, and pulls after every NOTIFY: four views made four threads wake,
query and decode for every save, which cost about a third of the background process's CPU
under a stream of single writes. Here one connection listens; a notification only pokes the
runners, and each runner reads, at its own pace, every event after its own position (a few
saves then make one page). Nothing is read on the listening connection, so no event can be
missed by it: a lost notification only delays a runner to its next poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg.sql import SQL, Identifier

log = logging.getLogger(__name__)

LISTEN_TIMEOUT = 0.5
MAX_BACKOFF = 5.0


class NotifyWaker:
    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        channel: str,
        wake: list[Callable[[], None]],
    ) -> None:
        """``connect`` opens an autocommit connection to the event store's database;
        ``channel`` is the event store's NOTIFY channel; ``wake`` are called on each
        notification (and once on every (re)connection, for what was stored meanwhile)."""
        self._connect = connect
        self._channel = channel
        self._wake = wake
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notify-waker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poke(self) -> None:
        for wake in self._wake:
            wake()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(SQL("LISTEN {}").format(Identifier(self._channel)))
                    self.connected.set()
                    self._poke()
                    backoff = 0.1
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_TIMEOUT, stop_after=1):
                            self._poke()
            except Exception as error:  # the database may be gone for a while: listen again
                self.connected.clear()
                log.warning("listening for new events failed (%s); again in %.1f s", error, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        self.connected.clear()
