"""POST /movements and POST /movements/batch: thin over the application service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.decimal_json import DecimalJSONRoute
from api.dependencies import ContainerDep, Writer
from api.schemas import ERRORS, BatchIn, BatchOut, ErrorOut, MovementIn, MovementOut
from ledger.errors import BatchTooLarge, InvalidInput
from ledger.movements import MovementRequest, MovementResult
from ledger.quantities import render

router = APIRouter(route_class=DecimalJSONRoute, tags=["movements"])

_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    400: {"model": ErrorOut, "description": "The body is not valid JSON."},
    409: {
        "model": ErrorOut,
        "description": "insufficient_stock (the warehouse does not allow negative stock) or "
        "idempotency_conflict (movement_id already recorded with another body).",
    },
    413: {"model": ErrorOut, "description": "The body is too large."},
    415: {"model": ErrorOut, "description": "The body is not application/json."},
    503: {"model": ErrorOut, "description": "Too many concurrent changes; retry."},
}


@router.post(
    "/movements",
    status_code=201,
    response_model=MovementOut,
    responses={
        200: {"model": MovementOut, "description": "Replay of an earlier movement."},
        **_WRITE_ERRORS,
    },
    summary="Record one stock movement",
)
def post_movement(body: MovementIn, container: ContainerDep, principal: Writer) -> JSONResponse:
    request = MovementRequest.parse(body.model_dump(exclude_unset=True))
    [result] = container.app.record_movements([request], recorded_by=principal.name)
    return JSONResponse(movement_out(result), status_code=200 if result.replayed else 201)


@router.post(
    "/movements/batch",
    status_code=201,
    response_model=BatchOut,
    responses={
        200: {"model": BatchOut, "description": "Every movement was a replay."},
        **_WRITE_ERRORS,
    },
    summary="Record many movements, all or nothing, in one transaction",
)
def post_batch(body: BatchIn, container: ContainerDep, principal: Writer) -> JSONResponse:
    limit = container.settings.max_batch
    if len(body.movements) > limit:
        raise BatchTooLarge(
            f"a batch holds at most {limit} movements; this one has {len(body.movements)}",
            field="movements",
            limit=limit,
        )
    requests = [_row(index, movement) for index, movement in enumerate(body.movements)]
    results = container.app.record_movements(requests, recorded_by=principal.name)
    return JSONResponse(
        {"results": [movement_out(r) for r in results]},
        status_code=200 if all(r.replayed for r in results) else 201,
    )


def _row(index: int, movement: Any) -> MovementRequest:
    try:
        return MovementRequest.parse(movement)
    except InvalidInput as error:
        field = f"movements[{index}].{error.context.get('field', '')}".rstrip(".")
        raise InvalidInput(f"{field}: {error.detail}", field=field, row=index) from None


def movement_out(result: MovementResult) -> dict[str, Any]:
    # Returned as a JSONResponse: the response model documents this shape, and validating
    # 50,000 results against it again would cost more than recording them.
    return {
        "movement_id": result.movement_id,
        "sku": result.sku,
        "warehouse": result.warehouse,
        "physical": render(result.physical),
        "reserved": render(result.reserved),
        "available": render(result.available),
        "position": result.position,
    }
