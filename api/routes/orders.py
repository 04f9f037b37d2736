"""Orders: import, status, post-stock, invoice, edit, cancel, delete. Thin over the desk."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from starlette.convertors import PathConvertor, register_url_convertor

from api.cursors import decode_position, encode_position
from api.decimal_json import DecimalJSONRoute
from api.dependencies import ContainerDep, OrdersAfter, Reader, Writer
from api.order_schemas import InvoiceIn, ItemsIn, OrderIn, OrderOut, OrderPage, StatusIn
from api.schemas import CODE_PATTERN, ERRORS, READ_ERRORS, ErrorOut
from ledger.codes import check_code, check_text
from ledger.movements import parse_moment
from ledger.ordering import OrderOutcome
from ledger.orders import Order, OrderStatus, parse_invoice_value, parse_lines
from ledger.quantities import render
from projections.order_list import OrderFilter


class _OrderIdText(PathConvertor):
    """An order id in a path: any text, "/" and line breaks included (what an id may be is the
    order's rule to tell, 422 with its reason, not the router's bare 404), but for one ending
    in "/" and the word of a route after the id, which names that route (PATCH .../cancel is a
    method the route does not have: 405, not the order "x/cancel")."""

    regex = r"[\s\S]*(?<!/status)(?<!/post-stock)(?<!/invoice)(?<!/cancel)"


register_url_convertor("order_id", _OrderIdText())

router = APIRouter(route_class=DecimalJSONRoute, tags=["orders"])
# ``{order_id:order_id}``: a platform's order id may hold "/" (sent as is or as %2F, which the
# server decodes before routing). Only POST routes end in a word after the id, and the GET,
# PATCH and DELETE routes end at the id, so no path means two things.

Code = Annotated[
    str, Path(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorOut, "description": "No such order."},
    409: {"model": ErrorOut, "description": "order_conflict: the order cannot do that now."},
}


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses={200: {"model": OrderOut, "description": "Already imported."}, **_ERRORS},
    summary="Import an order (reserving its stock per the platform's rule)",
)
def import_order(body: OrderIn, container: ContainerDep, principal: Writer) -> JSONResponse:
    outcome = container.orders.import_order(
        check_code(body.platform, "platform"),
        check_code(body.order_id, "order_id"),
        body.status,
        check_text(body.carrier, "carrier", max_length=200),
        parse_lines(body.items),
        principal.name,
    )
    if outcome.order is None:
        return JSONResponse({"imported": False, "reason": outcome.reason}, status_code=202)
    return _answer(outcome, created=outcome.created)


@router.get(
    "/orders",
    response_model=OrderPage,
    responses=READ_ERRORS,
    summary="Orders by platform, status and blocked reason, newest import first",
)
def list_orders(
    container: ContainerDep,
    _: Reader,
    platform: Annotated[
        str | None, Query(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
    ] = None,
    status: OrderStatus | None = None,
    blocked: Annotated[
        bool | None, Query(description="true: only held orders; false: only imported ones.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    _after: OrdersAfter = None,
) -> dict[str, Any]:
    where = OrderFilter(
        platform=None if platform is None else check_code(platform, "platform"),
        status=None if status is None else status.value,
        blocked=blocked,
    )
    before = decode_position(cursor)
    rows = container.order_list.listing(where, before=before, limit=limit + 1)
    next_cursor = encode_position(rows[limit - 1]["first_position"]) if len(rows) > limit else None
    return {"items": [_row_out(r) for r in rows[:limit]], "next_cursor": next_cursor}


def _row_out(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "holds_reservation": row["reserved"] > 0}


@router.get(
    "/orders/{platform}/{order_id:order_id}",
    response_model=OrderOut,
    responses=_ERRORS,
    summary="An order",
)
def get_order(platform: Code, order_id: Code, container: ContainerDep, _: Reader) -> dict[str, Any]:
    return order_out(container.orders.get(platform, order_id))


@router.post(
    "/orders/{platform}/{order_id:order_id}/status",
    response_model=OrderOut,
    responses=_ERRORS,
    summary="Report the platform's status (late or out-of-order reports change nothing)",
)
def set_status(
    platform: Code, order_id: Code, body: StatusIn, container: ContainerDep, principal: Writer
) -> JSONResponse:
    return _answer(container.orders.advance(platform, order_id, body.status, principal.name))


@router.post(
    "/orders/{platform}/{order_id:order_id}/post-stock",
    response_model=OrderOut,
    responses=_ERRORS,
    summary="The order's stock leaves the warehouse now (consumes the reservation once)",
)
def post_stock(
    platform: Code, order_id: Code, container: ContainerDep, principal: Writer
) -> JSONResponse:
    return _answer(container.orders.post_stock(platform, order_id, principal.name))


@router.post(
    "/orders/{platform}/{order_id:order_id}/invoice",
    response_model=OrderOut,
    responses=_ERRORS,
    summary="Invoice the order: it becomes invoiced and its stock leaves, once",
)
def invoice(
    platform: Code, order_id: Code, body: InvoiceIn, container: ContainerDep, principal: Writer
) -> JSONResponse:
    record: dict[str, Any] = {
        "number": check_code(body.number, "number"),
        "key": check_text(body.key, "key", max_length=64),
        "issued_at": parse_moment(body.issued_at, "issued_at"),
        "value": None if body.value is None else parse_invoice_value(body.value),
        "tracking_code": check_text(body.tracking_code, "tracking_code", max_length=100),
        "tracking_url": check_text(body.tracking_url, "tracking_url", max_length=500),
    }
    return _answer(container.orders.invoice(platform, order_id, record, principal.name))


@router.patch(
    "/orders/{platform}/{order_id:order_id}",
    response_model=OrderOut,
    responses=_ERRORS,
    summary="Edit the items before invoicing (local; never sent to the platform)",
)
def edit(
    platform: Code, order_id: Code, body: ItemsIn, container: ContainerDep, principal: Writer
) -> JSONResponse:
    lines = parse_lines(body.items)
    return _answer(container.orders.edit(platform, order_id, lines, principal.name))


@router.post(
    "/orders/{platform}/{order_id:order_id}/cancel",
    response_model=OrderOut,
    responses=_ERRORS,
    summary="Cancel the order and release its reservation",
)
def cancel(
    platform: Code, order_id: Code, container: ContainerDep, principal: Writer
) -> JSONResponse:
    return _answer(container.orders.cancel(platform, order_id, principal.name))


@router.delete(
    "/orders/{platform}/{order_id:order_id}",
    response_model=OrderOut,
    responses=_ERRORS,
    summary="Delete the order and release its reservation",
)
def delete(
    platform: Code, order_id: Code, container: ContainerDep, principal: Writer
) -> JSONResponse:
    return _answer(container.orders.delete(platform, order_id, principal.name))


def _answer(outcome: OrderOutcome, *, created: bool = False) -> JSONResponse:
    body = {**order_out(outcome.order), "position": outcome.position}
    return JSONResponse(body, status_code=201 if created else 200)


def order_out(order: Order) -> dict[str, Any]:
    invoice = None
    if order.invoice is not None:
        invoice = {
            k: (render(v) if k == "value" and v is not None else v)
            for k, v in order.invoice.items()
        }
        if invoice.get("issued_at") is not None:
            invoice["issued_at"] = invoice["issued_at"].isoformat()
    return {
        "platform": order.platform,
        "order_id": order.order_id,
        "status": order.status.value,
        "carrier": order.carrier,
        "deleted": order.deleted,
        "blocked_reason": order.blocked_reason,
        "holds_reservation": order.holds_reservation,
        "stock_posted": order.stock_posted,
        "items": [
            {"sku": sku, "warehouse": wh, "quantity": render(q)}
            for (sku, wh), q in order.lines.items()
        ],
        "invoice": invoice,
    }
