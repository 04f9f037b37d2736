"""Orders: the list (search by order id, filter by platform, status and held), and an order's
page (its lifecycle, invoice and tracking, and the stock changes it made), each with a live
part that the page asks for again once something changed (a long poll, ``changes.py``). Held
orders say why; an admin maps the missing carrier from the order's page
(``platform_pages.map_carrier``), which imports the order at once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.auth import Person, Viewer
from api.console.changes import POSITION, Watch
from api.console.i18n import translator
from api.console.templating import page
from api.dependencies import ContainerDep
from api.wiring import Container
from ledger import ids
from ledger.codes import check_code
from ledger.errors import InvalidInput
from ledger.orders import Order, OrderStatus
from projections.movement_report import ReportFilter
from projections.order_list import OrderFilter

router = APIRouter()

PAGE = 50
MOVEMENT_ROWS = 200
STATUSES = tuple(s.value for s in OrderStatus)
# The platform names PUT /platforms accepts.
PLATFORM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

Text = Annotated[str, Query(max_length=200)]
Position = Annotated[int | None, Query(ge=1, le=2**62)]
Since = Annotated[int | None, Query(ge=0, le=2**62)]


def _watch(request: Request, container: Container, view: str) -> Watch:
    """The process's watch of a view's position (shared with every page that waits on it)."""
    return request.app.state.console_watches.of(view, container.views[view].position)


async def while_connected(request: Request, wait: Awaitable[int]) -> int | None:
    """What ``wait`` gives, or None as soon as the page that asked has gone: a long poll must
    not outlive its page (a server that stops waits for every request in flight)."""
    task = asyncio.ensure_future(wait)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.5)
            if done:
                return task.result()
            if await request.is_disconnected():
                return None
    finally:
        task.cancel()


async def _changed(request: Request, container: Container, view: str, since: int | None) -> int:
    """The view's position once it is past ``since`` (or the same, after a while, or when the
    page has gone)."""
    position = await while_connected(request, _watch(request, container, view).beyond(since))
    return since if position is None and since is not None else (position or 0)


def order_url(platform: str, order_id: str) -> str:
    # Order ids are codes: "/" may be one of their characters (the route takes a path).
    return f"/ui/orders/{quote(platform, safe='')}/{quote(order_id, safe='/')}"


def _listing(
    container: Container, where: OrderFilter, q: str, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """The order_list view's rows, newest import first; ``q`` is an order id or its start."""
    if q:
        where = replace(where, order_id_prefix=q)
    return container.order_list.listing(where, before=before, limit=limit)


def held_counts(container: Container) -> dict[str, int]:
    """How many orders each platform holds, from the order_list view: ``OrderDesk.held``
    reads every Held event in the store, too slow for a live part."""
    return container.order_list.held_counts()


def held_orders(container: Container, platform: str, limit: int) -> list[dict[str, Any]]:
    """A platform's newest held orders (at most ``limit``), from the order_list view."""
    rows = container.order_list.listing(
        OrderFilter(platform=platform, blocked=True), before=None, limit=limit
    )
    return [
        {**r, "url": order_url(r["platform"], r["order_id"])}
        for r in rows
        if not r["deleted"] and r["status"] != "cancelled"
    ]


def _filters(q: str, platform: str, status: str, held: str) -> tuple[str, OrderFilter]:
    q = q.strip()
    if q:
        check_code(q, "order_id")
    platform = platform.strip()
    if platform:
        check_code(platform, "platform")
    if status and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    return q, OrderFilter(
        platform=platform or None, status=status or None, blocked=True if held else None
    )


def _rows(
    container: Container, q: str, platform: str, status: str, held: str, before: int | None
) -> list[dict[str, Any]]:
    text, where = _filters(q, platform, status, held)
    rows = _listing(container, where, text, before, PAGE + 1)
    for row in rows:
        row["url"] = order_url(row["platform"], row["order_id"])
    return rows


@router.get("/ui/orders", response_class=HTMLResponse, include_in_schema=False)
def orders_list(
    request: Request,
    container: ContainerDep,
    person: Viewer,
    q: Text = "",
    platform: Text = "",
    status: Text = "",
    held: Text = "",
    before: Position = None,
) -> HTMLResponse:
    params = {"q": q, "platform": platform, "status": status, "held": held}
    params = {k: v for k, v in params.items() if v}
    since = container.order_list.position()  # before the rows: they include at least this
    problem = None
    try:
        rows = _rows(container, q, platform, status, held, before)
    except InvalidInput as error:
        rows, problem = [], error.detail
    next_url = None
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        next_url = "/ui/orders?" + urlencode({**params, "before": rows[-1]["first_position"]})
    live = {**params, **({"before": before} if before else {})}
    return page(
        request,
        "orders.html",
        person,
        rows=rows,
        q=q,
        platform=platform,
        status_filter=status,
        held=bool(held),
        statuses=STATUSES,
        platforms=container.publisher.platform_names(),
        problem=problem,
        paged=before is not None,
        next_url=next_url,
        first_url="/ui/orders?" + urlencode(params),
        live_url="/ui/orders/rows?" + urlencode(live),
        since=since,
    )


@router.get("/ui/orders/rows", response_class=HTMLResponse, include_in_schema=False)
async def orders_rows(
    request: Request,
    container: ContainerDep,
    person: Viewer,
    q: Text = "",
    platform: Text = "",
    status: Text = "",
    held: Text = "",
    before: Position = None,
    since: Since = None,
) -> Response:
    """The list's rows once the order_list view moved past ``since`` (a long poll)."""
    position = await _changed(request, container, "order_list", since)
    if since is not None and position <= since:
        return Response(status_code=204, headers={POSITION: str(position)})
    try:
        rows = await run_in_threadpool(_rows, container, q, platform, status, held, before)
    except InvalidInput:
        rows = []
    response = page(request, "order_rows.html", person, rows=rows[:PAGE])
    response.headers[POSITION] = str(position)
    return response


# -- an order --------------------------------------------------------------------------------


def _lifecycle(container: Container, order: Order, person: Person) -> list[dict[str, Any]]:
    """What happened to the order, oldest first, from its own events."""
    t = translator(person.language)
    steps = []
    for event in container.app.events.get(ids.order_id(order.platform, order.order_id)):
        step: dict[str, Any] = {"when": event.timestamp, "kind": type(event).__name__}
        if isinstance(event, Order.Imported):
            what = t("ord_ev_imported", status=t("ord_status_" + event.status))
        elif isinstance(event, Order.StatusChanged):
            what = t("ord_ev_status", status=t("ord_status_" + event.status))
        elif isinstance(event, Order.Held):
            what = t("ord_ev_held", reason=event.reason)
        elif isinstance(event, Order.Released):
            what = t("ord_ev_released")
        elif isinstance(event, Order.StockReserved):
            what = t("ord_ev_reserved")
        elif isinstance(event, Order.StockReleased):
            what = t("ord_ev_unreserved")
        elif isinstance(event, Order.StockPosted):
            what = t("ord_ev_posted")
        elif isinstance(event, Order.Invoiced):
            what = t("ord_ev_invoiced", number=event.invoice.get("number") or "")
        elif isinstance(event, Order.TrackingUpdated):
            what = t("ord_ev_tracking", code=event.tracking_code or "")
        elif isinstance(event, Order.LinesEdited):
            what = t("ord_ev_edited")
        elif isinstance(event, Order.Deleted):
            what = t("ord_ev_deleted")
        else:
            what = step["kind"]
        step["what"] = what
        steps.append(step)
    return steps


def _safe_link(url: Any) -> str | None:
    """A tracking URL is the platform's text: a link only when it is a web address."""
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        return url
    return None


def order_context(
    container: Container, person: Person, platform: str, order_id: str
) -> dict[str, Any]:
    check_code(platform, "platform")
    check_code(order_id, "order_id")
    order = container.orders.get(platform, order_id)  # NotFound: the console's 404 page
    invoice = dict(order.invoice) if order.invoice else None
    if invoice is not None:
        invoice["tracking_link"] = _safe_link(invoice.get("tracking_url"))
        value = invoice.get("value")  # money, in whole cents: always shown with two places
        invoice["value_text"] = f"{value:.2f}" if isinstance(value, Decimal) else value
    reference = f"{platform} order {order_id}"
    movements = container.movement_report.report(
        ReportFilter(reference=reference), before=None, limit=MOVEMENT_ROWS
    )
    lines = [
        {
            "sku": sku,
            "warehouse": warehouse,
            "quantity": quantity,
            "reserved": order.reserved.get((sku, warehouse)),
        }
        for (sku, warehouse), quantity in order.lines.items()
    ]
    deliveries = [
        d for d in container.deliveries.of_subject("order", order_id) if d["platform"] == platform
    ]
    return {
        "order": order,
        "order_url": order_url(platform, order_id),
        "lines": lines,
        "invoice": invoice,
        "steps": _lifecycle(container, order, person),
        "movements": movements,
        "reference": reference,
        "deliveries": deliveries,
        "mappable": (
            order.blocked_reason is not None
            and order.carrier is not None
            and PLATFORM_NAME.fullmatch(platform) is not None
        ),
    }


# The live part first: an order id may hold "/", so the page's route takes a path.
@router.get(
    "/ui/orders/{platform}/{order_id:path}/live",
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def order_live(
    request: Request,
    platform: str,
    order_id: str,
    container: ContainerDep,
    person: Viewer,
    since: Since = None,
) -> Response:
    """The page's changing parts once the movement report moved past ``since`` (a long poll).
    That view reads every event, the order's own too, so its position passing a write means
    the order (read from its events) and its stock changes both include it."""
    position = await _changed(request, container, "movement_report", since)
    if since is not None and position <= since:
        return Response(status_code=204, headers={POSITION: str(position)})
    context = await run_in_threadpool(order_context, container, person, platform, order_id)
    response = page(request, "order_live.html", person, **context)
    response.headers[POSITION] = str(position)
    return response


@router.get(
    "/ui/orders/{platform}/{order_id:path}", response_class=HTMLResponse, include_in_schema=False
)
def order_page(
    request: Request,
    platform: str,
    order_id: str,
    container: ContainerDep,
    person: Viewer,
    mapped: Text = "",
    released: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    since = container.movement_report.position()  # before the order: it includes this
    context = order_context(container, person, platform, order_id)
    notice = None
    if mapped:
        notice = translator(person.language)("plat_carrier_mapped", carrier=mapped, n=released)
    return page(
        request,
        "order.html",
        person,
        notice=notice,
        carrier_form={"carrier": ""},
        live_url=context["order_url"] + "/live",
        since=since,
        **context,
    )
