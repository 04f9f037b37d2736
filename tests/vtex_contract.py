"""Checking a request against what VTEX accepts: the project's own description always, and
VTEX's official schema where that layer can load.

A test that needs the official layer asks ``require_official()``: without VTEX's files (a bare
clone) it is skipped with the reason, which pytest's ``-ra`` summary shows; with ``CI`` set in
the environment the same absence is a failure, since CI must run the official check.
"""

from __future__ import annotations

import os
from email.message import Message
from typing import Any

import httpx
import pytest

from adapters.vtex_emulator import description, official
from adapters.vtex_emulator.official import OfficialSchemas


def require_official() -> OfficialSchemas:
    found = official.availability()
    if not found.on:
        message = f"needs VTEX's official schema check, which cannot load: {found.detail}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return official.load(found.directory)


def headers_of(request: httpx.Request) -> Message:
    headers = Message()
    for name, value in request.headers.items():
        headers[name] = value
    return headers


def request_problems(
    request: httpx.Request, schemas: OfficialSchemas | None = None
) -> list[dict[str, Any]]:
    """How ``request`` breaks the own description (and, given ``schemas``, VTEX's official
    schema); empty when it conforms. The path is read raw, as the emulator routes it."""
    path, _, query = request.url.raw_path.decode("ascii").partition("?")
    found = description.match(request.method, path)
    assert found.operation is not None, f"no VTEX operation serves {request.method} {path}"
    headers = headers_of(request)
    problems = description.problems(found.operation, query, headers, request.content)
    if schemas is not None:
        problems += schemas.request_problems(
            found.operation, path, found.params, query, headers, request.content
        )
    return problems
