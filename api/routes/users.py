"""The console's people: created, listed and disabled by admins (JSON, bearer tokens)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.dependencies import Admin, ContainerDep
from api.schemas import CODE_PATTERN, ERRORS, ErrorOut, UserIn, UserOut

router = APIRouter(tags=["users"])

Name = Annotated[
    str, Path(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
]


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    responses={409: {"model": ErrorOut, "description": "The name is taken."}, **ERRORS},
    summary="Create a person who signs in to the console with a name and a password",
)
def create_user(body: UserIn, container: ContainerDep, principal: Admin) -> Any:
    return container.people.create(body.name, body.password, body.role, principal.name)


@router.get("/users", response_model=list[UserOut], responses=ERRORS, summary="List users")
def list_users(container: ContainerDep, _: Admin) -> Any:
    return container.people.list()


@router.delete(
    "/users/{name}",
    response_model=UserOut,
    responses={404: {"model": ErrorOut, "description": "No such user."}, **ERRORS},
    summary="Disable a user: their sessions end at once; the name is never reused",
)
def disable_user(name: Name, container: ContainerDep, principal: Admin) -> Any:
    user = container.people.disable(name, principal.name)
    container.sessions.close_all(name)
    return user
