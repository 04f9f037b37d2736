"""GET /stock and GET /stock/{sku}, served by the stock-levels view."""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.dependencies import ContainerDep, Reader
from api.schemas import ERRORS, ErrorOut, SkuLevels, StockPage
from api.wiring import Container
from ledger.errors import InvalidInput, NotFound, ViewLagging
from projections.stock_levels import LevelsRow

router = APIRouter(tags=["stock"])

After = Annotated[
    int | None,
    Query(
        ge=0,
        description="A `position` from a write: wait until the view includes it (503 if it "
        "does not within LEDGER_READ_WAIT_SECONDS).",
    ),
]
_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    503: {"model": ErrorOut, "description": "view_lagging: ?after= was not reached in time."},
}


@router.get(
    "/stock/{sku}",
    response_model=SkuLevels,
    responses={404: {"model": ErrorOut, "description": "The SKU never moved."}, **_READ_ERRORS},
    summary="Physical, reserved and available stock of one SKU, per warehouse and in total",
)
def get_sku(
    sku: Annotated[str, Path(max_length=64)],
    container: ContainerDep,
    _: Reader,
    after: After = None,
) -> dict[str, Any]:
    _wait(container, after)
    rows = container.stock_levels.levels_of(sku)
    if not rows:
        raise NotFound(f"SKU {sku!r} has no stock movements", sku=sku)
    return _sku_levels(sku, rows)


@router.get(
    "/stock",
    response_model=StockPage,
    responses=_READ_ERRORS,
    summary="Every SKU's levels, in SKU order, a page at a time",
)
def list_stock(
    container: ContainerDep,
    _: Reader,
    warehouse: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    after: After = None,
) -> dict[str, Any]:
    _wait(container, after)
    rows = container.stock_levels.page(
        warehouse=warehouse, after_sku=_decode_cursor(cursor), limit=limit + 1
    )
    items = [_sku_levels(sku, list(group)) for sku, group in groupby(rows, key=lambda r: r.sku)]
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = _encode_cursor(items[-1]["sku"])
    return {"items": items, "next_cursor": next_cursor}


def _wait(container: Container, after: int | None) -> None:
    if after is None:
        return
    timeout = container.settings.read_wait_seconds
    if not all(runner.wait_for(after, timeout) for runner in container.runners):
        raise ViewLagging(
            f"the stock view did not reach position {after} within {timeout:g} s; retry",
            position=after,
        )


def _sku_levels(sku: str, rows: list[LevelsRow]) -> dict[str, Any]:
    physical = sum((r.physical for r in rows), Decimal(0))
    reserved = sum((r.reserved for r in rows), Decimal(0))
    return {
        "sku": sku,
        "physical": physical,
        "reserved": reserved,
        "available": physical - reserved,
        "oversold": any(r.available < 0 for r in rows),
        "warehouses": [
            {
                "warehouse": r.warehouse,
                "physical": r.physical,
                "reserved": r.reserved,
                "available": r.available,
            }
            for r in rows
        ],
    }


def _encode_cursor(sku: str) -> str:
    return base64.urlsafe_b64encode(sku.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        sku = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None
    if not sku:
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return sku
