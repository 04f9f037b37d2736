"""GET /stock/{sku}, current to the last answered write; GET /stock, from the stock-levels view."""

from __future__ import annotations

from decimal import Decimal
from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.cursors import decode_cursor, encode_cursor
from api.dependencies import ContainerDep, CurrentAfter, Reader, StockAfter
from api.routes.catalog import product_out
from api.schemas import CODE_PATTERN, READ_ERRORS, ErrorOut, SkuLevels, StockPage
from ledger.codes import check_code
from ledger.errors import NotFound
from ledger.movements import parse_moment
from projections.current import current_levels, warehouses_of
from projections.history import levels_at
from projections.stock_levels import LevelsRow

router = APIRouter(tags=["stock"])


@router.get(
    "/stock/{sku}",
    response_model=SkuLevels,
    response_model_exclude_unset=True,
    responses={404: {"model": ErrorOut, "description": "The SKU never moved."}, **READ_ERRORS},
    summary="Physical, reserved and available stock of one SKU, per warehouse and in total",
    description="Always includes every write answered before this request arrived (no "
    "`?after=` needed). With `?at=`, the levels as they stood at that moment, by the "
    "movements' `occurred_at`.",
)
def get_sku(
    sku: Annotated[
        str, Path(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
    ],
    container: ContainerDep,
    _: Reader,
    _after: CurrentAfter = None,
    at: Annotated[
        str | None,
        Query(
            max_length=64,
            description="An ISO 8601 date-time with zone: the levels as they stood then, by "
            "the movements' occurred_at, computed from the events.",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
) -> dict[str, Any]:
    check_code(sku, "sku")
    moment = parse_moment(at, "at")
    if moment is not None:
        warehouses = warehouses_of(container.app, container.stock_levels, sku)
        if not warehouses:
            raise NotFound(f"SKU {sku!r} has no stock movements", sku=sku)
        rows = levels_at(container.app, container.movement_report, sku, warehouses, moment)
        return {**_sku_levels(sku, rows), "at": moment}
    rows = current_levels(container.app, container.stock_levels, sku)
    if not rows:
        raise NotFound(f"SKU {sku!r} has no stock movements", sku=sku)
    product = product_out(sku, container.catalog.product(sku))
    return {**_sku_levels(sku, rows), "name": product["name"], "barcodes": product["barcodes"]}


@router.get(
    "/stock",
    response_model=StockPage,
    responses=READ_ERRORS,
    summary="Every SKU's levels, in SKU order, a page at a time",
)
def list_stock(
    container: ContainerDep,
    _: Reader,
    warehouse: Annotated[
        str | None, Query(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    _after: StockAfter = None,
) -> dict[str, Any]:
    after_sku = decode_cursor(cursor)
    rows = container.stock_levels.page(
        warehouse=None if warehouse is None else check_code(warehouse, "warehouse"),
        after_sku=None if after_sku is None else check_code(after_sku, "cursor"),
        limit=limit + 1,
    )
    items = [_sku_levels(sku, list(group)) for sku, group in groupby(rows, key=lambda r: r.sku)]
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(items[-1]["sku"])
    return {"items": items, "next_cursor": next_cursor}


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
