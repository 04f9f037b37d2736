"""Group commit: writers in one process that arrive together share one transaction.

The event store serialises every write on one table lock, so throughput comes from putting many
events in each transaction. Each writer queues its job; whoever holds the leader lock takes the
queued jobs (up to a size cap) and commits them as one group, then each writer returns with its
own outcome. A writer that arrives alone is its own leader and waits for nobody.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")
R = TypeVar("R")


@dataclass(eq=False)
class Job(Generic[P, R]):
    payload: P
    size: int
    result: R | None = None
    error: BaseException | None = None
    done: bool = field(default=False)

    def succeed(self, result: R) -> None:
        self.result, self.done = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True


class GroupCommit(Generic[P, R]):
    def __init__(
        self,
        commit: Callable[[list[Job[P, R]]], None],
        *,
        max_group_size: int,
        alone: Callable[[Job[P, R]], bool] = lambda job: False,
    ) -> None:
        """``commit`` must end every job it is given (``succeed`` or ``fail``).

        Jobs for which ``alone`` is true are committed in a group of their own.
        """
        self._commit = commit
        self._max = max_group_size
        self._alone = alone
        self._queue: deque[Job[P, R]] = deque()
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()

    def submit(self, payload: P, size: int = 1) -> R:
        job: Job[P, R] = Job(payload, size)
        with self._queue_lock:
            self._queue.append(job)
        while not job.done:
            with self._leader:
                if job.done:
                    break
                group = self._take()
                try:
                    self._commit(group)
                except BaseException as error:
                    # Nobody may wait forever: an unexpected failure ends the whole group.
                    for member in group:
                        if not member.done:
                            member.fail(error)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _take(self) -> list[Job[P, R]]:
        with self._queue_lock:
            first = self._queue.popleft()
            group, total = [first], first.size
            if self._alone(first):
                return group
            while self._queue and not self._alone(self._queue[0]):
                if total + self._queue[0].size > self._max:
                    break
                job = self._queue.popleft()
                group.append(job)
                total += job.size
            return group
