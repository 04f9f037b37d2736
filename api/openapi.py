"""The OpenAPI document tells the truth: every status a route can answer is listed.

Some answers come from layers every route shares, not from the route's own code: the bearer
check (401, 403), the JSON body reader (400 invalid JSON, 413 too large, 415 not JSON), path
lookups (404), validation (422) and the database or a view not answering in time (503). Listing
them by hand on each route is how they went missing, so they are derived here, once, from each
route's shape, when the application is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase

from api.schemas import ErrorOut

_ERROR = {"model": ErrorOut}
_SHARED: dict[int, str] = {
    400: "invalid_json: the body is not valid JSON (or not UTF-8).",
    401: "Missing or invalid bearer token.",
    403: "The token lacks the permission.",
    404: "No such resource.",
    413: "body_too_large: the body is larger than the route accepts.",
    415: "unsupported_media_type: the body is not application/json.",
    422: "Invalid input; `field` names the culprit.",
    503: "database_unavailable, busy or view_lagging: try again (see Retry-After).",
}
RAW_BODY = "x-raw-body"
"""An ``openapi_extra`` key for routes that read their body themselves (a platform's hook)."""


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every API route of the application, those of included routers too (FastAPI keeps an
    included router as one entry of the application's routes)."""
    stack: list[Any] = list(app.router.routes)
    while stack:
        route = stack.pop(0)
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            stack[:0] = route.original_router.routes


def document_shared_responses(app: FastAPI) -> None:
    """Add to each route the shared answers it can give and does not list yet."""
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        statuses = set()
        if _needs_token(route.dependant):
            statuses |= {401, 403}
        if route.body_field is not None:
            statuses |= {400, 413, 415, 422}
        elif (route.openapi_extra or {}).get(RAW_BODY):
            statuses |= {413, 422}  # read as bytes, whatever their type; not JSON is a 422
        if route.dependant.path_params:
            statuses |= {404, 422}
        if route.dependant.query_params:
            statuses.add(422)
        if route.path not in ("/healthz",):
            statuses.add(503)
        for status in sorted(statuses):
            if status not in route.responses and str(status) not in route.responses:
                # A copy: routes of one router may share one ``responses`` mapping.
                route.responses = {
                    **route.responses,
                    status: {**_ERROR, "description": _SHARED[status]},
                }
    app.openapi_schema = None  # built again, with the additions, when first asked for


def _needs_token(dependant: Dependant) -> bool:
    stack = [dependant]
    while stack:
        current = stack.pop()
        if isinstance(current.call, SecurityBase):
            return True
        stack.extend(current.dependencies)
    return False


def error_example(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}
