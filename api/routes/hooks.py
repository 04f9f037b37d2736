"""POST /platforms/{name}/hook: platforms push orders here, authenticated by their secret."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from adapters.platform_hooks import receive
from api.dependencies import ContainerDep
from api.openapi import RAW_BODY
from api.routes.platforms import Name
from api.schemas import ErrorOut

router = APIRouter(tags=["platforms"])


@router.post(
    "/platforms/{name}/hook",
    responses={
        401: {"model": ErrorOut, "description": "invalid_signature: the secret or signature."},
        404: {"model": ErrorOut, "description": "No such platform."},
        422: {"model": ErrorOut, "description": "The body is not JSON, or not an order."},
        503: {
            "model": ErrorOut,
            "description": "credentials_unavailable: the platform's stored secret cannot be "
            "read (see its status); the platform should send the notification again later.",
        },
    },
    summary="A platform's order notification (VTEX hook, or a signed webhook order)",
    description="No bearer token: VTEX hooks carry the platform's `hook_secret` in "
    '`X-Ledger-Hook-Secret` (and VTEX\'s `{"hookConfig": "ping"}` is answered without it); '
    "webhook platforms sign the body with `X-Ledger-Signature: sha256=<HMAC-SHA256 hex>` under "
    "their `secret` credential and send the body of `POST /orders`.",
    openapi_extra={
        RAW_BODY: True,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
async def hook(name: Name, request: Request, container: ContainerDep) -> dict[str, Any]:
    body = await request.body()
    return await run_in_threadpool(
        receive,
        container.orders,
        container.vtex,
        container.credentials.read,
        name,
        request.headers,
        body,
    )
