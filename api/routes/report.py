"""GET /movements: the movement report, as JSON pages or streamed as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api.cursors import decode_moment_and_position, encode_moment_and_position
from api.dependencies import ContainerDep, Reader, ReportAfter
from api.schemas import CODE_PATTERN, READ_ERRORS, TEXT_PATTERN, ReportPage
from ledger.codes import check_code, check_text
from ledger.errors import InvalidInput
from ledger.movements import parse_moment
from ledger.quantities import render
from ledger.stock import MovementKind, ReservationKind
from projections.movement_report import (
    COLUMNS,
    MovementReportView,
    ReportCursor,
    ReportFilter,
)

router = APIRouter(tags=["movements"])

ReportKind = StrEnum(  # type: ignore[misc]
    "ReportKind", {k.name: k.value for k in (*MovementKind, *ReservationKind)}
)
REPORT_KINDS = tuple(k.value for k in ReportKind)
CSV_COLUMNS = (*COLUMNS[1:9], "available_after", *COLUMNS[9:], "position")
Moment = Annotated[
    str | None,
    Query(
        max_length=64,
        description="ISO 8601 date-time with zone, on occurred_at.",
        json_schema_extra={"format": "date-time"},
    ),
]


@router.get(
    "/movements",
    response_model=ReportPage,
    responses={
        **READ_ERRORS,
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with Accept: text/csv"},
    },
    summary="Every stock change, newest first, with the balances after it",
)
def movement_report(
    request: Request,
    container: ContainerDep,
    _: Reader,
    sku: Annotated[
        str | None, Query(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
    ] = None,
    warehouse: Annotated[
        str | None, Query(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN})
    ] = None,
    kind: ReportKind | None = None,
    reference: Annotated[
        str | None, Query(max_length=200, json_schema_extra={"pattern": TEXT_PATTERN})
    ] = None,
    since: Moment = None,
    until: Moment = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="JSON: 100 unless given; CSV: every row.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    _after: ReportAfter = None,
) -> Any:
    where = report_filter(
        sku=sku,
        warehouse=warehouse,
        kind=None if kind is None else kind.value,
        reference=reference,
        since=since,
        until=until,
    )
    report = container.movement_report
    if "text/csv" in request.headers.get("accept", ""):
        return csv_response(report, where, cursor, limit)
    return report_page(report, where, cursor, limit or 100)


# The console's report (``api/console/report_pages.py``) reads through these same functions.


def report_filter(
    *,
    sku: str | None = None,
    warehouse: str | None = None,
    kind: str | None = None,
    reference: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> ReportFilter:
    """The report's filter, each field checked (moments given as text are ISO 8601)."""
    if kind is not None and kind not in REPORT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(REPORT_KINDS)}", field="kind")
    return ReportFilter(
        sku=None if sku is None else check_code(sku, "sku"),
        warehouse=None if warehouse is None else check_code(warehouse, "warehouse"),
        kind=kind,
        reference=check_text(reference, "reference", multiline=True),
        since=since if isinstance(since, datetime) else parse_moment(since, "since"),
        until=until if isinstance(until, datetime) else parse_moment(until, "until"),
    )


def _before(cursor: str | None) -> ReportCursor | None:
    decoded = decode_moment_and_position(cursor)
    return None if decoded is None else ReportCursor(decoded[1], decoded[0])


def report_page(
    report: MovementReportView, where: ReportFilter, cursor: str | None, size: int
) -> dict[str, Any]:
    """One page, newest first: ``{"items", "next_cursor"}``."""
    rows = report.report(where, before=_before(cursor), limit=size + 1)
    next_cursor = None
    if len(rows) > size:
        next_cursor = encode_moment_and_position(
            rows[size - 1]["occurred_at"], rows[size - 1]["position"]
        )
    return {"items": [_item(r) for r in rows[:size]], "next_cursor": next_cursor}


def csv_response(
    report: MovementReportView, where: ReportFilter, cursor: str | None, limit: int | None
) -> StreamingResponse:
    """Every matching row (up to ``limit``), streamed as CSV."""
    rows = report.stream(where, before=_before(cursor))
    return StreamingResponse(
        _csv(rows, limit),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="movements.csv"'},
    )


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "available_after": row["physical_after"] - row["reserved_after"]}


def _csv(rows: Iterator[dict[str, Any]], limit: int | None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(rows, start=1):
        item = _item(row)
        writer.writerow([_cell(item[c]) for c in CSV_COLUMNS])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if limit is not None and count >= limit:
            break
    yield buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return render(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
