"""POST /scans (bipagem) and inventory count sessions (/counts). Writers record, readers read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse
from pydantic import SkipValidation

from api.decimal_json import DecimalJSONRoute
from api.dependencies import ContainerDep, Reader, Writer
from api.routes.movements import movement_out
from api.schemas import (
    CODE_PATTERN,
    ERRORS,
    CountCloseIn,
    CountIn,
    CountLineIn,
    CountLineOut,
    CountOut,
    ErrorOut,
    MovementOut,
    ScanIn,
)
from ledger.counting import CountSummary
from ledger.movements import MovementResult
from ledger.quantities import render
from ledger.scanning import scan_request

router = APIRouter(route_class=DecimalJSONRoute, tags=["scans and counts"])

CountId = Annotated[
    str, Path(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
]
_COUNT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorOut, "description": "No such count (or, for a line, barcode)."},
    409: {
        "model": ErrorOut,
        "description": "count_not_open (the session is closed or abandoned) or "
        "idempotency_conflict (an id reused with another body).",
    },
}


@router.post(
    "/scans",
    status_code=201,
    response_model=MovementOut,
    responses={
        200: {"model": MovementOut, "description": "Replay of an earlier scan."},
        **ERRORS,
        404: {"model": ErrorOut, "description": "unknown_barcode: nothing is recorded."},
        409: {
            "model": ErrorOut,
            "description": "insufficient_stock, or idempotency_conflict (scan_id reused "
            "with another body).",
        },
    },
    summary="Record a scan: the barcode's SKU moves by its units times count",
)
def post_scan(
    body: Annotated[SkipValidation[ScanIn], Body()],
    container: ContainerDep,
    principal: Writer,
) -> JSONResponse:
    request = scan_request(body, container.catalog)
    [result] = container.app.record_movements([request], recorded_by=principal.name)
    return JSONResponse(movement_out(result), status_code=200 if result.replayed else 201)


def count_out(summary: CountSummary, results: list[MovementResult] | None = None) -> dict:
    out: dict[str, Any] = {
        "count_id": summary.count_id,
        "warehouse": summary.warehouse,
        "status": summary.status.value,
        "opened_by": summary.opened_by,
        "opened_at": summary.opened_at.isoformat(),
        "closed_at": summary.closed_at.isoformat() if summary.closed_at else None,
        "zero_uncounted": summary.zero_uncounted,
        "lines": summary.lines,
        "skus": [
            {
                "sku": row.sku,
                "counted": render(row.counted),
                "physical_at_count": render(row.physical_at_count),
                "last_line": row.last_line,
                "counted_at": row.counted_at.isoformat(),
                "physical_now": render(row.physical_now),
                "moved_since": render(row.moved_since),
                "change": render(row.change),
                "physical_after": render(row.physical_after),
            }
            for row in summary.rows
        ],
    }
    if results is not None:
        out["movements"] = [movement_out(r) for r in results]
    return out


@router.post(
    "/counts",
    status_code=201,
    response_model=CountOut,
    responses={200: {"model": CountOut, "description": "Already open."}, **_COUNT_ERRORS},
    summary="Open an inventory count session for a warehouse",
)
def open_count(
    body: Annotated[SkipValidation[CountIn], Body()],
    container: ContainerDep,
    principal: Writer,
) -> JSONResponse:
    summary, created = container.counts.open(body, principal.name)
    return JSONResponse(count_out(summary), status_code=201 if created else 200)


@router.post(
    "/counts/{count_id}/lines",
    status_code=201,
    response_model=CountLineOut,
    responses={200: {"model": CountLineOut, "description": "Replay."}, **_COUNT_ERRORS},
    summary="Record a counted quantity of a SKU (or of a barcode's units)",
)
def add_line(
    count_id: CountId,
    body: Annotated[SkipValidation[CountLineIn], Body()],
    container: ContainerDep,
    principal: Writer,
) -> JSONResponse:
    line = container.counts.add_line(count_id, body, principal.name)
    return JSONResponse(
        {
            "line_id": line.line_id,
            "sku": line.sku,
            "quantity": render(line.quantity),
            "counted": render(line.counted),
            "physical_at_count": render(line.physical_at_count),
            "position": line.position,
        },
        status_code=200 if line.replayed else 201,
    )


@router.get("/counts/{count_id}", response_model=CountOut, responses=_COUNT_ERRORS)
def get_count(count_id: CountId, container: ContainerDep, _: Reader) -> JSONResponse:
    return JSONResponse(count_out(container.counts.summary(count_id)))


@router.post(
    "/counts/{count_id}/close",
    response_model=CountOut,
    responses=_COUNT_ERRORS,
    summary="Close: each counted SKU becomes its count plus what moved after its last line",
)
def close_count(
    count_id: CountId,
    container: ContainerDep,
    principal: Writer,
    body: Annotated[SkipValidation[CountCloseIn] | None, Body()] = None,
) -> JSONResponse:
    summary, results = container.counts.close(
        count_id, body, principal.name, container.skus_in_warehouse
    )
    return JSONResponse(count_out(summary, results))


@router.delete("/counts/{count_id}", response_model=CountOut, responses=_COUNT_ERRORS)
def abandon_count(count_id: CountId, container: ContainerDep, principal: Writer) -> JSONResponse:
    return JSONResponse(count_out(container.counts.abandon(count_id, principal.name)))
