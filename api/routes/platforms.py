"""PUT /platforms/{name}, GET /platforms/{name} and its status. Admin writes; reads need read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import SkipValidation

from api.decimal_json import DecimalJSONRoute
from api.dependencies import Admin, ContainerDep, Reader
from api.order_schemas import PlatformIn, PlatformOut, PlatformStatus, RetryOut
from api.routes.orders import order_out
from api.schemas import ERRORS, ErrorOut

router = APIRouter(route_class=DecimalJSONRoute, tags=["platforms"])

Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorOut, "description": "No such platform."},
}


@router.put(
    "/platforms/{name}",
    response_model=PlatformOut,
    responses={
        **ERRORS,
        422: {
            "model": ErrorOut,
            "description": "invalid_input (`field` names the setting), or secret_key_missing: "
            "credentials were sent and LEDGER_SECRET_KEY is not set (PostgreSQL). Nothing is "
            "recorded.",
        },
    },
    summary="Configure a platform; held orders it now allows are imported at once",
)
def configure(
    name: Name,
    # Documented by PlatformIn, checked once, by the domain (ledger/platform_settings.py).
    body: Annotated[SkipValidation[PlatformIn], Body()],
    container: ContainerDep,
    _: Admin,
) -> dict[str, Any]:
    platform, _released, position = container.orders.configure(name, body)
    return {**platform.public(), "position": position}


@router.get(
    "/platforms/{name}",
    response_model=PlatformOut,
    response_model_exclude_unset=True,
    responses=_NOT_FOUND,
)
def get_platform(name: Name, container: ContainerDep, _: Reader) -> dict[str, Any]:
    return container.orders.platform(name).public()


@router.get(
    "/platforms/{name}/status",
    response_model=PlatformStatus,
    responses=_NOT_FOUND,
    summary="What waits: orders held and why",
)
def platform_status(name: Name, container: ContainerDep, _: Reader) -> dict[str, Any]:
    platform = container.orders.platform(name)
    held = container.orders.held(name)
    return {
        "name": name,
        "configuration_problem": container.configuration_problem(platform),
        "blocked_orders": len(held),
        "blocked": [order_out(o) for o in held],
        "deliveries": container.deliveries.status(name),
        "jobs": container.deliveries.jobs(f"{name}:"),
    }


@router.post(
    "/platforms/{name}/retry",
    response_model=RetryOut,
    responses=_NOT_FOUND,
    summary="Send the failed deliveries again, now",
)
def retry(name: Name, container: ContainerDep, _: Admin) -> dict[str, Any]:
    container.orders.platform(name)
    return {"retried": container.deliveries.retry_failed(name)}
