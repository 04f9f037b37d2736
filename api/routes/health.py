"""GET /healthz: is the database reachable, and how far behind the event store is each view."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.dependencies import ContainerDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={
        503: {"model": Health, "description": "The database is unreachable or a view fails."}
    },
    summary="Liveness and view lag (no token needed)",
)
def healthz(container: ContainerDep) -> Any:
    try:
        head, views = container.view_health()
    except Exception as error:
        return JSONResponse(
            {
                "status": "degraded",
                "database": f"unreachable: {type(error).__name__}",
                "event_store_position": 0,
                "views": [],
            },
            status_code=503,
        )
    degraded = any(v["failing"] for v in views)
    body = {
        "status": "degraded" if degraded else "ok",
        "database": container.database.backend,
        "event_store_position": head,
        "views": views,
    }
    return JSONResponse(body, status_code=503 if degraded else 200)
