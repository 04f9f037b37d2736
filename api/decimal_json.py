"""Request bodies parsed with exact decimals.

FastAPI decodes JSON with ``json.loads``, which turns 123456789012.123456 into a binary float
and accepts NaN and Infinity. Routes of this class decode numbers with fractions as ``Decimal``
and refuse the non-standard constants, before pydantic ever sees the body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a number JSON allows", name, 0)


def loads(raw: bytes | str) -> Any:
    return json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)


class DecimalJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = loads(body)
            except RecursionError:
                raise json.JSONDecodeError("nested too deeply", "", 0) from None
            except UnicodeDecodeError:
                raise json.JSONDecodeError("not UTF-8", "", 0) from None
        return self._json


class DecimalJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decimal_handler(request: Request) -> Response:
            return await handler(DecimalJSONRequest(request.scope, request.receive))

        return decimal_handler
