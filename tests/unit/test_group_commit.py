"""Group commit: writers that arrive together share one commit, and keep their own outcomes."""

from __future__ import annotations

import threading

import pytest

from ledger.group_commit import GroupCommit, Job


def test_a_lone_writer_commits_its_own_job() -> None:
    groups: list[list[str]] = []

    def commit(jobs: list[Job[str, str]]) -> None:
        groups.append([job.payload for job in jobs])
        for job in jobs:
            job.succeed(job.payload.upper())

    writes = GroupCommit(commit, max_group_size=10)
    assert writes.submit("a") == "A"
    assert groups == [["a"]]


def test_writers_waiting_behind_a_commit_share_the_next_one() -> None:
    release = threading.Event()
    entered = threading.Event()
    groups: list[list[int]] = []

    def commit(jobs: list[Job[int, int]]) -> None:
        groups.append([job.payload for job in jobs])
        if jobs[0].payload == 0:
            entered.set()
            release.wait(5)
        for job in jobs:
            job.succeed(job.payload * 10)

    writes: GroupCommit[int, int] = GroupCommit(commit, max_group_size=100)
    results: dict[int, int] = {}

    def send(n: int) -> None:
        results[n] = writes.submit(n)

    first = threading.Thread(target=send, args=(0,))
    first.start()
    assert entered.wait(5)
    others = [threading.Thread(target=send, args=(n,)) for n in range(1, 6)]
    for thread in others:
        thread.start()
    # Wait until all five are queued behind the running commit.
    for _ in range(500):
        if len(writes._queue) == 5:
            break
        threading.Event().wait(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert results == {n: n * 10 for n in range(6)}
    assert groups[0] == [0]
    assert sorted(groups[1]) == [1, 2, 3, 4, 5]


def test_one_failing_job_fails_alone() -> None:
    def commit(jobs: list[Job[int, int]]) -> None:
        for job in jobs:
            if job.payload < 0:
                job.fail(ValueError("negative"))
            else:
                job.succeed(job.payload)

    writes: GroupCommit[int, int] = GroupCommit(commit, max_group_size=10)
    with pytest.raises(ValueError, match="negative"):
        writes.submit(-1)
    assert writes.submit(3) == 3


def test_an_unexpected_error_ends_every_job_of_the_group() -> None:
    def commit(jobs: list[Job[int, int]]) -> None:
        raise RuntimeError("database gone")

    writes: GroupCommit[int, int] = GroupCommit(commit, max_group_size=10)
    with pytest.raises(RuntimeError, match="database gone"):
        writes.submit(1)


def test_jobs_that_must_be_alone_are_never_grouped_and_groups_respect_the_cap() -> None:
    groups: list[list[int]] = []

    def commit(jobs: list[Job[int, int]]) -> None:
        groups.append([job.payload for job in jobs])
        for job in jobs:
            job.succeed(job.payload)

    writes: GroupCommit[int, int] = GroupCommit(
        commit, max_group_size=3, alone=lambda job: job.size > 1
    )
    # Queue jobs by hand, then let one writer drain them.
    for payload, size in [(1, 1), (2, 1), (3, 1), (4, 1), (5, 5), (6, 1)]:
        writes._queue.append(Job(payload, size))
    writes._queue.append(job := Job(7, 1))
    while writes._queue:
        with writes._leader:
            writes._commit(writes._take())
    assert job.done
    assert groups == [[1, 2, 3], [4], [5], [6, 7]]
