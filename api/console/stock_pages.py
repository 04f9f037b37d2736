"""The stock list and a SKU's page ("why is my stock X?"), each with a fragment that the page
fetches again every second so that it updates itself."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.auth import Person, Viewer
from api.console.changes import POSITION, Since, head_watch, view_watch
from api.console.chart import Point, step_chart
from api.console.i18n import translator
from api.console.templating import page
from api.dependencies import ContainerDep
from api.wiring import Container
from ledger.barcodes import display_barcode
from ledger.codes import check_code
from ledger.errors import InvalidInput, NotFound
from projections.current import current_levels
from projections.movement_report import ReportFilter

router = APIRouter()

PAGE = 50
SORTS = ("sku", "available_asc", "available_desc")
CHART_POINTS = 200
HISTORY_ROWS = 50

Text = Annotated[str, Query(max_length=200)]


def _stock_rows(
    container: Container, q: str, warehouse: str, sort: str, offset: int
) -> list[dict[str, Any]]:
    q = q.strip()
    warehouse = warehouse.strip()
    if warehouse:
        check_code(warehouse, "warehouse")
    skus = container.find_products(q) if q else None
    rows = container.stock_levels.listing(
        prefix=q or None,
        skus=skus,
        warehouse=warehouse or None,
        sort=sort if sort in SORTS else "sku",
        limit=PAGE + 1,
        offset=offset,
    )
    names = container.product_names([r.sku for r in rows])
    return [
        {
            "sku": r.sku,
            "name": names.get(r.sku),
            "physical": r.physical,
            "reserved": r.reserved,
            "available": r.available,
            "oversold": r.oversold,
        }
        for r in rows
    ]


@router.get("/ui/stock", response_class=HTMLResponse, include_in_schema=False)
def stock_list(
    request: Request,
    container: ContainerDep,
    person: Viewer,
    q: Text = "",
    warehouse: Text = "",
    sort: Text = "sku",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    params = {"q": q, "warehouse": warehouse, "sort": sort}
    since = container.stock_levels.position()
    problem = None
    try:
        rows = _stock_rows(container, q, warehouse, sort, offset)
    except InvalidInput as error:
        rows, problem = [], error.detail
    next_url = None
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        next_url = "/ui/stock?" + urlencode({**params, "offset": offset + PAGE})
    return page(
        request,
        "stock.html",
        person,
        rows=rows,
        q=q,
        warehouse=warehouse,
        sort=sort,
        sorts=SORTS,
        offset=offset,
        problem=problem,
        next_url=next_url,
        first_url="/ui/stock?" + urlencode(params),
        live_url="/ui/stock/rows?" + urlencode({**params, "offset": offset}),
        since=since,
    )


@router.get("/ui/stock/rows", response_class=HTMLResponse, include_in_schema=False)
async def stock_rows(
    request: Request,
    container: ContainerDep,
    person: Viewer,
    q: Text = "",
    warehouse: Text = "",
    sort: Text = "sku",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    since: Since = None,
) -> Response:
    """The list's rows once the stock-levels view moved past ``since`` (a long poll)."""
    position = await view_watch(request, container, "stock_levels").beyond(
        since, request.is_disconnected
    )
    if since is not None and position <= since:
        return Response(status_code=204, headers={POSITION: str(position)})
    try:
        rows = (await run_in_threadpool(_stock_rows, container, q, warehouse, sort, offset))[:PAGE]
    except InvalidInput:
        rows = []
    response = page(request, "stock_rows.html", person, rows=rows)
    response.headers[POSITION] = str(position)
    return response


def _sku_context(container: Container, person: Person, sku: str) -> dict[str, Any]:
    t = translator(person.language)
    levels = current_levels(container.app, container.stock_levels, sku)
    if not levels:
        raise NotFound(f"SKU {sku!r} has no stock movements", sku=sku)
    report = container.movement_report
    recent = report.report(ReportFilter(sku=sku), before=None, limit=CHART_POINTS)
    movements = []
    for item in recent:
        item["available_after"] = item["physical_after"] - item["reserved_after"]
        movements.append(item)
    charts = []
    for level in levels:
        points = [
            Point(
                m["occurred_at"].strftime("%Y-%m-%d %H:%M"),
                m["physical_after"],
                m["available_after"],
            )
            for m in reversed(movements)
            if m["warehouse"] == level.warehouse
        ]
        charts.append(
            (
                level.warehouse,
                step_chart(
                    points, title=t("chart"), physical=t("physical"), available=t("available")
                ),
            )
        )
    holdings = report.holdings(sku)
    for holding in holdings:
        platform, _, rest = (holding["reference"] or "").partition(" order ")
        holding["order_url"] = f"/ui/orders/{platform}/{rest}" if platform and rest else None
    physical = sum((r.physical for r in levels), Decimal(0))
    reserved = sum((r.reserved for r in levels), Decimal(0))
    return {
        "sku": sku,
        "levels": levels,
        "totals": {"physical": physical, "reserved": reserved, "available": physical - reserved},
        "charts": charts,
        "movements": movements[:HISTORY_ROWS],
        "holdings": holdings,
        "deliveries": container.deliveries.of_subject("stock", sku),
    }


def _product(container: Container, sku: str) -> dict[str, Any] | None:
    product = container.catalog.product(sku)
    if product is None:
        return None
    return {
        "name": product.name,
        "barcodes": [(display_barcode(k), u) for k, u in sorted(product.barcodes.items())],
    }


@router.get("/ui/stock/{sku}", response_class=HTMLResponse, include_in_schema=False)
def sku_page(request: Request, sku: str, container: ContainerDep, person: Viewer) -> HTMLResponse:
    check_code(sku, "sku")
    since = container.app.recorder.max_notification_id() or 0
    context = _sku_context(container, person, sku)
    return page(
        request,
        "sku.html",
        person,
        product=_product(container, sku),
        live_url=f"/ui/stock/{sku}/live",
        since=since,
        **context,
    )


@router.get("/ui/stock/{sku}/live", response_class=HTMLResponse, include_in_schema=False)
async def sku_live(
    request: Request, sku: str, container: ContainerDep, person: Viewer, since: Since = None
) -> Response:
    """The page's changing parts once any write followed ``since`` (a long poll): the page
    reads the stocks themselves, which include every answered write."""
    check_code(sku, "sku")
    position = await head_watch(request, container).beyond(since, request.is_disconnected)
    if since is not None and position <= since:
        return Response(status_code=204, headers={POSITION: str(position)})
    context = await run_in_threadpool(_sku_context, container, person, sku)
    response = page(request, "sku_live.html", person, **context)
    response.headers[POSITION] = str(position)
    return response
