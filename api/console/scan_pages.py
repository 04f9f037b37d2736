"""Scanning (bipagem) and inventory counts in the console.

A USB scanner types a barcode's digits and then Enter into the focused field. ``scan.js``
sends each scan (and each counted line) to these routes with ``Accept: application/json`` and
shows the answer at once, without reloading; without the script the same forms post and the
page answers. Each scan carries its own ``scan_id`` (each line its ``line_id``), made when it
was read, so a retry records once. The desks are the API's (``ledger/scanning.py``,
``ledger/counting.py``)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.auth import Person, Viewer, WriterPage, WriterPost
from api.console.changes import POSITION, Since, head_watch
from api.console.forms import decimal_text
from api.console.i18n import translator
from api.console.templating import page
from api.dependencies import ContainerDep
from api.errors import status_of
from api.wiring import Container
from ledger.counting import CountSummary
from ledger.counts import CountStatus
from ledger.errors import InvalidInput, LedgerError
from ledger.quantities import render
from ledger.scanning import scan_request

router = APIRouter()

Field = Annotated[str, Form(max_length=1000)]
Short = Annotated[str, Query(max_length=200)]
BARCODE_ERRORS = ("unknown_barcode", "invalid_barcode")


def _fresh_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _failure(error: LedgerError, **extra: Any) -> dict[str, Any]:
    return {
        "ok": False,
        "error": error.code,
        "detail": error.detail,
        "unknown": error.code in BARCODE_ERRORS,
        **extra,
    }


# -- scanning ------------------------------------------------------------------------------


def _scan_page(
    request: Request, person: Person, warehouse: str, direction: str, **context: Any
) -> HTMLResponse:
    return page(
        request,
        "scan.html",
        person,
        scan_id=_fresh_id("ui-scan"),
        warehouse=warehouse or "main",
        direction=direction if direction in ("in", "out") else "in",
        **context,
    )


@router.get("/ui/scan", response_class=HTMLResponse, include_in_schema=False)
def scan_page(
    request: Request, person: WriterPage, warehouse: Short = "main", direction: Short = "in"
) -> HTMLResponse:
    return _scan_page(request, person, warehouse.strip(), direction)


def _scan(container: Container, person: Person, body: dict[str, Any]) -> dict[str, Any]:
    movement = scan_request(body, container.catalog)
    [result] = container.app.record_movements([movement], recorded_by=person.name)
    name = container.product_names([result.sku]).get(result.sku)
    return {
        "ok": True,
        "barcode": body["barcode"],
        "sku": result.sku,
        "name": name,
        "warehouse": result.warehouse,
        "quantity": render(movement.quantity),
        "physical": render(result.physical),
        "reserved": render(result.reserved),
        "available": render(result.physical - result.reserved),
        "replayed": result.replayed,
    }


@router.post("/ui/scan", include_in_schema=False)
def record_scan(
    request: Request,
    container: ContainerDep,
    person: WriterPost,
    scan_id: Field = "",
    barcode: Field = "",
    warehouse: Field = "main",
    direction: Field = "in",
) -> Response:
    body = {
        "scan_id": scan_id or _fresh_id("ui-scan"),
        "barcode": barcode.strip(),
        "warehouse": warehouse.strip() or "main",
        "direction": direction,
    }
    try:
        answer = _scan(container, person, body)
        status = 200 if answer["replayed"] else 201
    except LedgerError as error:
        answer, status = _failure(error, barcode=body["barcode"]), status_of(error)
    if _wants_json(request):
        return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store"})
    # Without the script: the page again, with this scan's answer and a new scan_id.
    return _scan_page(
        request,
        person,
        body["warehouse"],
        direction,
        last=answer,
        status=200 if answer["ok"] else status,
    )


# -- inventory counts ----------------------------------------------------------------------


def _count_url(count_id: str, suffix: str = "") -> str:
    return f"/ui/counts/{quote(count_id, safe='')}{suffix}"


@router.get("/ui/counts", response_class=HTMLResponse, include_in_schema=False)
def counts_page(
    request: Request, person: Viewer, count_id: Short = "", warehouse: Short = "main"
) -> Response:
    if count_id.strip():
        return RedirectResponse(_count_url(count_id.strip()), status_code=303)
    return page(
        request,
        "counts.html",
        person,
        form={
            "count_id": f"{datetime.now(UTC):%Y-%m-%d}-{secrets.token_hex(3)}",
            "warehouse": warehouse.strip() or "main",
        },
    )


@router.post("/ui/counts", include_in_schema=False)
def open_count(
    request: Request,
    container: ContainerDep,
    person: WriterPost,
    count_id: Field = "",
    warehouse: Field = "main",
) -> Response:
    body = {"count_id": count_id.strip(), "warehouse": warehouse.strip() or "main"}
    try:
        summary, _ = container.counts.open(body, person.name)
    except LedgerError as error:
        return page(
            request,
            "counts.html",
            person,
            form=body,
            problem=error.detail,
            status=status_of(error),
        )
    return RedirectResponse(_count_url(summary.count_id), status_code=303)


def _summary_context(summary: CountSummary) -> dict[str, Any]:
    totals = {
        "counted": sum((r.counted for r in summary.rows), Decimal(0)),
        "change": sum((r.change for r in summary.rows), Decimal(0)),
    }
    return {"count": summary, "is_open": summary.status is CountStatus.OPEN, "totals": totals}


@router.get("/ui/counts/{count_id:path}/rows", response_class=HTMLResponse, include_in_schema=False)
async def count_rows(
    request: Request, count_id: str, container: ContainerDep, person: Viewer, since: Since = None
) -> Response:
    """The summary once any write followed ``since`` (a long poll, like the stock pages'):
    a line, or a movement of a counted SKU, changes it."""
    position = await head_watch(request, container).beyond(since, request.is_disconnected)
    if since is not None and position <= since:
        return Response(status_code=204, headers={POSITION: str(position)})
    summary = await run_in_threadpool(container.counts.summary, count_id)
    response = page(request, "count_rows.html", person, **_summary_context(summary))
    response.headers[POSITION] = str(position)
    return response


@router.post("/ui/counts/{count_id:path}/lines", include_in_schema=False)
def add_line(
    request: Request,
    count_id: str,
    container: ContainerDep,
    person: WriterPost,
    line_id: Field = "",
    sku: Field = "",
    barcode: Field = "",
    quantity: Field = "1",
) -> Response:
    body: dict[str, Any] = {
        "line_id": line_id or _fresh_id("ui-line"),
        "quantity": decimal_text(quantity) or "1",
    }
    if barcode.strip():
        body["barcode"] = barcode.strip()
    if sku.strip():
        body["sku"] = sku.strip()
    try:
        if "sku" not in body and "barcode" not in body:
            raise InvalidInput("give a SKU or a barcode", field="sku")
        line = container.counts.add_line(count_id, body, person.name)
    except LedgerError as error:
        if _wants_json(request):
            return JSONResponse(
                _failure(error, barcode=body.get("barcode"), sku=body.get("sku")),
                status_code=status_of(error),
                headers={"Cache-Control": "no-store"},
            )
        return _count_page(
            request,
            container,
            person,
            count_id,
            problem=error.detail,
            status=status_of(error),
            form={"sku": sku, "barcode": barcode, "quantity": quantity},
        )
    answer = {
        "ok": True,
        "sku": line.sku,
        "barcode": body.get("barcode"),
        "quantity": render(line.quantity),
        "counted": render(line.counted),
        "physical_at_count": render(line.physical_at_count),
        "replayed": line.replayed,
    }
    if _wants_json(request):
        return JSONResponse(
            answer, status_code=200 if line.replayed else 201, headers={"Cache-Control": "no-store"}
        )
    query = urlencode({"sku": line.sku, "counted": answer["counted"]})
    return RedirectResponse(_count_url(count_id, f"?{query}"), status_code=303)


@router.post("/ui/counts/{count_id:path}/close", include_in_schema=False)
def close_count(
    request: Request,
    count_id: str,
    container: ContainerDep,
    person: WriterPost,
    zero_uncounted: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        _, results = container.counts.close(
            count_id,
            {"zero_uncounted": bool(zero_uncounted)},
            person.name,
            container.skus_in_warehouse,
        )
    except LedgerError as error:
        return _count_page(
            request, container, person, count_id, problem=error.detail, status=status_of(error)
        )
    recorded = sum(1 for r in results if not r.replayed)
    return RedirectResponse(_count_url(count_id, f"?closed={recorded}"), status_code=303)


@router.post("/ui/counts/{count_id:path}/abandon", include_in_schema=False)
def abandon_count(
    request: Request, count_id: str, container: ContainerDep, person: WriterPost
) -> Response:
    try:
        container.counts.abandon(count_id, person.name)
    except LedgerError as error:
        return _count_page(
            request, container, person, count_id, problem=error.detail, status=status_of(error)
        )
    return RedirectResponse(_count_url(count_id, "?abandoned=1"), status_code=303)


def _count_page(
    request: Request,
    container: Container,
    person: Person,
    count_id: str,
    *,
    form: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    since = container.app.recorder.max_notification_id() or 0
    summary = container.counts.summary(count_id)
    return page(
        request,
        "count.html",
        person,
        line_id=_fresh_id("ui-line"),
        form=form or {"sku": "", "barcode": "", "quantity": "1"},
        url=_count_url(summary.count_id),
        live_url=_count_url(summary.count_id, "/rows"),
        since=since,
        **_summary_context(summary),
        **context,
    )


@router.get("/ui/counts/{count_id:path}", response_class=HTMLResponse, include_in_schema=False)
def count_page(
    request: Request,
    count_id: str,
    container: ContainerDep,
    person: Viewer,
    sku: Short = "",
    counted: Short = "",
    closed: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
    abandoned: Short = "",
) -> HTMLResponse:
    t = translator(person.language)
    notice = None
    if sku and counted:
        notice = t("count_line_added", sku=sku, counted=counted)
    elif closed is not None:
        notice = t("count_closed_notice", recorded=closed)
    elif abandoned:
        notice = t("count_abandoned_notice")
    return _count_page(request, container, person, count_id, notice=notice)
