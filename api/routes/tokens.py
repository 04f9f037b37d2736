"""Named API tokens: issued and revoked by admins, stored only as hashes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from api.dependencies import Admin, ContainerDep
from api.schemas import CODE_PATTERN, ERRORS, ErrorOut, TokenCreated, TokenIn, TokenOut
from ledger.codes import check_code

router = APIRouter(tags=["tokens"])


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses={409: {"model": ErrorOut, "description": "The name is taken."}, **ERRORS},
    summary="Issue a named token (its secret is shown only in this answer)",
)
def create_token(body: TokenIn, container: ContainerDep, principal: Admin) -> dict[str, Any]:
    name = check_code(body.name, "name")
    secret = container.app.issue_token(name, body.permissions, issued_by=principal.name)
    return {
        "name": name,
        "permissions": sorted(p.value for p in set(body.permissions)),
        "token": secret,
    }


@router.get("/tokens", response_model=list[TokenOut], responses=ERRORS, summary="List tokens")
def list_tokens(container: ContainerDep, _: Admin) -> list[Any]:
    return [t.__dict__ for t in container.app.list_tokens()]


@router.delete(
    "/tokens/{name}",
    status_code=204,
    responses={404: {"model": ErrorOut, "description": "No such token."}, **ERRORS},
    summary="Revoke a token: it stops working at once",
)
def revoke_token(
    name: Annotated[
        str, Path(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
    ],
    container: ContainerDep,
    principal: Admin,
) -> Response:
    container.app.revoke_token(name, revoked_by=principal.name)
    return Response(status_code=204)
