"""Named dependencies: the wired container, and who is calling with which permission.

They are ``async`` because FastAPI runs every plain ``def`` dependency in its thread pool, and
those hops cost more than the work; only a named token's lookup, which reads the database,
goes to the pool.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.cursors import MAX_POSITION
from api.wiring import Container
from ledger.application import Principal
from ledger.errors import Forbidden, Unauthorized
from ledger.tokens import Permission, grants

ADMIN = Principal("admin", frozenset(Permission))
_bearer = HTTPBearer(
    auto_error=False, description="An API token: LEDGER_ADMIN_TOKEN or one issued by POST /tokens."
)


async def get_container(request: Request) -> Container:
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]


async def authenticate(container: Container, secret: str | None) -> Principal:
    if not secret:
        raise Unauthorized("send Authorization: Bearer <token>")
    admin = container.settings.admin_token
    if admin is not None and hmac.compare_digest(
        secret.encode(), admin.get_secret_value().encode()
    ):
        return ADMIN
    if len(secret) > 256:
        raise Unauthorized("the token is not valid")
    principal = await run_in_threadpool(container.app.authenticate, secret)
    if principal is None:
        raise Unauthorized("the token is not valid or was revoked")
    return principal


def _requiring(permission: Permission):
    # One flat dependency per permission: FastAPI's per-request cost grows with the depth of
    # the dependency graph, and this runs on every request.
    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        container: Container = request.app.state.container
        principal = await authenticate(container, credentials and credentials.credentials)
        if not grants(principal.permissions, permission):
            raise Forbidden(
                f"token {principal.name!r} lacks the {permission.value!r} permission",
                needed=permission.value,
            )
        return principal

    return check


Reader = Annotated[Principal, Depends(_requiring(Permission.READ))]
Writer = Annotated[Principal, Depends(_requiring(Permission.WRITE))]
Admin = Annotated[Principal, Depends(_requiring(Permission.ADMIN))]


def _read_after(view: str | None) -> Any:
    """``?after=<position>``: the read waits (on the event loop, not in a worker thread) until
    ``view`` includes that write; with no view (a read from the current state, which includes
    every write already), the position is only checked. Declare it after the token, so that
    only callers who may read can make the server wait."""

    async def wait(
        request: Request,
        after: Annotated[
            int | None,
            Query(
                ge=0,
                le=MAX_POSITION,
                description="A `position` from a write: the answer includes that write. A "
                "position beyond the newest event is refused at once (422 `unknown_position`); "
                "503 `view_lagging` if the view does not reach it within "
                "LEDGER_READ_WAIT_SECONDS.",
            ),
        ] = None,
    ) -> int | None:
        if after is not None:
            container: Container = request.app.state.container
            if view is None:
                await container.check_position(after)
            else:
                await container.wait_for(view, after)
        return after

    return Depends(wait)


StockAfter = Annotated[int | None, _read_after("stock_levels")]
CurrentAfter = Annotated[int | None, _read_after(None)]
ReportAfter = Annotated[int | None, _read_after("movement_report")]
OrdersAfter = Annotated[int | None, _read_after("order_list")]
ProductsAfter = Annotated[int | None, _read_after("products")]
