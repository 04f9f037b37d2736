"""The console's forms: recording a movement and managing users. Every post is guarded
against cross-site requests (``api/console/auth.py``) and answers by redirecting, so a reload
posts nothing again; a movement's form carries its own movement_id, so a double submit
records once."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.auth import AdminPage, AdminPost, Person, WriterPage, WriterPost
from api.console.forms import decimal_text
from api.console.i18n import translator
from api.console.templating import page
from api.dependencies import ContainerDep
from api.errors import status_of
from ledger.errors import LedgerError
from ledger.movements import MovementRequest
from ledger.stock import MovementKind
from projections.current import current_levels

router = APIRouter()

Field = Annotated[str, Form(max_length=1000)]
Short = Annotated[str, Query(max_length=200)]


def _blank_form(sku: str = "", warehouse: str = "main") -> dict[str, str]:
    return {
        "movement_id": f"ui-{uuid.uuid4().hex}",
        "sku": sku,
        "warehouse": warehouse or "main",
        "kind": MovementKind.MANUAL.value,
        "quantity": "",
        "reference": "",
        "note": "",
    }


def _record_page(
    request: Request, person: Person, form: dict[str, str], **context: Any
) -> HTMLResponse:
    return page(
        request, "record.html", person, form=form, kinds=[k.value for k in MovementKind], **context
    )


@router.get("/ui/record", response_class=HTMLResponse, include_in_schema=False)
def record_form(
    request: Request,
    container: ContainerDep,
    person: WriterPage,
    sku: Short = "",
    warehouse: Short = "main",
    done: Short = "",
) -> HTMLResponse:
    recorded = None
    if done and sku:
        levels = [
            r
            for r in current_levels(container.app, container.stock_levels, sku)
            if r.warehouse == warehouse
        ]
        if levels:
            level = levels[0]
            recorded = {
                "sku": sku,
                "warehouse": warehouse,
                "physical": level.physical,
                "available": level.available,
            }
    return _record_page(request, person, _blank_form(sku, warehouse), done=recorded)


@router.post("/ui/record", response_class=HTMLResponse, include_in_schema=False)
def record_movement(
    request: Request,
    container: ContainerDep,
    person: WriterPost,
    movement_id: Field = "",
    sku: Field = "",
    warehouse: Field = "",
    kind: Field = "",
    quantity: Field = "",
    reference: Field = "",
    note: Field = "",
) -> Response:
    form = {
        "movement_id": movement_id or f"ui-{uuid.uuid4().hex}",
        "sku": sku.strip(),
        "warehouse": warehouse.strip() or "main",
        "kind": kind,
        "quantity": quantity,
        "reference": reference.strip(),
        "note": note.strip(),
    }
    body: dict[str, Any] = {key: form[key] for key in ("movement_id", "sku", "warehouse", "kind")}
    body["quantity"] = decimal_text(quantity)
    for optional in ("reference", "note"):
        if form[optional]:
            body[optional] = form[optional]
    try:
        request_ = MovementRequest.parse(body)
        [result] = container.app.record_movements([request_], recorded_by=person.name)
    except LedgerError as error:
        return _record_page(request, person, form, problem=error.detail, status=status_of(error))
    query = urlencode({"sku": result.sku, "warehouse": result.warehouse, "done": "1"})
    return RedirectResponse(f"/ui/record?{query}", status_code=303)


@router.get("/ui/users", response_class=HTMLResponse, include_in_schema=False)
def users_page(
    request: Request,
    container: ContainerDep,
    person: AdminPage,
    created: Short = "",
    disabled: Short = "",
) -> HTMLResponse:
    t = translator(person.language)
    notice = None
    if created:
        notice = t("user_created", name=created)
    elif disabled:
        notice = t("user_disabled", name=disabled)
    return page(
        request,
        "users.html",
        person,
        users=container.people.list(),
        form={"name": "", "role": "read"},
        notice=notice,
    )


@router.post("/ui/users", response_class=HTMLResponse, include_in_schema=False)
def create_user(
    request: Request,
    container: ContainerDep,
    person: AdminPost,
    name: Field = "",
    password: Field = "",
    role: Field = "read",
) -> Response:
    try:
        user = container.people.create(name.strip(), password, role, person.name)
    except LedgerError as error:
        return page(
            request,
            "users.html",
            person,
            users=container.people.list(),
            form={"name": name, "role": role},
            problem=error.detail,
            status=status_of(error),
        )
    return RedirectResponse(f"/ui/users?{urlencode({'created': user.name})}", status_code=303)


@router.post("/ui/users/{name}/disable", include_in_schema=False)
def disable_user(name: str, container: ContainerDep, person: AdminPost) -> RedirectResponse:
    container.people.disable(name, person.name)
    container.sessions.close_all(name)
    return RedirectResponse(f"/ui/users?{urlencode({'disabled': name})}", status_code=303)
