"""The ledger's error family mapped to HTTP, in one place: ``{"error", "detail", ...}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from adapters.database import UNAVAILABLE, is_unavailable
from api.openapi import api_routes
from ledger.errors import (
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    LedgerError,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
    ViewLagging,
)

log = logging.getLogger(__name__)

STATUS: list[tuple[type[LedgerError], int]] = [
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (Unauthorized, 401),
    (Forbidden, 403),
    (Busy, 503),
    (Unavailable, 503),
    (ViewLagging, 503),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def status_of(error: LedgerError) -> int:
    for family, status in STATUS:
        if isinstance(error, family):
            return status
    return 400


def _json_safe(value: Any) -> Any:
    return value if isinstance(value, (str, int, bool, type(None))) else str(value)


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, error: LedgerError) -> Response:
        status = status_of(error)
        if _console(request):
            return _console_error(request, status, error.code, error.detail)
        headers = {"Retry-After": "1"} if status == 503 else None
        if isinstance(error, Unauthorized):
            headers = {"WWW-Authenticate": "Bearer"}
        context = {k: _json_safe(v) for k, v in error.context.items()}
        return JSONResponse(error_body(error.code, error.detail, **context), status, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        if _console(request):
            first = (error.errors() or [{}])[0]
            field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
            message = f"{field}: {first.get('msg', 'invalid input')}"
            return _console_error(request, 422, "invalid_input", message)
        content_type = request.headers.get("content-type", "")
        problems = error.errors()
        if (
            any(p.get("loc", ())[:1] == ("body",) for p in problems)
            and request.method in ("POST", "PUT", "PATCH")
            and not _is_json(content_type)
        ):
            return JSONResponse(
                error_body("unsupported_media_type", "send the body as application/json"), 415
            )
        first = problems[0] if problems else {}
        if first.get("type") == "json_invalid":
            reason = first.get("ctx", {}).get("error", "malformed JSON")
            return JSONResponse(
                error_body("invalid_json", f"the body is not valid JSON: {reason}"), 400
            )
        field = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = first.get("msg", "invalid input")
        # Never echo the input back: it may be huge, or a value JSON cannot carry (NaN).
        return JSONResponse(
            error_body(
                "invalid_input",
                f"{field}: {message}" if field else message,
                field=field or None,
                problems=[
                    {
                        "field": ".".join(str(x) for x in p.get("loc", ()) if x != "body"),
                        "message": p.get("msg"),
                    }
                    for p in problems[:20]
                ],
            ),
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        if _console(request):
            return _console_error(request, error.status_code, code, str(error.detail))
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:
            # Starlette names only the first route of the path; each method is a route here.
            headers["Allow"] = ", ".join(_methods_of(request))
        return JSONResponse(error_body(code, str(error.detail)), error.status_code, headers)

    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        # The database is down, restarting or out of connections: the client may retry, and
        # the answer names neither the database's address nor anything it said.
        if not is_unavailable(error):
            return await unexpected(request, error)
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(error).__name__,
        )
        return JSONResponse(
            error_body("database_unavailable", "the database is not answering; try again"),
            503,
            {"Retry-After": "1"},
        )

    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, database_unavailable)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "an unexpected error occurred"), 500)


def _console(request: Request) -> bool:
    # Imported here: the console's pages import this module's status_of.
    from api.console.errors_page import is_console

    return is_console(request)


def _console_error(request: Request, status: int, code: str, detail: str) -> Response:
    from api.console.errors_page import console_error

    return console_error(request, status, code, detail)


def _methods_of(request: Request) -> list[str]:
    """Every method some route serves at this request's path."""
    methods: set[str] = set()
    for route in api_routes(request.app):
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(route.methods)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
