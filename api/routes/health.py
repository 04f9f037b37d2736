"""Liveness (``/healthz``), readiness (``/readyz``) and each view's progress (``/views``).

The first two answer without a token, for load balancers and orchestrators, so they reveal
nothing of the database's address or data; the detail is behind a read token.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.dependencies import ContainerDep, Reader
from api.schemas import ERRORS, Liveness, Readiness, ViewsHealth

router = APIRouter(tags=["health"])

READY_WITHIN = 3.0  # seconds: orchestrators' probes time out at a few seconds


@router.get(
    "/healthz",
    response_model=Liveness,
    summary="Liveness: the process answers (no token; touches no database)",
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {"model": Readiness, "description": "The database is unreachable or a view fails."}
    },
    summary="Readiness: the database answers and no view is failing (no token)",
    description="A failing platform does not make the service unready: see "
    "`GET /platforms/{name}/status` and `/metrics`.",
)
async def readyz(container: ContainerDep) -> JSONResponse:
    try:
        problems = await asyncio.wait_for(run_in_threadpool(container.readiness), READY_WITHIN)
    except TimeoutError:
        # A probe must answer: waiting for a connection is what a dead database looks like.
        problems = [{"component": "database", "problem": "unreachable"}]
    if problems:
        return JSONResponse({"status": "unready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready", "problems": []})


@router.get(
    "/views",
    response_model=ViewsHealth,
    responses=ERRORS,
    summary="The event store's position and each view's position, lag and health",
)
def views(container: ContainerDep, _: Reader) -> dict[str, Any]:
    head, views = container.view_health()
    return {"database": container.database.backend, "event_store_position": head, "views": views}
