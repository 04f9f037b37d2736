"""Spreadsheets in the console: upload a CSV or XLSX file (a preview, nothing recorded), read
what it would do (rows in error, what each SKU's physical stock becomes), commit it; and the
past imports. The same desk as ``/imports`` does the work (``adapters/imports.py``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.auth import Person, Viewer, WriterPost
from api.console.i18n import translator
from api.console.templating import page
from api.dependencies import ContainerDep
from api.errors import status_of
from api.routes.imports import import_out
from api.wiring import Container
from ledger.errors import InvalidInput, LedgerError

router = APIRouter()

LISTED = 50
ImportId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]
Count = Annotated[int, Query(ge=0, le=10_000_000)]


def _imports_page(
    request: Request,
    container: Container,
    person: Person,
    *,
    form: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    imports = [import_out(r) for r in container.imports.newest(LISTED)]
    return page(
        request,
        "imports.html",
        person,
        imports=imports,
        form=form or {"mode": "add", "warehouse": "main"},
        **context,
    )


@router.get("/ui/imports", response_class=HTMLResponse, include_in_schema=False)
def imports_page(request: Request, container: ContainerDep, person: Viewer) -> HTMLResponse:
    return _imports_page(request, container, person)


@router.post("/ui/imports", response_class=HTMLResponse, include_in_schema=False)
async def upload(
    request: Request,
    container: ContainerDep,
    person: WriterPost,
    file: Annotated[UploadFile | None, File()] = None,
    mode: Annotated[str, Form(max_length=10)] = "add",
    warehouse: Annotated[str, Form(max_length=200)] = "main",
) -> Response:
    form = {"mode": mode, "warehouse": warehouse}
    try:
        if file is None or not file.filename:
            raise InvalidInput("choose a CSV or XLSX file to upload", field="file")
        filename = file.filename
        if len(filename) > 200 or not filename.isprintable():
            raise InvalidInput(
                "the file name must be printable and at most 200 characters", field="file"
            )
        data = await file.read()
        record = await run_in_threadpool(
            container.imports.preview,
            data,
            filename,
            mode,
            warehouse.strip() or "main",
            person.name,
        )
    except LedgerError as error:
        return await run_in_threadpool(
            _imports_page,
            request,
            container,
            person,
            form=form,
            problem=error.detail,
            status=status_of(error),
        )
    return RedirectResponse(f"/ui/imports/{record.import_id}", status_code=303)


def _preview_page(
    request: Request,
    container: Container,
    person: Person,
    import_id: str,
    **context: Any,
) -> HTMLResponse:
    found = import_out(container.imports.get(import_id))
    return page(request, "import.html", person, item=found, **context)


@router.get("/ui/imports/{import_id}", response_class=HTMLResponse, include_in_schema=False)
def preview_page(
    request: Request,
    import_id: ImportId,
    container: ContainerDep,
    person: Viewer,
    recorded: Count | None = None,
    replayed: Count = 0,
) -> HTMLResponse:
    notice = None
    if recorded is not None:
        notice = translator(person.language)(
            "import_committed", recorded=recorded, replayed=replayed
        )
    return _preview_page(request, container, person, import_id, notice=notice)


@router.post("/ui/imports/{import_id}/commit", response_class=HTMLResponse, include_in_schema=False)
def commit(
    request: Request,
    import_id: ImportId,
    container: ContainerDep,
    person: WriterPost,
    skip_invalid: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        _, results, already = container.imports.commit(import_id, bool(skip_invalid), person.name)
    except LedgerError as error:
        return _preview_page(
            request,
            container,
            person,
            import_id,
            problem=error.detail,
            status=status_of(error),
        )
    replays = sum(1 for r in results if r.replayed)
    query = urlencode({"recorded": len(results) - replays, "replayed": already + replays})
    return RedirectResponse(f"/ui/imports/{import_id}?{query}", status_code=303)
