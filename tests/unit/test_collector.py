"""The garbage collector is paused during batch requests only, and always resumed."""

from __future__ import annotations

import asyncio
import gc

import pytest

from api.collector import CollectorPaused


def run(app: CollectorPaused, path: str) -> None:
    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        return None

    asyncio.run(app({"type": "http", "path": path}, receive, send))


def test_the_collector_is_off_during_a_batch_request_and_back_on_after() -> None:
    seen: list[bool] = []

    async def inner(scope: dict, receive: object, send: object) -> None:
        seen.append(gc.isenabled())

    app = CollectorPaused(inner, paths=frozenset({"/movements/batch"}))  # type: ignore[arg-type]
    run(app, "/movements/batch")
    run(app, "/movements")
    assert seen == [False, True]
    assert gc.isenabled()


def test_the_collector_resumes_when_the_request_fails() -> None:
    async def inner(scope: dict, receive: object, send: object) -> None:
        raise RuntimeError("boom")

    app = CollectorPaused(inner, paths=frozenset({"/movements/batch"}))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        run(app, "/movements/batch")
    assert gc.isenabled()
