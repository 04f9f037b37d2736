"""Spreadsheet imports: POST /imports (preview), POST /imports/{id}/commit, GET /imports.
Writers import, readers read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Path, Query, UploadFile
from pydantic import BaseModel, SkipValidation
from starlette.concurrency import run_in_threadpool

from adapters.import_store import ImportRecord
from api.cursors import decode_cursor, encode_cursor
from api.decimal_json import DecimalJSONRoute
from api.dependencies import ContainerDep, Reader, Writer
from api.schemas import ERRORS, ErrorOut
from ledger.errors import InvalidInput

router = APIRouter(route_class=DecimalJSONRoute, tags=["imports"])

ImportId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


class CommitIn(BaseModel):
    skip_invalid: bool = False


def import_out(record: ImportRecord) -> dict[str, Any]:
    summary = record.summary
    return {
        "import_id": record.import_id,
        "status": record.status,
        "filename": record.filename,
        "file_sha256": record.file_sha256,
        "mode": record.mode,
        "warehouse": record.warehouse,
        "rows": record.total_rows,
        "valid": record.valid_rows,
        "errors": summary["errors"],
        "errors_total": summary["errors_total"],
        "warnings": summary["warnings"],
        "changes": summary["changes"],
        "changes_total": summary["changes_total"],
        "created_at": datetime.fromtimestamp(record.created_at, UTC).isoformat(),
        "created_by": record.created_by,
        "committed_at": None
        if record.committed_at is None
        else datetime.fromtimestamp(record.committed_at, UTC).isoformat(),
        "position": record.position,
    }


@router.post(
    "/imports",
    status_code=201,
    responses={
        **ERRORS,
        413: {"model": ErrorOut, "description": "Over 20 MiB or 100,000 rows."},
        422: {
            "model": ErrorOut,
            "description": "unreadable_sheet (not a CSV or XLSX file, or no SKU and quantity "
            "columns) or invalid_input: no import is created.",
        },
    },
    summary="Upload a CSV or XLSX file and preview it; nothing is recorded yet",
)
async def upload(
    container: ContainerDep,
    principal: Writer,
    file: Annotated[UploadFile, File(description="The spreadsheet (CSV or XLSX).")],
    mode: Annotated[str, Form(description="add (changes) or set (counted levels).")] = "add",
    warehouse: Annotated[str, Form(max_length=64)] = "main",
) -> dict[str, Any]:
    data = await file.read()
    filename = file.filename
    if filename is not None and (len(filename) > 200 or not filename.isprintable()):
        raise InvalidInput(
            "the file name must be printable and at most 200 characters", field="file"
        )
    record = await run_in_threadpool(
        container.imports.preview, data, filename, mode, warehouse, principal.name
    )
    return import_out(record)


@router.post(
    "/imports/{import_id}/commit",
    responses={
        **ERRORS,
        404: {"model": ErrorOut, "description": "No such import."},
        409: {
            "model": ErrorOut,
            "description": "import_has_errors: some rows are invalid (commit with "
            "skip_invalid), or insufficient_stock.",
        },
    },
    summary="Record every valid row in one transaction (again: records nothing twice)",
)
def commit(
    import_id: ImportId,
    container: ContainerDep,
    principal: Writer,
    body: Annotated[SkipValidation[CommitIn] | None, Body()] = None,
) -> dict[str, Any]:
    skip = body.get("skip_invalid", False) if isinstance(body, dict) else False
    if not isinstance(skip, bool):
        raise InvalidInput("skip_invalid must be true or false", field="skip_invalid")
    record, results, already = container.imports.commit(import_id, skip, principal.name)
    replays = sum(1 for r in results if r.replayed)
    return {**import_out(record), "recorded": len(results) - replays, "replayed": already + replays}


@router.get("/imports/{import_id}", responses={**ERRORS, 404: {"model": ErrorOut}})
def get_import(import_id: ImportId, container: ContainerDep, _: Reader) -> dict[str, Any]:
    return import_out(container.imports.get(import_id))


@router.get("/imports", responses=ERRORS, summary="Past imports, newest first")
def list_imports(
    container: ContainerDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    before = decode_cursor(cursor)
    try:
        moment = None if before is None else float(before)
    except ValueError:
        raise InvalidInput("cursor is not one this endpoint returned", field="cursor") from None
    records = container.imports.newest(limit + 1, moment)
    items = [import_out(r) for r in records[:limit]]
    next_cursor = (
        encode_cursor(repr(records[limit - 1].created_at)) if len(records) > limit else None
    )
    return {"items": items, "next_cursor": next_cursor}
