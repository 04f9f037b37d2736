"""The movement report in the console: the API's filters, newest first, a page at a time with
the report's own cursor, and the same CSV as ``GET /movements`` with ``Accept: text/csv``.

The filters' dates are days in UTC (the console shows every moment in UTC): "from" is the
start of its day, "until" includes its whole day. A full ISO 8601 moment is accepted too."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.console.auth import Viewer
from api.console.templating import page
from api.dependencies import ContainerDep
from api.routes.report import REPORT_KINDS, csv_response, report_filter, report_page
from ledger.errors import InvalidInput
from ledger.movements import parse_moment
from projections.movement_report import ReportFilter

router = APIRouter()

PAGE = 50
FILTERS = ("sku", "warehouse", "kind", "reference", "since", "until")

Text = Annotated[str, Query(max_length=200)]
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


def _moment(value: str, field: str, *, end_of_day: bool = False) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    if _DAY.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{field} is not a date: {value!r}", field=field) from None
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return moment + timedelta(days=1) if end_of_day else moment
    if _LOCAL.match(value):
        value += "Z"  # a moment without a zone, from a datetime-local field: UTC, like the page
    return parse_moment(value, field)


def _filter(values: dict[str, str]) -> ReportFilter:
    return report_filter(
        sku=values["sku"] or None,
        warehouse=values["warehouse"] or None,
        kind=values["kind"] or None,
        reference=values["reference"] or None,
        since=_moment(values["since"], "since"),
        until=_moment(values["until"], "until", end_of_day=True),
    )


def _values(**given: str) -> dict[str, str]:
    return {name: given[name].strip() for name in FILTERS}


@router.get("/ui/movements", response_class=HTMLResponse, include_in_schema=False)
def movements_page(
    request: Request,
    container: ContainerDep,
    person: Viewer,
    sku: Text = "",
    warehouse: Text = "",
    kind: Text = "",
    reference: Text = "",
    since: Text = "",
    until: Text = "",
    cursor: Text = "",
) -> HTMLResponse:
    values = _values(
        sku=sku, warehouse=warehouse, kind=kind, reference=reference, since=since, until=until
    )
    shown = {k: v for k, v in values.items() if v}
    problem, rows, next_cursor = None, [], None
    try:
        found: dict[str, Any] = report_page(
            container.movement_report, _filter(values), cursor or None, PAGE
        )
        rows, next_cursor = found["items"], found["next_cursor"]
    except InvalidInput as error:
        problem = error.detail
    query = urlencode(shown)
    return page(
        request,
        "movements.html",
        person,
        status=422 if problem else 200,
        rows=rows,
        filters=values,
        kinds=REPORT_KINDS,
        problem=problem,
        cursor=cursor,
        first_url="/ui/movements" + (f"?{query}" if query else ""),
        next_url=None
        if next_cursor is None
        else "/ui/movements?" + urlencode({**shown, "cursor": next_cursor}),
        csv_url="/ui/movements.csv" + (f"?{query}" if query else ""),
    )


@router.get("/ui/movements.csv", include_in_schema=False)
def movements_csv(
    container: ContainerDep,
    person: Viewer,
    sku: Text = "",
    warehouse: Text = "",
    kind: Text = "",
    reference: Text = "",
    since: Text = "",
    until: Text = "",
) -> StreamingResponse:
    values = _values(
        sku=sku, warehouse=warehouse, kind=kind, reference=reference, since=since, until=until
    )
    response = csv_response(container.movement_report, _filter(values), None, None)
    response.headers["Cache-Control"] = "no-store"
    return response
